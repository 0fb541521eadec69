package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// fileSink is a chain in a file, one line per record: a batch is written,
// then fsynced. A data directory's sink (OpenDir) rolls to a new segment
// file when a batch would take the active one past max bytes.
//
// A data directory's sink also writes zeros ahead of its records
// (prezeroed): a batch then overwrites blocks the file already has, and
// its fdatasync flushes only those blocks, where an append would also
// commit the file's new size and block map to the file system's journal:
// fewer device writes and flushes per commit, and a shorter one. The
// active segment therefore ends in zeros (docs/audit.md, "Zeros ahead of
// the records"),
// which readers take as its end (SegmentData); a segment is cut to its
// records when it is closed or rolled, and Open cuts what a crash left.
type fileSink struct {
	// f is the active segment. Only write changes it, under mu, and only
	// write and sync use it: sync, which may run beside write, holds mu
	// for reading while it fsyncs.
	f    *os.File
	size int64 // bytes of records in f

	dir string // "": a single file that never rolls
	n   int    // the number of the active segment
	max int64

	// zeroed is the end of the zeros written after the records (at least
	// size), or 0 if the sink does not prezero. A write that fits below it
	// needs no lock; a write past it, a roll and close first take zeroing,
	// which a goroutine extending the zeros holds while it writes them.
	zeroed  atomic.Int64
	zeroing sync.Mutex
	prezero bool
	zeroErr atomic.Pointer[error]                           // an extension failed: none until the next segment
	zeros   func(f *os.File, from, to int64) (int64, error) // writeZeros, or a test's
	create  func(path string) (*os.File, error)             // createSegment, or a test's
	fsync   func(f *os.File) error                          // (*os.File).Sync when nil, or a test's
	obs     atomic.Pointer[Observer]                        // told of a failed extension (Log.Observe)
	// keptSeq and keptHash are the last record of a batch cut short
	// that keepWhole kept (keptHash "": none), for resume to go on from.
	keptSeq  uint64
	keptHash string
	// rollDue: a roll was refused for want of room (short), so probe
	// rolls before it looks for room in the next segment.
	rollDue bool

	mu sync.RWMutex
	// failed is the first fsync error, or write error other than short's:
	// the file may have lost what was written to it, so nothing more is
	// written.
	failed error
	// short is a write of records, or a roll, refused for want of space
	// (ENOSPC, EDQUOT) or by the file size limit (EFBIG): the kernel kept
	// everything written before it; size counts the whole lines the
	// refused batch left (keepWhole), and at most part of a line lies
	// after it. resume cuts that part off and goes on.
	short error
}

// zeroChunk is how far ahead of its records a prezeroing sink writes
// zeros, in one extension, or a quarter of its segment size if that is
// less; another starts once less than half of it is left.
const zeroChunk = 4 << 20

func (s *fileSink) chunk() int64 { return max(min(zeroChunk, s.max/4), 1) }

// reserve is the room ahead of its records that a prezeroing sink keeps
// for the calls under way: once an extension of its zeros has failed and
// less than this is left, lowRoom refuses new calls, so that a full disk
// refuses calls before they change anything rather than after (1 MiB
// with the default segment size; the records of calls under way rarely
// take more, and those of a call past it are refused after its change,
// as without a reserve).
func (s *fileSink) reserve() int64 { return max(s.chunk()/4, 1) }

// errLowRoom is lowRoom's error: err is why the zeros could not be
// extended.
type errLowRoom struct {
	left int64
	err  error
}

func (e *errLowRoom) Error() string {
	return fmt.Sprintf("audit: %d bytes left ahead of the trail's records, kept for the calls under way, and no room for more: %v", e.left, e.err)
}
func (e *errLowRoom) Unwrap() error { return e.err }

