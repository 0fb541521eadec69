package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// A log file holds one line per record:
//
//	{"hash":"<hex SHA-256>","event":<the record's JSON>}
//
// where hash = SHA-256(previous record's hash as hex ‖ the event's bytes
// exactly as written), and the event carries its sequence number (from 1)
// and previousHash. The first record's previousHash is 64 zeros.

// genesis is the previous hash of the first record.
const genesis = "0000000000000000000000000000000000000000000000000000000000000000"

type line struct {
	Hash  string          `json:"hash"`
	Event json.RawMessage `json:"event"`
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log closed")

// Log appends records to a file with group commit. It is safe for
// concurrent use.
type Log struct {
	f *os.File

	mu      sync.Mutex
	pending []*entry
	wake    chan struct{}
	closed  bool
	done    chan struct{}

	seq  uint64 // last written
	last string // hash of the last written record
	err  error  // sticky write error
}

type entry struct {
	rec  *Record
	done chan error
}

// Open opens (creating if needed) the log at path and continues its chain.
// A last line cut short by a crash (a record never acknowledged) is
// removed; anything else that does not verify is an error.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	l := &Log{f: f, wake: make(chan struct{}, 1), done: make(chan struct{}), last: genesis}
	end, err := l.recover()
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
	go l.run()
	return l, nil
}

// recover reads the chain to its end and returns the offset after the last
// complete record.
func (l *Log) recover() (int64, error) {
	r := bufio.NewReader(l.f)
	var off int64
	for {
		b, err := r.ReadBytes('\n')
		if err == io.EOF {
			return off, nil // a partial last line is dropped
		}
		if err != nil {
			return 0, err
		}
		hash, seq, verr := checkLine(b[:len(b)-1], l.last, l.seq+1)
		if verr != nil {
			return 0, fmt.Errorf("audit log is damaged at record %d: %w (run kms audit verify)", l.seq+1, verr)
		}
		l.last, l.seq = hash, seq
		off += int64(len(b))
	}
}

// checkLine verifies one line against the chain so far.
func checkLine(b []byte, prev string, wantSeq uint64) (string, uint64, error) {
	var ln line
	if err := json.Unmarshal(b, &ln); err != nil {
		return "", 0, fmt.Errorf("not a record line: %v", err)
	}
	var ev struct {
		Sequence uint64 `json:"sequence"`
		PrevHash string `json:"previousHash"`
	}
	if err := json.Unmarshal(ln.Event, &ev); err != nil {
		return "", 0, fmt.Errorf("event is not JSON: %v", err)
	}
	if ev.Sequence != wantSeq {
		return "", 0, fmt.Errorf("sequence %d where %d was expected (a record was removed or moved)", ev.Sequence, wantSeq)
	}
	if ev.PrevHash != prev {
		return "", 0, errors.New("previousHash does not match the record before (a record was removed, moved or edited)")
	}
	if h := chainHash(prev, ln.Event); h != ln.Hash {
		return "", 0, errors.New("hash does not match the record (it was edited)")
	}
	return ln.Hash, ev.Sequence, nil
}

func chainHash(prev string, event []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(event)
	return hex.EncodeToString(h.Sum(nil))
}

// Append adds rec to the log and returns once it is durable (written and
// fsynced), or the write error. It sets rec's Sequence and PrevHash.
func (l *Log) Append(rec *Record) error {
	e := &entry{rec: rec, done: make(chan error, 1)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.pending = append(l.pending, e)
	select { // under the lock, so that Close cannot close wake meanwhile
	case l.wake <- struct{}{}:
	default:
	}
	l.mu.Unlock()
	return <-e.done
}

// run is the group committer: it writes every pending record, fsyncs once,
// and acknowledges them all.
func (l *Log) run() {
	defer close(l.done)
	var buf bytes.Buffer
	for range l.wake {
		for {
			l.mu.Lock()
			batch := l.pending
			l.pending = nil
			closed := l.closed
			l.mu.Unlock()
			if len(batch) == 0 {
				if closed {
					return
				}
				break
			}
			l.commit(batch, &buf)
		}
	}
}

func (l *Log) commit(batch []*entry, buf *bytes.Buffer) {
	if l.err != nil {
		for _, e := range batch {
			e.done <- l.err
		}
		return
	}
	buf.Reset()
	seq, last := l.seq, l.last
	for _, e := range batch {
		seq++
		e.rec.Sequence, e.rec.PrevHash = seq, last
		ev, err := json.Marshal(e.rec)
		if err != nil {
			l.err = err
			break
		}
		last = chainHash(last, ev)
		b, _ := json.Marshal(line{Hash: last, Event: ev})
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if l.err == nil {
		if _, err := l.f.Write(buf.Bytes()); err != nil {
			l.err = err
		} else if err := l.f.Sync(); err != nil {
			l.err = err
		}
	}
	if l.err == nil {
		l.mu.Lock()
		l.seq, l.last = seq, last
		l.mu.Unlock()
	}
	for _, e := range batch {
		e.done <- l.err
	}
}

// Close waits for pending appends and closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.wake)
	l.mu.Unlock()
	<-l.done
	return l.f.Close()
}

// Problem is the first break of a chain Verify found.
type Problem struct {
	Line   int // 1-based line number
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
		var ln line
		if err := json.Unmarshal(b, &ln); err != nil {
			return err
		}
		var rec Record
		if err := json.Unmarshal(ln.Event, &rec); err != nil {
			return err
		}
		if err := fn(&rec, ln.Event); err != nil {
			return err
		}
	}
}
