package audit

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log closed")

// A sink stores one chain's lines: a file (Open) or PostgreSQL
// (OpenPostgres). The Log calls write, sync and resume from the caller
// leading a commit, one at a time; in the relaxed mode (SyncEvery) its
// sync loop also calls sync, beside a write, which a file allows.
type sink interface {
	// write stores the lines of records first, first+1, ... after the
	// chain's last stored record. lines holds them one after the other,
	// each ending in '\n'; ends[i] is the offset just past line i. A sink
	// whose write returns nil has made them durable, or will have once a
	// later sync returns nil. One whose write fails may have stored the
	// first of them all the same (a file's write cut short keeps its
	// whole lines): resume says which record the chain goes on from.
	write(lines []byte, ends []int, first uint64) error
	// sync makes every line write has stored durable.
	sync() error
	// resume is called before the next write after write or sync failed,
	// with the sequence number and hash of the last record the log wrote
	// (whose write returned nil). It returns those of the chain's last
	// stored record, or an error if the sink cannot go on; that error fails
	// the batch that was to be written.
	resume(seq uint64, hash string) (uint64, string, error)
	// probe tries to store a record after seq, the chain's last stored
	// record (after resume, if a write failed), as write would, and keeps
	// nothing: it fails as that write would fail now. Log.Retry calls it.
	probe(seq uint64) error
	// close releases what the sink holds; nothing is written after it.
	close() error
}

// roomKeeper is a sink that keeps room ahead of its records (a
// prezeroing file). lowRoom, called by the leader after each commit
// (without l.mu: it may write), returns an error once that room is
// nearly used up and cannot be extended: new calls are then refused
// before they begin, while the records of calls already under way still
// fit. It returns nil again once probe (Log.Retry), or lowRoom itself,
// has made room.
type roomKeeper interface {
	lowRoom() error
}

// Log appends records to one chain with group commit. It is safe for
// concurrent use.
//
// There is no writer goroutine: the caller of Append that finds no commit
// under way leads one. It takes every record pending, writes and syncs them
// as one batch, acknowledges them, and hands the lead to the first record
// that arrived meanwhile, whose caller then commits the next batch. So each
// record waits for at most the commit in progress and its own, and no
// goroutine wakes but the callers themselves.
type Log struct {
	sink  sink
	room  roomKeeper // the sink, if it keeps room ahead of its records
	chain string
	obs   Observer // nil: not measured

	mu sync.Mutex
	// pending are the records waiting for the next commit. The leader
	// copies them into a batch and empties pending, keeping its capacity.
	pending []*entry
	// entries holds the entries of finished appends, with their head
	// buffers and channels, and batches the slices leaders copied
	// pending into: a steady load allocates neither.
	entries sync.Pool
	batches sync.Pool
	leading bool // a caller is committing a batch
	closed  bool
	idle    sync.Cond   // signalled when leading turns false
	seq     uint64      // last durable
	last    string      // hash of the last durable record
	failed  error       // the last commit's error: nil once one succeeds
	failing atomic.Bool // failed != nil, read without mu by Err on every call
	commits uint64      // commits (and retries) ended, for Retry to wait on one; idle is signalled

	// The leader's state; only the leader touches it.
	ev    []byte // scratch for one record
	buf   []byte // the batch's lines
	ends  []int  // where each line of buf ends
	wseq  uint64 // last written
	wlast string
	werr  error // the last write's error

	// The relaxed mode (SyncEvery): batches are acknowledged once written,
	// and a background loop makes them durable.
	every    time.Duration
	syncMu   sync.Mutex            // held by a background sync
	dirty    atomic.Bool           // written since the last sync
	syncErr  atomic.Pointer[error] // a background sync failed
	stopSync chan struct{}
	synced   chan struct{}
}

// Observer receives a log's measurements (Log.Observe). Its methods are
// called on the appending goroutines and must be quick.
type Observer interface {
	// Appended reports one Append, from its call to its return.
	Appended(d time.Duration, err error)
	// Committed reports one batch of records written and made durable (or
	// failed), with the time it took.
	Committed(records int, d time.Duration, err error)
	// ZerosFailed reports zeros that could not be written ahead of the
	// active segment's records (a full disk, say): its records are then
	// appended, each commit also syncing the file's size, until the next
	// segment tries again. It is called on a background goroutine.
	ZerosFailed(err error)
}

// SyncEvery switches l to the relaxed mode a server runs with
// --audit-sync=interval: a batch is acknowledged once written to the
// operating system, and an fsync makes it durable at most d later. A
// record of an answered call then survives the server's crash or SIGKILL
// (it is in the kernel's page cache), but not a crash of the machine or a
// power loss in the d before its fsync. A failed background fsync fails
// every later Append, as a failed write does. Only a log file has the
// mode: a PostgreSQL commit is durable by itself, and SyncEvery leaves
// such a log as it is. Call it before the first Append; Close stops it
// after a last fsync.
func (l *Log) SyncEvery(d time.Duration) {
	if _, ok := l.sink.(*fileSink); !ok || d <= 0 {
		return
	}
	l.every, l.stopSync, l.synced = d, make(chan struct{}), make(chan struct{})
	go l.syncLoop()
}