// lowRoom implements roomKeeper; the leader calls it. With less than the
// reserve left, it first tries again to write the zeros that Retry's
// check asks for (probeWant), as that check would: the disk may have
// room again, and a Retry that finds a commit under way takes the
// commit's outcome for its own. A failure of those zeros other than for
// want of room leaves the records to be appended, as a failed extension
// does.
func (s *fileSink) lowRoom() error {
	if s.roomLeft() == nil {
		return nil
	}
	s.zeroing.Lock()
	size := s.size
	from, to := max(size, s.zeroed.Load()), size+s.probeWant(size)
	if from < to {
		end, err := s.extend(s.f.Name(), from, to)
		if err == nil {
			s.zeroed.Store(to)
			s.zeroErr.Store(nil)
			s.zeroing.Unlock()
			s.zeroAhead()
			return nil
		}
		s.zeroed.Store(end)
		s.zerosFailed(err)
	}
	s.zeroing.Unlock()
	return s.roomLeft()
}

// roomLeft returns an errLowRoom if the sink prezeroes, its zeros were
// refused for want of room, and less than the reserve of them is left
// within the segment; the leader calls it.
func (s *fileSink) roomLeft() error {
	if !s.prezero {
		return nil
	}
	p := s.zeroErr.Load()
	zeroed := s.zeroed.Load()
	if p == nil || !outOfSpace(*p) || zeroed >= s.max || zeroed-s.size >= s.reserve() {
		return nil
	}
	return &errLowRoom{left: zeroed - s.size, err: *p}
}

// probeWant is how much room after records ending at size probe asks
// for: probeBytes or, for a prezeroing sink, its reserve if more, within
// the segment.
func (s *fileSink) probeWant(size int64) int64 {
	want := int64(probeBytes)
	if s.prezero {
		want = max(want, min(s.reserve(), s.max-size))
	}
	return want
}

func (s *fileSink) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = err
	}
	return err
}

// failWrite records err, the failure of a write of records or of a
// roll: one for want of space or by the file size limit (outOfSpace)
// leaves the sink to be mended by resume, any other fails it for good.
func (s *fileSink) failWrite(err error) error {
	if !outOfSpace(err) {
		return s.fail(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.short = err
	}
	return err
}

// outOfSpace reports whether err is a write refused for want of space
// or by a file size limit: a refusal at the call, which loses nothing
// written before it, unlike an I/O error or a failed fsync (syncError),
// whatever its errno.
func outOfSpace(err error) bool {
	var se *syncError
	if errors.As(err, &se) {
		return false
	}
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) || errors.Is(err, unix.EFBIG)
}

// syncError is the failure of an fsync of the trail's files, or of a
// close after one (which NFS uses to report a failed write). It may
// report ENOSPC or EDQUOT (a file system that allocates blocks only when
// it writes the pages back, NFS), but unlike a write refused at the
// call it means that pages written before may be lost, and the report
// is given once: it fails the sink for good.
type syncError struct{ err error }

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }

// syncFile fsyncs f (s.fsync, for a test), marking a failure as a
// syncError.
func (s *fileSink) syncFile(f *os.File) error {
	sync := (*os.File).Sync
	if s.fsync != nil {
		sync = s.fsync
	}
	if err := sync(f); err != nil {
		return &syncError{err}
	}
	return nil
}

func (s *fileSink) write(lines []byte, ends []int, _ uint64) error {
	if s.dir != "" && s.size > 0 && s.size+int64(len(lines)) > s.max {
		if err := s.startNext(); err != nil {
			return err
		}
	}
	end := s.size + int64(len(lines))
	if end <= s.zeroed.Load() {
		return s.writeAt(lines, ends)
	}
	// Past the zeros: wait for an extension under way, which may cover
	// the batch, and keep the next from starting until it is written.
	s.zeroing.Lock()
	err := s.writeAt(lines, ends)
	if s.prezero && s.zeroed.Load() < s.size {
		s.zeroed.Store(s.size)
	}
	s.zeroing.Unlock()
	if err == nil {
		s.zeroAhead()
	}
	return err
}

// writeAt writes lines after the records. A write cut short keeps the
// whole lines it wrote (keepWhole), for resume to cut off only the rest.
func (s *fileSink) writeAt(lines []byte, ends []int) error {
	n, err := s.f.WriteAt(lines, s.size)
	if err != nil {
		s.keepWhole(lines, ends)
		return s.failWrite(err)
	}
	s.size += int64(n)
	if s.prezero && s.zeroed.Load()-s.size < s.chunk()/2 {
		s.zeroAhead()
	}
	return nil
}

