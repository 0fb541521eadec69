package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
)

// fileSink is a chain in a file, one line per record: a batch is written,
// then fsynced.
type fileSink struct {
	f *os.File

	mu sync.Mutex
	// failed is the first write or fsync error. The file may end in part
	// of a batch after it, or have lost what was written, so nothing more
	// is written.
	failed error
}

func (s *fileSink) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = err
	}
	return err
}

func (s *fileSink) write(lines []byte, _ []int, _ uint64) error {
	if _, err := s.f.Write(lines); err != nil {
		return s.fail(err)
	}
	return nil
}

// sync may run beside write (Log.SyncEvery): os.File allows it.
func (s *fileSink) sync() error {
	if err := s.f.Sync(); err != nil {
		return s.fail(err)
	}
	return nil
}

func (s *fileSink) resume() (uint64, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return 0, "", s.failed
}

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
	n, problems, err := VerifyAll(r)
	if len(problems) > 0 {
		return n, problems[0], err
	}
	return n, nil, err
}

// VerifyAll is Verify reporting every problem, not only the first: after a
// break it takes up the chain again from the record that broke it (its
// own hash and sequence number, when it has them), so that a break does
// not hide the ones after it. The number is that of the records before
// the first break.
func VerifyAll(r io.Reader) (int, []*Problem, error) {
	br := bufio.NewReader(r)
	prev := genesis
	var problems []*Problem
	n, lineNo := 0, 0
	var want uint64 = 1
	for {
		b, err := br.ReadBytes('\n')
		if err == io.EOF {
			if len(b) > 0 {
				problems = append(problems, &Problem{Line: lineNo + 1, Reason: "the last line is incomplete"})
			}
			return n, problems, nil
		}
		if err != nil {
			return n, problems, err
		}
		lineNo++
		hash, _, verr := checkLine(b[:len(b)-1], prev, want)
		if verr == nil {
			prev, want = hash, want+1
			if len(problems) == 0 {
				n++
			}
			continue
		}
		problems = append(problems, &Problem{Line: lineNo, Reason: verr.Error()})
		// Take up the chain again after this line.
		want++
		if h, seq, ok := lineHead(b[:len(b)-1]); ok {
			prev, want = h, seq+1
		}
	}
}

// lineHead returns a line's hash and sequence number, without verifying
// them, if it has them.
func lineHead(b []byte) (string, uint64, bool) {
	var ln line
	if json.Unmarshal(b, &ln) != nil || ln.Hash == "" {
		return "", 0, false
	}
	var ev struct {
		Sequence uint64 `json:"sequence"`
	}
	if json.Unmarshal(ln.Event, &ev) != nil || ev.Sequence == 0 {
		return "", 0, false
	}
	return ln.Hash, ev.Sequence, true
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
		// A line that is not a record has no hash: a digest naming it
		// does not match. VerifyAll reports the line itself.
		var ln line
		_ = json.Unmarshal(b, &ln)
		n++
		out[n] = ln.Hash
	}
}