func (l *Log) syncLoop() {
	defer close(l.synced)
	t := time.NewTicker(l.every)
	defer t.Stop()
	for {
		select {
		case <-l.stopSync:
			l.syncDirty()
			return
		case <-t.C:
			l.syncDirty()
		}
	}
}

// syncDirty fsyncs what was written since the last fsync.
func (l *Log) syncDirty() {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if !l.dirty.Swap(false) {
		return
	}
	if err := l.sink.sync(); err != nil {
		l.syncErr.Store(&err)
		l.mu.Lock()
		l.failed = err
		l.failing.Store(true)
		l.mu.Unlock()
	}
}

// durable makes every record acknowledged so far durable: in the relaxed
// mode, it fsyncs (or waits for the fsync under way). A digest signs only
// durable records, so that a machine crash cannot take a record that a
// digest or the high-water mark names.
func (l *Log) durable() error {
	if l.every <= 0 {
		return nil
	}
	l.syncDirty()
	if p := l.syncErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Observe makes l report its appends and commits to o. Call it before the
// first Append.
func (l *Log) Observe(o Observer) {
	l.obs = o
	if s, ok := l.sink.(*fileSink); ok {
		s.obs.Store(&o)
	}
}

type entry struct {
	rec  *Record
	head []byte // rec encoded up to its chain position (appendRecordHead)
	done chan error
}

// errLead, sent to a waiting caller, makes it the next leader.
var errLead = errors.New("audit: lead the next commit")

// newLog returns a log of a chain whose last stored record is seq with hash
// last (0 and genesis for an empty chain).
func newLog(s sink, chain string, seq uint64, last string) *Log {
	l := &Log{sink: s, chain: chain, wseq: seq, wlast: last, seq: seq, last: last}
	l.room, _ = s.(roomKeeper)
	l.idle.L = &l.mu
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

// Err returns the error of the last commit, or nil if it succeeded (or
// none was made): while it is not nil, calls are being refused for want
// of their records.
func (l *Log) Err() error {
	if !l.failing.Load() {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Append adds rec to the log and returns once it is durable (written and
// fsynced, or committed), or the error that kept it from being so. It sets
// rec's Sequence and PrevHash.
func (l *Log) Append(rec *Record) error {
	if l.obs == nil {
		return l.append(rec)
	}
	start := time.Now()
	err := l.append(rec)
	l.obs.Appended(time.Since(start), err)
	return err
}

func (l *Log) append(rec *Record) error {
	// An entry goes back to the pool once its Append is over: by then its
	// channel is empty, for each caller receives exactly once (its batch's
	// result, or the lead) or, leading from the start, never.
	e, _ := l.entries.Get().(*entry)
	if e == nil {
		e = &entry{done: make(chan error, 1)}
	}
	defer func() {
		e.rec = nil
		l.entries.Put(e)
	}()
	e.rec, e.head = rec, appendRecordHead(e.head[:0], rec)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.pending = append(l.pending, e)
	if l.leading {
		l.mu.Unlock()
		if err := <-e.done; err != errLead {
			return err
		}
		l.mu.Lock()
	} else {
		l.leading = true
	}
	bp, _ := l.batches.Get().(*[]*entry)
	if bp == nil {
		bp = new([]*entry)
	}
	batch := append((*bp)[:0], l.pending...) // e among them
	clear(l.pending)
	l.pending = l.pending[:0]
	l.mu.Unlock()

	var start time.Time
	if l.obs != nil {
		start = time.Now()
	}
	err := l.safeCommit(batch)
	if l.obs != nil {
		l.obs.Committed(len(batch), time.Since(start), err)
	}

	low := l.roomAfter(err)
	l.mu.Lock()
	next := l.passLead(err, low)
	l.mu.Unlock()
	// The next leader is woken last: the most recently readied goroutine
	// runs next on this P, so the next commit starts as soon as this caller
	// parks, not behind the batch's callers writing their answers.
	for _, x := range batch {
		if x != e {
			x.done <- err
		}
	}
	if next != nil {
		next.done <- errLead
	}
	clear(batch)
	*bp = batch[:0]
	l.batches.Put(bp)
	return err
}

// roomAfter, run by the leader without l.mu once a commit (or a retry)
// ended with err, returns the sink's lowRoom error if err is nil and the
// sink keeps room ahead of its records: lowRoom may write to the disk,
// which the callers enqueuing their records must not wait for.
func (l *Log) roomAfter(err error) error {
	if err != nil || l.room == nil {
		return nil
	}
	return l.room.lowRoom()
}

// passLead ends a commit (or a retry) whose outcome is err, with l.mu
// held: the records written are durable if err is nil, and Err reports
// err, or else low (roomAfter), until the next commit. It returns the
// entry whose caller leads next, or nil if none waits, and wakes Close
// and Retry.
func (l *Log) passLead(err, low error) *entry {
	if err == nil {
		l.seq, l.last = l.wseq, l.wlast
		// The batch is durable, and its callers are answered; with the
		// room low, the calls to come are refused until there is more.
		err = low
	}
	l.failed = err
	l.failing.Store(err != nil)
	l.commits++
	l.idle.Broadcast()
	if len(l.pending) > 0 {
		return l.pending[0]
	}
	l.leading = false
	return nil
}

// Retry checks, while the last commit failed, whether the chain can be
// written now, and returns Err's value afterwards. It reads the chain's
// last record back and tries to store one after it without keeping it
// (for PostgreSQL, an INSERT rolled back): if both succeed, the log takes
// records again, and Err is nil until a commit fails. If a commit is under
// way, its outcome is awaited instead: it tries the same. A log file
// whose write was refused for want of space, or by the file size limit,
// goes on once the file takes its probe (fileSink.probe); one whose
// fsync failed, or whose write failed otherwise, stays failed.
//
// So a call begun once Retry returned nil is refused only if its own
// record fails, as the first after any healthy commit; and calls begun
// while the sink still fails are refused before they change anything.
func (l *Log) Retry() error {
	if !l.failing.Load() {
		return nil
	}
	l.mu.Lock()
	if l.closed || !l.failing.Load() {
		defer l.mu.Unlock()
		if l.closed {
			return ErrClosed
		}
		return nil
	}
	if l.leading {
		for n := l.commits; l.commits == n; {
			l.idle.Wait()
		}
		defer l.mu.Unlock()
		return l.failed
	}
	l.leading = true
	l.mu.Unlock()

	err := l.safeRetry()

	low := l.roomAfter(err)
	l.mu.Lock()
	next := l.passLead(err, low)
	l.mu.Unlock()
	if next != nil {
		next.done <- errLead
	}
	return err
}

// safeRetry, run by the leader, resumes the chain from its last stored
// record, as the next commit would, and probes the sink, with a panic
// turned into the error.
func (l *Log) safeRetry() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("audit: retrying the trail: %v", p)
		}
	}()
	if p := l.syncErr.Load(); p != nil {
		return *p
	}
	if l.werr != nil {
		seq, last, err := l.sink.resume(l.wseq, l.wlast)
		if err != nil {
			return err
		}
		l.wseq, l.wlast, l.werr = seq, last, nil
	}
	if err := l.sink.probe(l.wseq); err != nil {
		l.werr = err // read the head back again before the next batch
		return err
	}
	return nil
}

// safeCommit is commit, with a panic turned into the batch's error: the
// lead must pass on whatever happens, or every later Append would wait
// forever.
func (l *Log) safeCommit(batch []*entry) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("audit: committing a batch: %v", p)
		}
	}()
	return l.commit(batch)
}

