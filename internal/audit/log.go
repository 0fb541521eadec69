package audit

import (
	"errors"
	"sync"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log closed")

// A sink stores one chain's lines: a file (Open) or PostgreSQL
// (OpenPostgres). The Log calls write and resume from its committer
// goroutine and sync from its syncer goroutine, never two writes at once.
type sink interface {
	// write stores the lines of records first, first+1, ... after the
	// chain's last stored record. lines holds them one after the other,
	// each ending in '\n'; ends[i] is the offset just past line i. A sink
	// whose write returns nil has made them durable, or will have once a
	// later sync returns nil.
	write(lines []byte, ends []int, first uint64) error
	// sync makes every line write has stored durable.
	sync() error
	// resume is called before the next write after write failed. It
	// returns the sequence number and hash of the chain's last stored
	// record, or an error if the sink cannot go on; that error fails the
	// batch that was to be written.
	resume() (seq uint64, hash string, err error)
	// close releases what the sink holds; nothing is written after it.
	close() error
}

// Log appends records to one chain with group commit. It is safe for
// concurrent use.
type Log struct {
	sink  sink
	chain string

	mu      sync.Mutex
	pending []*entry
	wake    chan struct{}
	closed  bool
	done    chan struct{}

	// The committer encodes and writes batches; the syncer syncs what was
	// written and acknowledges it, so that a file's next batch is written
	// while the previous one is being fsynced.
	written chan written
	ev      []byte // scratch for the committer
	buf     []byte // the batch's lines (committer only)
	ends    []int  // where each line of buf ends (committer only)
	wseq    uint64 // last written (committer only)
	wlast   string
	werr    error // the last write's error (committer only)

	seq  uint64 // last durable (under mu)
	last string // hash of the last durable record (under mu)
}

// written is a batch the sink has stored, not yet synced.
type written struct {
	batch []*entry
	seq   uint64 // the chain's last record after the batch, if err is nil
	last  string
	err   error
}

type entry struct {
	rec  *Record
	done chan error
}

// newLog starts the committer and the syncer of a chain whose last stored
// record is seq with hash last (0 and genesis for an empty chain).
func newLog(s sink, chain string, seq uint64, last string) *Log {
	l := &Log{
		sink: s, chain: chain,
		wake: make(chan struct{}, 1), done: make(chan struct{}), written: make(chan written, 64),
		wseq: seq, wlast: last, seq: seq, last: last,
	}
	synced := make(chan struct{})
	go l.syncer(synced)
	go l.run(synced)
	return l
}

// Chain returns the id of the log's chain in PostgreSQL, or "" for a log
// file.
func (l *Log) Chain() string { return l.chain }

// Head returns the sequence number and hash of the newest durable record.
func (l *Log) Head() (uint64, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.last
}

// Append adds rec to the log and returns once it is durable (written and
// fsynced, or committed), or the error that kept it from being so. It sets
// rec's Sequence and PrevHash.
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
			l.write(batch)
		}
	}
}

func (l *Log) write(batch []*entry) {
	err := l.werr
	if err != nil {
		var seq uint64
		var last string
		if seq, last, err = l.sink.resume(); err == nil {
			l.wseq, l.wlast, l.werr = seq, last, nil
		}
	}
	if err == nil {
		l.buf, l.ends = l.buf[:0], l.ends[:0]
		seq, last := l.wseq, l.wlast
		for _, e := range batch {
			seq++
			e.rec.Sequence, e.rec.PrevHash = seq, last
			l.ev = appendRecord(l.ev[:0], e.rec)
			last = chainHash(last, l.ev)
			l.buf = appendLine(l.buf, last, l.ev)
			l.ends = append(l.ends, len(l.buf))
		}
		if err = l.sink.write(l.buf, l.ends, l.wseq+1); err != nil {
			l.werr = err
		} else {
			l.wseq, l.wlast = seq, last
		}
	}
	l.written <- written{batch: batch, seq: l.wseq, last: l.wlast, err: err}
}

// syncer syncs the sink once for every batch written meanwhile and
// acknowledges them: a sync that starts after a batch was written makes it
// durable.
func (l *Log) syncer(synced chan struct{}) {
	defer close(synced)
	var serr error // sticky sync error
	for w := range l.written {
		ws := l.drainWritten([]written{w})
		if serr == nil {
			serr = l.sink.sync()
		}
		if serr == nil {
			for i := len(ws) - 1; i >= 0; i-- {
				if ws[i].err == nil {
					l.mu.Lock()
					l.seq, l.last = ws[i].seq, ws[i].last
					l.mu.Unlock()
					break
				}
			}
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

// Close waits for pending appends and closes the log's file. It leaves a
// PostgreSQL pool open: the pool is the caller's.
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
	return l.sink.close()
}