// keepWhole takes the whole lines that a write of lines cut short left
// after the records as records of the chain: a reader of the trail may
// have read them already (it reads every complete line), and a line it
// has read must stay as it is, or the records written in its place
// would go unread or be read in part. Their calls are refused all the
// same, as those of a PostgreSQL commit lost with its connection may
// be while their records stay; resume goes on after the last of them.
// What follows them, part of a line, is never read as a record and is
// cut off.
func (s *fileSink) keepWhole(lines []byte, ends []int) {
	k, _ := slices.BinarySearch(ends, s.written(lines)+1) // the lines ending at or before it
	if k == 0 {
		return
	}
	start := 0
	if k > 1 {
		start = ends[k-2]
	}
	hash, seq, ok := lineHead(lines[start : ends[k-1]-1])
	if !ok {
		return // not a record: cut off with the rest (never so for the log's own lines)
	}
	s.size += int64(ends[k-1])
	s.keptSeq, s.keptHash = seq, hash
}

// written returns how many bytes of lines a write of them after the
// records, which failed, left in the file: the count WriteAt returns
// leaves out those of its last pwrite, cut short by the error. The file
// holds zeros or nothing after its records before such a write, and no
// line holds a zero byte, so it holds the bytes that match lines there.
func (s *fileSink) written(lines []byte) int {
	buf := make([]byte, len(lines))
	n, _ := s.f.ReadAt(buf, s.size)
	i := 0
	for i < n && buf[i] == lines[i] {
		i++
	}
	return i
}

// zerosFailed notes err, a failure to write zeros ahead of the records
// (by zeroAhead, lowRoom or probe), for lowRoom, and tells the observer.
func (s *fileSink) zerosFailed(err error) {
	s.zeroErr.Store(&err)
	if o := s.obs.Load(); o != nil {
		(*o).ZerosFailed(err)
	}
}

// zeroAhead starts writing the next chunk of zeros after those the file
// has, in the background, unless that is under way or would take the
// segment past its limit. Zeros that fail to be written (a full disk) cost
// only speed: records are then appended, and the next segment tries
// again.
func (s *fileSink) zeroAhead() {
	if !s.prezero || !s.zeroing.TryLock() {
		return
	}
	if p := s.zeroErr.Load(); p != nil {
		s.zeroing.Unlock()
		return // until the next segment
	}
	from := s.zeroed.Load()
	to := min(from+s.chunk(), s.max)
	if to <= from {
		s.zeroing.Unlock()
		return
	}
	name := s.f.Name()
	go func() {
		defer s.zeroing.Unlock()
		if end, err := s.extend(name, from, to); err != nil {
			// Zeros refused for want of room keep those written before
			// the refusal: the room left is theirs.
			s.zeroed.Store(end)
			s.zerosFailed(err)
			return
		}
		s.zeroed.Store(to)
	}()
}

// extend writes the zeros from offset from to offset to of the segment at
// path through a descriptor of its own, and returns where the zeros
// written end (to, or less if it fails: writeZeros). A write error of a
// file is reported once to each of its open file descriptions (errseq):
// the fdatasync of the zeros, run beside those of the records, must not
// take the report of a failed write of records from the fdatasync that
// acknowledges them.
func (s *fileSink) extend(path string, from, to int64) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return from, err
	}
	end, err := s.zeros(f, from, to)
	if cerr := f.Close(); err == nil && cerr != nil {
		end, err = from, cerr
	}
	return end, err
}

// writeZeros writes zeros to f from offset from to offset to, and makes
// them durable with the file's new size; it returns where the durable
// zeros end. Refused for want of room partway (outOfSpace: a disk with
// less room than the zeros), it makes those written durable and returns
// their end with the error, so that the room they took is counted as
// room ahead of the records; failing otherwise, it returns from.
func writeZeros(f *os.File, from, to int64) (int64, error) {
	at, err := pwriteZeros(f, from, to)
	if err != nil {
		if at > from && outOfSpace(err) && fdatasync(f) == nil {
			return at, err
		}
		return from, err
	}
	if err := fdatasync(f); err != nil {
		return from, err
	}
	return to, nil
}