// commit encodes, chains, writes and syncs a batch.
func (l *Log) commit(batch []*entry) error {
	if p := l.syncErr.Load(); p != nil && l.werr == nil {
		l.werr = *p
	}
	if l.werr != nil {
		seq, last, err := l.sink.resume(l.wseq, l.wlast)
		if err != nil {
			return err
		}
		l.wseq, l.wlast, l.werr = seq, last, nil
	}
	l.buf, l.ends = l.buf[:0], l.ends[:0]
	seq, last := l.wseq, l.wlast
	for _, e := range batch {
		seq++
		e.rec.Sequence, e.rec.PrevHash = seq, last
		// l.ev holds the previous hash, then the record's event.
		l.ev = appendRecordTail(append(append(l.ev[:0], last...), e.head...), e.rec)
		ev := l.ev[len(last):]
		last = hashLinked(l.ev)
		l.buf = appendLine(l.buf, last, ev)
		l.ends = append(l.ends, len(l.buf))
	}
	if err := l.sink.write(l.buf, l.ends, l.wseq+1); err != nil {
		l.werr = err
		return err
	}
	l.wseq, l.wlast = seq, last
	if l.every > 0 {
		l.dirty.Store(true)
		return nil
	}
	if err := l.sink.sync(); err != nil {
		l.werr = err // what was written may not be durable: start again from what is
		return err
	}
	return nil
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
	for l.leading {
		l.idle.Wait()
	}
	l.mu.Unlock()
	if l.stopSync != nil {
		close(l.stopSync)
		<-l.synced
		if p := l.syncErr.Load(); p != nil {
			l.sink.close()
			return *p
		}
	}
	return l.sink.close()
}
