package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// fileSink is a chain in a file, one line per record: a batch is written,
// then fsynced.
type fileSink struct {
	f *os.File
	// failed is the first write or fsync error. The file may end in part
	// of a batch after it, or have lost what was written, so nothing more
	// is written.
	failed error
}

func (s *fileSink) write(lines []byte, _ []int, _ uint64) error {
	if _, err := s.f.Write(lines); err != nil {
		s.failed = err
		return err
	}
	return nil
}

func (s *fileSink) sync() error {
	if err := s.f.Sync(); err != nil {
		s.failed = err
		return err
	}
	return nil
}

func (s *fileSink) resume() (uint64, string, error) { return 0, "", s.failed }

func (s *fileSink) close() error { return s.f.Close() }

// Open opens (creating if needed) the log at path and continues its chain.
// A last line cut short by a crash (a record never acknowledged) is
// removed; anything else that does not verify is an error.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	seq, last, end, err := recoverFile(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Truncate(end); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return newLog(&fileSink{f: f}, "", seq, last), nil
}

// recoverFile reads the chain to its end and returns its last record and
// the offset after it.
func recoverFile(f *os.File) (seq uint64, last string, end int64, err error) {
	r := bufio.NewReader(f)
	last = genesis
	for {
		b, err := r.ReadBytes('\n')
		if err == io.EOF {
			return seq, last, end, nil // a partial last line is dropped
		}
		if err != nil {
			return 0, "", 0, err
		}
		hash, s, verr := checkLine(b[:len(b)-1], last, seq+1)
		if verr != nil {
			return 0, "", 0, fmt.Errorf("audit log is damaged at record %d: %w (run kms audit verify)", seq+1, verr)
		}
		last, seq = hash, s
		end += int64(len(b))
	}
}

// Problem is the first break of a chain or of its digests.
type Problem struct {
	// Line is the 1-based line number in the log file, or in the digest
	// file if Digest is set. In PostgreSQL it is the record's sequence
	// number (for a digest: the record the digest names).
	Line   int
	Digest bool // the problem is with a signed digest
	Reason string
}

func (p *Problem) Error() string { return p.Reason }

// Verify reads a log and reports how many records chain correctly and the
// first problem, if any.
func Verify(r io.Reader) (int, *Problem, error) {
	br := bufio.NewReader(r)
	prev := genesis
	n := 0
	for {
		b, err := br.ReadBytes('\n')
		if err == io.EOF {
			if len(b) > 0 {
				return n, &Problem{Line: n + 1, Reason: "the last line is incomplete"}, nil
			}
			return n, nil, nil
		}
		if err != nil {
			return n, nil, err
		}
		hash, _, verr := checkLine(b[:len(b)-1], prev, uint64(n+1))
		if verr != nil {
			return n, &Problem{Line: n + 1, Reason: verr.Error()}, nil
		}
		prev = hash
		n++
	}
}

// Read calls fn with every record of a log, in order, without verifying.
func Read(r io.Reader, fn func(*Record, json.RawMessage) error) error {
	br := bufio.NewReader(r)
	for {
		b, err := br.ReadBytes('\n')
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		_, rec, event, err := parseLine(b)
		if err != nil {
			return err
		}
		if err := fn(rec, event); err != nil {
			return err
		}
	}
}

// Hashes reads a log and returns each record's hash by sequence number and
// the number of records.
func Hashes(r io.Reader) (map[uint64]string, uint64, error) {
	out := map[uint64]string{}
	br := bufio.NewReader(r)
	var n uint64
	for {
		b, err := br.ReadBytes('\n')
		if err == io.EOF {
			return out, n, nil
		}
		if err != nil {
			return nil, 0, err
		}
		var ln line
		if err := json.Unmarshal(b, &ln); err != nil {
			return nil, 0, err
		}
		n++
		out[n] = ln.Hash
	}
}