// pwriteZeros writes zeros to f from offset from to offset to and returns
// where those written end, a write cut short included (which
// (*os.File).WriteAt leaves out of its count when the next fails).
func pwriteZeros(f *os.File, from, to int64) (int64, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return from, err
	}
	zeros := make([]byte, min(to-from, 256<<10))
	at := from
	var werr error
	err = rc.Control(func(fd uintptr) {
		for at < to && werr == nil {
			n, err := unix.Pwrite(int(fd), zeros[:min(int64(len(zeros)), to-at)], at)
			if n > 0 {
				at += int64(n)
			}
			switch {
			case err == unix.EINTR:
			case err != nil:
				werr = &os.PathError{Op: "write", Path: f.Name(), Err: err}
			case n == 0:
				werr = &os.PathError{Op: "write", Path: f.Name(), Err: io.ErrShortWrite}
			}
		}
	})
	if err == nil {
		err = werr
	}
	return at, err
}

// startNext rolls to the next segment (roll), noting a roll refused for
// want of room for probe to try again.
func (s *fileSink) startNext() error {
	if err := s.roll(); err != nil {
		s.rollDue = outOfSpace(err)
		return s.failWrite(fmt.Errorf("audit: start segment %d: %w", s.n+1, err))
	}
	s.rollDue = false
	return nil
}

// createSegment creates the segment file at path, which must not exist.
func createSegment(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
}

// cut waits for an extension under way, then cuts f to its records and
// fsyncs it, so that a closed segment holds exactly its records.
func (s *fileSink) cut() error {
	if !s.prezero {
		return nil
	}
	s.zeroing.Lock()
	defer s.zeroing.Unlock()
	if err := s.f.Truncate(s.size); err != nil {
		return err
	}
	s.zeroed.Store(s.size)
	return s.syncFile(s.f)
}

// roll closes the active segment and starts the next. The old one is cut
// to its records and fsynced, and the new one created, fsynced and named
// in its fsynced directory, before any record goes into it: a crash at
// any point leaves every acknowledged record in place and a chain that
// continues in the next segment, or an empty last segment that Open
// continues.
func (s *fileSink) roll() error {
	if err := s.cut(); err != nil {
		return err
	}
	if err := s.syncFile(s.f); err != nil {
		return err
	}
	next := filepath.Join(s.dir, SegmentName(s.n+1))
	f, err := s.create(next)
	if err != nil {
		return err
	}
	if err := s.syncFile(f); err != nil {
		f.Close()
		return err
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return &syncError{err}
	}
	s.mu.Lock()
	old := s.f
	s.f, s.size, s.n = f, 0, s.n+1
	s.zeroed.Store(0)
	s.zeroErr.Store(nil)
	s.mu.Unlock()
	s.zeroAhead()
	if err := old.Close(); err != nil {
		return &syncError{err} // the roll is done: not one to try again
	}
	return nil
}

// sync may run beside write (Log.SyncEvery): os.File allows it, and mu
// keeps roll from closing the file under it.
func (s *fileSink) sync() error {
	s.mu.RLock()
	err := fdatasync(s.f)
	s.mu.RUnlock()
	if err != nil {
		return s.fail(err)
	}
	return nil
}

// fdatasync flushes f's data, and its size if that changed, to stable
// storage (fdatasync(2)); the metadata left out (times) is not needed to
// read the records back.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for {
			if serr = unix.Fdatasync(int(fd)); serr != unix.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}

// resume goes on from seq and hash, the log's last record written, after
// a write refused for want of space (short): it cuts off what was written
// of the refused batch after its whole lines (keepWhole) and fdatasyncs
// the file, so that the records before the cut are durable and the next
// batch follows them. It returns the last record kept, or seq and hash
// if the batch left no whole line. A sink that failed otherwise
// (failed), or whose fdatasync fails now, stays failed.
func (s *fileSink) resume(seq uint64, hash string) (uint64, string, error) {
	s.zeroing.Lock() // no extension writes while the file is cut
	defer s.zeroing.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return 0, "", s.failed
	}
	if s.short != nil {
		if err := s.f.Truncate(s.size); err != nil {
			return 0, "", err
		}
		if err := fdatasync(s.f); err != nil {
			s.failed = err
			return 0, "", err
		}
		if s.prezero {
			s.zeroed.Store(s.size)
		}
		s.short = nil
	}
	if s.keptHash != "" {
		seq, hash = s.keptSeq, s.keptHash
		s.keptSeq, s.keptHash = 0, ""
	}
	return seq, hash, nil
}

