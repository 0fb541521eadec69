package auditcli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/openkms/kms/internal/audit"
)

// dirSource is the trail of an embedded server's data directory: one
// chain in audit.log, its digests in audit-digests.log and their public
// key in audit.pub. The files are append-only and read without locks, so
// the server may be running.
type dirSource struct {
	dir     string
	log     *os.File // read by next
	br      *bufio.Reader
	partial []byte // a line the server is still writing
}

func openDir(dir string) (*dirSource, error) {
	f, err := os.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		return nil, err
	}
	return &dirSource{dir: dir, log: f, br: bufio.NewReader(f)}, nil
}

func (s *dirSource) chains() bool { return false }

func (s *dirSource) close() error { return s.log.Close() }

func (s *dirSource) verify(_ context.Context, pub ed25519.PublicKey) ([]audit.Report, error) {
	f, err := os.Open(s.log.Name())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, problems, err := audit.VerifyAll(f)
	if err != nil {
		return nil, err
	}
	r := audit.Report{Records: uint64(n)}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	// The digests are checked even on a broken chain: every break is
	// reported, not only the first.
	good, dproblems, err := s.verifyDigests(f, pub)
	if err != nil {
		return nil, err
	}
	r.Digests = good
	for _, p := range append(problems, dproblems...) {
		if r.Problem == nil {
			r.Problem = p
		} else {
			r.Later = append(r.Later, p)
		}
	}
	return []audit.Report{r}, nil
}

// verifyDigests checks the signed digests beside the log, if any, with
// pub or else with audit.pub, and returns how many verify and every
// problem.
func (s *dirSource) verifyDigests(log io.Reader, pub ed25519.PublicKey) (int, []*audit.Problem, error) {
	if pub == nil {
		b, err := os.ReadFile(filepath.Join(s.dir, "audit.pub"))
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil, nil
		}
		if err != nil {
			return 0, nil, err
		}
		if pub, err = audit.ParsePublicKey(b); err != nil {
			return 0, nil, errors.New("audit.pub is " + err.Error())
		}
	}
	dg, err := os.Open(filepath.Join(s.dir, "audit-digests.log"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	defer dg.Close()
	hashes, records, err := audit.Hashes(log)
	if err != nil {
		return 0, nil, err
	}
	_, good, problems, err := audit.VerifyDigestsAll(dg, pub, hashes, records)
	return good, problems, err
}

// next reads the log from where the last call stopped, to its last
// complete line.
func (s *dirSource) next(_ context.Context, fn func(record) error) error {
	for {
		b, err := s.br.ReadBytes('\n')
		if err == io.EOF {
			s.partial = append(s.partial, b...)
			return nil
		}
		if err != nil {
			return err
		}
		b = append(s.partial, b...)
		s.partial = nil
		err = audit.Read(bytes.NewReader(b), func(r *audit.Record, event json.RawMessage) error {
			return fn(record{rec: r, event: event})
		})
		if err != nil {
			return err
		}
	}
}
