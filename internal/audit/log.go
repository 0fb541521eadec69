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

	// The committer encodes and writes batches; the syncer fsyncs what was
	// written and acknowledges it, so that the next batch is written while
	// the previous one is being synced.
	written chan written
	ev      []byte // scratch for the committer
	wseq    uint64 // last written (committer only)
	wlast   string
	werr    error // sticky write error (committer only)

	seq  uint64 // last durable (under mu)
	last string // hash of the last durable record (under mu)
}

// written is a batch on the file, not yet synced.
type written struct {
	batch []*entry
	seq   uint64
	last  string
	err   error
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
	l := &Log{f: f, wake: make(chan struct{}, 1), done: make(chan struct{}), last: genesis, written: make(chan written, 64)}
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
	l.wseq, l.wlast = l.seq, l.last
	synced := make(chan struct{})
	go l.syncer(synced)
	go l.run(synced)
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

// run is the group committer: it encodes and writes every pending record
// as one batch and hands it to the syncer.
func (l *Log) run(synced chan struct{}) {
	defer func() {
		close(l.written)
		<-synced
		close(l.done)
	}()
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
			l.write(batch, &buf)
		}
	}
}

func (l *Log) write(batch []*entry, buf *bytes.Buffer) {
	if l.werr == nil {
		buf.Reset()
		seq, last := l.wseq, l.wlast
		for _, e := range batch {
			seq++
			e.rec.Sequence, e.rec.PrevHash = seq, last
			l.ev = appendRecord(l.ev[:0], e.rec)
			last = chainHash(last, l.ev)
			buf.WriteString(`{"hash":"`)
			buf.WriteString(last)
			buf.WriteString(`","event":`)
			buf.Write(l.ev)
			buf.WriteString("}\n")
		}
		if _, err := l.f.Write(buf.Bytes()); err != nil {
			l.werr = err
		} else {
			l.wseq, l.wlast = seq, last
		}
	}
	l.written <- written{batch: batch, seq: l.wseq, last: l.wlast, err: l.werr}
}

// syncer fsyncs the file once for every batch written meanwhile and
// acknowledges them: an fsync that starts after a batch was written makes
// it durable.
func (l *Log) syncer(synced chan struct{}) {
	defer close(synced)
	var serr error // sticky sync error
	for w := range l.written {
		ws := l.drainWritten([]written{w})
		if serr == nil {
			serr = l.f.Sync()
		}
		last := ws[len(ws)-1]
		if serr == nil && last.err == nil {
			l.mu.Lock()
			l.seq, l.last = last.seq, last.last
			l.mu.Unlock()
		}
		for _, w := range ws {
			err := w.err
			if err == nil {
				err = serr
			}
			for _, e := range w.batch {
				e.done <- err
			}
		}
	}
}

// drainWritten adds to ws every batch already waiting to be synced.
func (l *Log) drainWritten(ws []written) []written {
	for {
		select {
		case more, ok := <-l.written:
			if !ok {
				return ws
			}
			ws = append(ws, more)
		default:
			return ws
		}
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