// probeBytes is how much room probe asks for after the records: more
// than one record takes (its request parameters are bounded at 64 KiB).
const probeBytes = 128 << 10

// probe checks that the file takes probeBytes after its records (a
// prezeroing sink: its reserve, if more, within the segment), as a batch
// of records would take them: it writes zeros there and fdatasyncs them,
// unless zeros are there already. Zeros that fail beyond those the file
// has leave the sink as it is: refused for want of room, lowRoom goes on
// refusing calls; failing otherwise, they cost only speed, as a failed
// extension does, and probe succeeds. A prezeroing sink keeps them as
// zeros ahead of its records (and tries again to write more: zeros that
// failed for want of space are tried again once there is room); another
// sink cuts them off again. After a roll refused for want of room it
// first rolls, as the next batch would: the room to check is the next
// segment's. A refusal for want of space or by the size limit leaves the
// sink to be mended again; any other failure fails it.
func (s *fileSink) probe(uint64) error {
	s.mu.RLock()
	failed := s.failed
	s.mu.RUnlock()
	if failed != nil {
		return failed
	}
	if s.rollDue {
		if err := s.startNext(); err != nil {
			return err
		}
	}
	s.zeroing.Lock()
	s.mu.RLock()
	failed, size := s.failed, s.size
	s.mu.RUnlock()
	if failed != nil {
		s.zeroing.Unlock()
		return failed
	}
	to := size + s.probeWant(size)
	from := max(size, s.zeroed.Load())
	if from >= to {
		s.zeroing.Unlock()
		return nil
	}
	end, err := s.extend(s.f.Name(), from, to)
	if err == nil && !s.prezero {
		err = s.f.Truncate(size)
	}
	if err != nil && s.prezero && end > size {
		// Only zeros ahead of those the file has failed: the records,
		// and the zeros kept for the calls under way, those written now
		// among them, stay as they are. Refused for want of room, the
		// calls are still refused (lowRoom); failing otherwise, the zeros
		// cost only speed, as a failed extension does: the records are
		// appended after them.
		s.zeroed.Store(end)
		s.zerosFailed(err)
		s.zeroing.Unlock()
		if !outOfSpace(err) {
			return nil
		}
		return err
	}
	if err != nil {
		s.zeroing.Unlock()
		return s.failWrite(err)
	}
	if s.prezero {
		s.zeroed.Store(to)
		s.zeroErr.Store(nil)
	}
	s.zeroing.Unlock()
	s.zeroAhead()
	return nil
}

// close cuts the active segment to its records, unless a write failed
// (the file is then left as it is, for Open to check), and closes it.
func (s *fileSink) close() error {
	s.mu.RLock()
	failed := s.failed
	s.mu.RUnlock()
	var err error
	if failed == nil {
		err = s.cut()
	} else {
		s.zeroing.Lock() // no extension writes after the close
		defer s.zeroing.Unlock()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Open opens (creating if needed) the log at path and continues its chain,
// in that one file. A last line cut short by a crash (a record never
// acknowledged) is removed; anything else that does not verify is an
// error.
func Open(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	seq, last, end, err := recoverFile(f, genesis, 0)
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := continueAt(f, end); err != nil {
		return nil, err
	}
	return newLog(&fileSink{f: f, size: end, zeros: writeZeros}, "", seq, last), nil
}

// OpenDir opens the trail of the data directory dir (creating its first
// segment, audit.log, if it has none) and continues its chain in its last
// segment, rolling to a new segment when a batch would take the active
// one past maxBytes (0: DefaultSegmentBytes). It checks only the last
// segment, and its link to the last record of the one before (of which it
// reads only that record): a last line cut short by a crash is removed,
// anything else that does not verify is an error.
// Segments moved away (archived) before the last are not needed.
func OpenDir(dir string, maxBytes int64) (*Log, error) {
	return OpenDirChecked(dir, maxBytes, nil)
}

// OpenDirChecked is OpenDir calling check, if not nil, with the sequence
// number and hash of the trail's last record once it is found and before
// anything is written: an error of check is OpenDirChecked's, and leaves
// the trail as it was, a last line cut short included.
func OpenDirChecked(dir string, maxBytes int64, check func(seq uint64, hash string) error) (*Log, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultSegmentBytes
	}
	segs, err := Segments(dir)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		segs = []Segment{{N: 1, Path: filepath.Join(dir, FirstSegment)}}
	}
	active := segs[len(segs)-1]
	// The head of the segment before, to continue from if the active one
	// is empty (a crash right after a roll) and to check its link.
	prevSeq, prevHash := uint64(0), genesis
	var prevFound bool
	if len(segs) > 1 {
		p := segs[len(segs)-2]
		if p.N != active.N-1 {
			return nil, fmt.Errorf("audit log: segment %d is missing before %s (run kms audit verify)", active.N-1, active.Name())
		}
		pf, err := os.Open(p.Path)
		if err != nil {
			return nil, err
		}
		prevSeq, prevHash, err = lastRecord(pf)
		pf.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name(), err)
		}
		prevFound = true
	}
	f, err := os.OpenFile(active.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	start, startSeq := genesis, uint64(0)
	if active.N > 1 {
		start, startSeq = "", 0 // taken from the segment's first record
	}
	seq, last, end, err := recoverFile(f, start, startSeq)
	if err == nil && prevFound && end > 0 {
		err = checkLink(f, prevSeq, prevHash)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", active.Name(), err)
	}
	if end == 0 && active.N > 1 {
		if !prevFound {
			f.Close()
			return nil, fmt.Errorf("audit log: %s is empty and the segment before it is missing", active.Name())
		}
		seq, last = prevSeq, prevHash
	}
	if check != nil {
		if err := check(seq, last); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := continueAt(f, end); err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	s := &fileSink{f: f, size: end, dir: dir, n: active.N, max: maxBytes, prezero: true, zeros: writeZeros, create: createSegment}
	s.zeroed.Store(end)
	s.zeroAhead()
	l := newLog(s, "", seq, last)
	// A start on a full disk refuses calls from the first, as the
	// reserve running out would (lowRoom), once the first zeros are
	// written or refused.
	s.zeroing.Lock()
	s.zeroing.Unlock()
	if err := s.lowRoom(); err != nil {
		l.failed = err
		l.failing.Store(true)
	}
	return l, nil
}

// continueAt cuts f after its last complete record, at end, and positions
// it there; on error it closes f.
func continueAt(f *os.File, end int64) error {
	if err := f.Truncate(end); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	return nil
}

// lastRecord returns the sequence number and hash of the last record of
// a segment before the active one, reading only its last line: the log
// wrote the records before it after the chain it took up on opening, and
// kms audit verify checks them all. A segment is closed only after whole
// batches, so it must end in a complete line, whose own hash must verify.
func lastRecord(f *os.File) (uint64, string, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	if fi.Size() == 0 {
		return 0, "", errors.New("audit log is damaged: the segment is empty (run kms audit verify)")
	}
	b, end, err := lastLine(f, fi.Size())
	if err != nil {
		return 0, "", err
	}
	if end != fi.Size() {
		return 0, "", errors.New("audit log is damaged: the segment's last line is incomplete (run kms audit verify)")
	}
	var ln line
	var ev chainFields
	if json.Unmarshal(b, &ln) != nil || json.Unmarshal(ln.Event, &ev) != nil {
		return 0, "", errors.New("audit log is damaged at its last line: not a record (run kms audit verify)")
	}
	hash, seq, err := checkLine(b, ev.PrevHash, ev.Sequence)
	if err != nil {
		return 0, "", fmt.Errorf("audit log is damaged at its last record: %w (run kms audit verify)", err)
	}
	return seq, hash, nil
}

// lastLine returns the last complete line of the first size bytes of f,
// without its newline, and the offset just after that newline; nil and 0
// if there is none. It reads from the end, as little as the line needs.
func lastLine(f *os.File, size int64) ([]byte, int64, error) {
	for window := min(size, 64<<10); window > 0; window = min(size, 4*window) {
		buf := make([]byte, window)
		if _, err := f.ReadAt(buf, size-window); err != nil {
			return nil, 0, err
		}
		j := bytes.LastIndexByte(buf, '\n')
		i := bytes.LastIndexByte(buf[:max(j, 0)], '\n')
		if i < 0 && window < size {
			continue // the line, or what follows it, is longer than the window
		}
		if j < 0 {
			return nil, 0, nil
		}
		return buf[i+1 : j], size - window + int64(j) + 1, nil
	}
	return nil, 0, nil
}

// checkLink checks that the first record of the segment f chains to
// record seq, whose hash is hash.
func checkLink(f *os.File, seq uint64, hash string) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	b, err := bufio.NewReader(f).ReadBytes('\n')
	if err != nil {
		return err
	}
	if _, _, err := checkLine(b[:len(b)-1], hash, seq+1); err != nil {
		return fmt.Errorf("audit log is damaged: its first record does not follow the segment before: %w (run kms audit verify)", err)
	}
	return nil
}

// recoverFile reads a segment of a chain to its end and returns its last
// record and the offset after it. The segment's first record follows
// record seq, whose hash is prev; if prev is "", the first record is taken
// as it says it follows (its link is checked elsewhere). A large segment
// is checked in pieces on every core (recoverPieces).
func recoverFile(f *os.File, prev string, seq uint64) (uint64, string, int64, error) {
	return recoverFileIn(f, prev, seq, runtime.GOMAXPROCS(0), 8<<20)
}

// recoverFileIn is recoverFile in up to workers pieces when the segment
// holds at least minBytes.
func recoverFileIn(f *os.File, prev string, seq uint64, workers int, minBytes int64) (uint64, string, int64, error) {
	if fi, err := f.Stat(); err == nil && workers > 1 && fi.Size() >= minBytes {
		if s, h, end, ok := recoverPieces(f, fi.Size(), prev, seq, workers); ok {
			return s, h, end, nil
		}
		// A break anywhere, or pieces that do not link: the whole segment
		// again, in order, for the error it gives.
	}
	r := recoverLines(io.NewSectionReader(f, 0, math.MaxInt64), prev, seq)
	return r.seq, r.last, r.end, r.err
}

// recovered is what recoverLines found in a piece of a segment.
type recovered struct {
	seq   uint64 // the last record's sequence number
	last  string // and its hash
	end   int64  // the offset after it, from the piece's start
	lines int    // complete lines
	// The link the piece's first record claims, when it was read with
	// prev "": the hash and sequence number of the record before it.
	firstPrev string
	firstSeq  uint64
	err       error
}

// recoverLines checks the complete lines of r as recoverFile does.
func recoverLines(r io.Reader, prev string, seq uint64) recovered {
	out := recovered{seq: seq, last: prev}
	_, err := eachLine(SegmentData(r), func(b []byte) error {
		if out.last == "" {
			var ev struct {
				Sequence uint64 `json:"sequence"`
				PrevHash string `json:"previousHash"`
			}
			var ln line
			if json.Unmarshal(b, &ln) != nil || json.Unmarshal(ln.Event, &ev) != nil || ev.Sequence == 0 {
				return fmt.Errorf("audit log is damaged at its first line: not a record (run kms audit verify)")
			}
			out.last, out.seq = ev.PrevHash, ev.Sequence-1
			out.firstPrev, out.firstSeq = out.last, out.seq
		}
		hash, s, verr := checkLine(b, out.last, out.seq+1)
		if verr != nil {
			return fmt.Errorf("audit log is damaged at record %d: %w (run kms audit verify)", out.seq+1, verr)
		}
		out.last, out.seq = hash, s
		out.end += int64(len(b)) + 1
		out.lines++
		return nil
	})
	if err != nil {
		return recovered{err: err}
	}
	return out // a partial last line is dropped
}

// recoverPieces checks a segment of size bytes in up to workers pieces at
// once, each starting after a newline and taking its chain from its first
// line, then checks that each piece's first record follows the last of
// the piece before. It reports false on any break, which the caller then
// finds by reading the segment in order.
func recoverPieces(f *os.File, size int64, prev string, seq uint64, workers int) (uint64, string, int64, bool) {
	starts := pieceStarts(f, size, workers)
	parts := make([]recovered, len(starts))
	var wg sync.WaitGroup
	for i := range starts {
		end := size
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		wg.Go(func() {
			p, s := "", uint64(0) // taken from the piece's first line
			if i == 0 {
				p, s = prev, seq
			}
			parts[i] = recoverLines(io.NewSectionReader(f, starts[i], end-starts[i]), p, s)
		})
	}
	wg.Wait()
	for i, p := range parts {
		if p.err != nil {
			return 0, "", 0, false
		}
		last := i == len(parts)-1
		if !last && (p.lines == 0 || starts[i]+p.end != starts[i+1]) {
			return 0, "", 0, false // a piece before the last ends in a whole line
		}
		if i > 0 && p.lines > 0 && (p.firstPrev != parts[i-1].last || p.firstSeq != parts[i-1].seq) {
			return 0, "", 0, false
		}
		if last && p.lines == 0 && i > 0 {
			// Nothing whole after the piece before: a line cut short.
			return parts[i-1].seq, parts[i-1].last, starts[i], true
		}
	}
	p := parts[len(parts)-1]
	return p.seq, p.last, starts[len(parts)-1] + p.end, true
}

// pieceStarts returns where the pieces of a segment of size bytes start:
// 0, then for each further piece the offset after the first newline past
// its even share of the segment, in increasing order.
func pieceStarts(f *os.File, size int64, workers int) []int64 {
	starts := []int64{0}
	buf := make([]byte, 64<<10)
	for i := 1; i < workers; i++ {
		at := max(size*int64(i)/int64(workers), starts[len(starts)-1])
		for at < size {
			n, err := f.ReadAt(buf, at)
			if j := bytes.IndexByte(buf[:n], '\n'); j >= 0 {
				at += int64(j) + 1
				break
			}
			at += int64(n)
			if err != nil {
				at = size
			}
		}
		if at >= size || at <= starts[len(starts)-1] {
			break
		}
		starts = append(starts, at)
	}
	return starts
}

// Problem is the first break of a chain or of its digests.
type Problem struct {
	// Line is the 1-based line number in the log file, or in the digest
	// file if Digest is set. In PostgreSQL it is the record's sequence
	// number (for a digest: the record the digest names).
	Line int
	// Seq is the sequence number of the record a break of a log file's
	// chain is at (the one expected there), where known; 0 otherwise.
	Seq    uint64
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

// VerifyAll is Verify reporting every problem, not only the first: it
// follows the chain past each break by the records' own sequence numbers
// and previousHash (follow.go), so that one change is reported once and
// does not hide the ones after it. The number is that of the records
// before the first break.
func VerifyAll(r io.Reader) (int, []*Problem, error) {
	c := NewLogCheck(nil)
	err := c.Read(r)
	return c.Verified(), c.Problems(), err
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
// A line that is not a record stops it with an error, as one longer than
// any record (maxLine) does before it is read whole; bytes after the last
// newline are not read (a server may be writing them).
func Read(r io.Reader, fn func(*Record, json.RawMessage) error) error {
	_, err := readRecords(r, fn)
	return err
}

// ReadClosed is Read for a closed segment (one before the active
// segment, or archived): a segment is cut to its records before the
// next one is started, so bytes after its last newline mean it was
// damaged or edited since. They stop it with an error, after fn has had
// the records before them.
func ReadClosed(path string, fn func(*Record, json.RawMessage) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rest, err := readRecords(f, fn)
	if err == nil && len(rest) > 0 {
		err = errDamagedSegment(filepath.Base(path))
	}
	return err
}

// readRecords calls fn with every record of r and returns the bytes
// after its last newline.
func readRecords(r io.Reader, fn func(*Record, json.RawMessage) error) ([]byte, error) {
	return eachLineIn(bufio.NewReader(r), func(b []byte) error {
		if len(b) > maxLine {
			return errLongLine
		}
		_, rec, event, err := parseLine(b)
		if err != nil {
			return err
		}
		return fn(rec, event)
	})
}
