// Package boltstore implements store.Store on a single bbolt file: the
// embedded default for one node.
//
// Every Update commits with an fsync before it returns, so an acknowledged
// change survives kill -9. bbolt allows one writer at a time; readers
// block only while Compact swaps in its copy of the file (after applying
// to it what changed while it copied), or until their context ends.
// The file is opened with an exclusive lock, so two servers cannot share
// one data directory.
package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/openkms/kms/internal/store"
)

var bucket = []byte("kv")

// Store is a store.Store backed by a bbolt file.
type Store struct {
	path string
	gate gate     // every use of db, file, closed and lockLost is inside it; Compact holds it to swap db
	db   *bolt.DB // the file as it is now: Compact replaces it
	// file is db's file, whose lock keeps other processes out: remap
	// maps it again through a second descriptor, which shares the lock.
	file   *os.File
	closed bool
	// lockLost is set when remap could not take the file's lock back:
	// another process may have written the file, so every call fails.
	lockLost bool
	// drainWait bounds Compact's wait for the transactions in progress,
	// during which new ones wait (DrainWait).
	drainWait time.Duration
	// syncDir makes a directory's entries durable: the package's
	// syncDir, or a failing one in a test.
	syncDir func(dir string) error
	// unmapped is set when a write needed a larger map of the file
	// and bbolt could not make it: bbolt has then no map at all, and
	// the next transaction opens the file again (remap).
	unmapped atomic.Bool
	// dirUnsynced is set when Compact renamed its copy into place but
	// could not sync the directory, and by Open: a Compact killed
	// between its rename and that sync left a file whose name is not
	// durable. Update syncs the directory before it writes.
	dirUnsynced atomic.Bool
	// compacting lets one Compact run at a time: it has kms.db.compact.
	compacting sync.Mutex
	// written tracks the keys Updates write while Compact copies.
	written tracker
	// heldKeys and heldBytes bound what Compact applies to its copy
	// while it holds the gate (maxHeldKeys, maxHeldBytes).
	heldKeys, heldBytes int
	// copyChunk bounds the records Compact copies in one read
	// transaction (copyChunkBytes).
	copyChunk int
	// hooks are called at Compact's steps, by tests.
	hooks compactHooks
	// onRemap is called by remap as it maps the file again, by tests.
	onRemap func()
	// onWriteFailed is called by Update when a write failed, before it
	// asks whether bbolt lost its map, by tests.
	onWriteFailed func()
}

// DrainWait is how long Compact waits for the transactions in progress
// to end, holding new ones back, before it gives up.
const DrainWait = time.Second

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the bbolt file at path with mode 0600.
// It fails after a few seconds if another process holds the file, and at
// once if path is a symbolic link.
//
// It reads every page of the store once (guarded), so that a damaged
// file (cut short, or overwritten in part) is refused here with its name
// instead of crashing the server later: bbolt maps the file into memory,
// and reading past the end of a file cut short is a fault, not an error.
//
// A file that Compact replaced while Open waited for its lock is not the
// store any more: Open opens the one now at path instead. The first
// Update syncs path's directory before it writes (and fails while it
// cannot): a Compact killed after its rename may not have.
func Open(path string) (*Store, error) {
	db, f, err := openDB(path)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, db: db, file: f, drainWait: DrainWait, syncDir: syncDir,
		heldKeys: maxHeldKeys, heldBytes: maxHeldBytes, copyChunk: copyChunkBytes}
	// The file may be a compacted copy that a process killed before it
	// synced the directory renamed into place: a power cut could still
	// bring back the file from before, and with it lose what this Store
	// acknowledged.
	s.dirUnsynced.Store(true)
	return s, nil
}

// openDB opens the bbolt file at path as Open says, and reads it whole.
// It returns the file bbolt opened too, which it holds locked.
func openDB(path string) (*bolt.DB, *os.File, error) {
	var db *bolt.DB
	var f *os.File
	err := guarded(path, func() error {
		var err error
		for tries := 0; ; tries++ {
			opened := func(name string, flag int, perm os.FileMode) (*os.File, error) {
				var err error
				f, err = openNoFollow(name, flag, perm)
				return f, err
			}
			if db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 3 * time.Second, OpenFile: opened}); err != nil {
				return err
			}
			if replaced, err := isReplaced(f, path); err != nil || !replaced || tries == 2 {
				if err == nil && replaced {
					err = errors.New("it was replaced while it was being opened, three times")
				}
				if err != nil {
					return err
				}
				break
			}
			db.Close()
		}
		if err := db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucket)
			return err
		}); err != nil {
			return fmt.Errorf("initialise %s: %w", path, err)
		}
		return db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
			}
			return nil
		})
	})
	if err != nil {
		if db != nil {
			guarded(path, db.Close)
		}
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, nil, fmt.Errorf("open %s: the file is locked by another process (is another server running on this data directory?)", path)
		}
		return nil, nil, openError(path, err)
	}
	return db, f, nil
}

// isReplaced reports whether f, the store's file as opened, is no longer
// the one at path: another process put a new file there (Compact) while
// Open waited for the old one's lock.
func isReplaced(f *os.File, path string) (bool, error) {
	open, err := f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !os.SameFile(open, now), nil
}

// ErrCompactedNotDurable is wrapped by the error of a Compact whose
// compacted file took the place of the store's, but whose directory could
// not be synced: the file is compacted and the Store uses it, but until
// the directory is synced a crash may bring back the file from before.
// Until then Update syncs the directory before it writes, and fails
// without writing if it cannot: a change acknowledged in the new file
// would be lost with it. View goes on.
var ErrCompactedNotDurable = errors.New("the file was compacted, but its rename is not durable until its directory syncs")

// syncDir makes the entries of the directory dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// openError names path in err, a failure to open the store's file,
// unless err names it already (an error of the file system's).
func openError(path string, err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok && pe.Path == path {
		return err
	}
	return fmt.Errorf("open %s: %w", path, err)
}

// openNoFollow opens the store's file as os.OpenFile does, but refuses a
// symbolic link: a link in a data directory could send the keys to a file
// someone else reads, or make the store one they wrote.
func openNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW, perm)
	if errors.Is(err, syscall.ELOOP) {
		return nil, errors.New("it is a symbolic link: the key store must be the file itself")
	}
	return f, err
}

// guarded runs fn, which reads the bbolt file at path, and turns a panic
// or a memory fault in it into an error: bbolt panics on pages it cannot
// read, and faults on pages past the end of a file cut short.
func guarded(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s is damaged (%v): restore the data directory from a backup (kms restore)", path, p)
		}
	}()
	return fn()
}

// View implements store.Store. A read that begins after a write could
// not grow the file's map (Update), before the file is mapped again,
// waits for it.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for again := false; ; again = true {
		if err := s.remap(); err != nil {
			return err
		}
		err := s.view(ctx, fn)
		if again || !errors.Is(err, errNoMap) {
			return err
		}
	}
}

// errNoMap is the error of a transaction that bbolt would not begin,
// having no map of the file: another write lost it (Update). The call
// runs again once the file is mapped again.
var errNoMap = errors.New("the file is not mapped: a write could not grow its map")

// view is View in the gate.
func (s *Store) view(ctx context.Context, fn func(store.Tx) error) error {
	if err := s.gate.enter(ctx); err != nil {
		return err
	}
	defer s.gate.leave()
	ran := false
	err := s.db.View(func(tx *bolt.Tx) error {
		ran = true
		return fn(txn{b: tx.Bucket(bucket)})
	})
	if !ran && errors.Is(err, bolt.ErrInvalidMapping) {
		s.unmapped.Store(true)
		return fmt.Errorf("%s: %w", s.path, errNoMap)
	}
	return mapErr(err)
}

// Update implements store.Store.
//
// A write that needs a larger map of the file than the process may make
// fails, and writes nothing; the Store maps the file again as it was
// before its next transaction. The mmap fails past the process's address
// space limit (RLIMIT_AS: ENOMEM), or, with its memory locked (kms server
// --mlock), past RLIMIT_MEMLOCK (EAGAIN). A write that begins after
// another could not grow the map, before the file is mapped again, waits
// for it.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for again := false; ; again = true {
		if err := s.remap(); err != nil {
			return err
		}
		err := s.update(ctx, fn)
		if !again && errors.Is(err, errNoMap) {
			continue
		}
		if s.unmapped.Load() {
			// bbolt lost its map: the write failed, and the calls after
			// it would too, until the file is mapped again.
			if rerr := s.remap(); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return err
	}
}

// update is Update in the gate.
func (s *Store) update(ctx context.Context, fn func(store.Tx) error) error {
	if err := s.gate.enter(ctx); err != nil {
		return err
	}
	defer s.gate.leave()
	if s.dirUnsynced.Load() {
		if err := s.syncDir(filepath.Dir(s.path)); err != nil {
			return fmt.Errorf("%s may be a compacted copy whose rename is not durable until its directory syncs, which fails: no change is written until it does: %w", s.path, err)
		}
		s.dirUnsynced.Store(false)
	}
	// ran: bbolt began the transaction; committing: fn succeeded, so
	// that an error is the commit's, the one step that grows the map.
	ran, committing := false, false
	err := s.db.Update(func(tx *bolt.Tx) error {
		ran = true
		t := txn{b: tx.Bucket(bucket)}
		if s.written.tracking() {
			t.written = &s.written
		}
		if err := fn(t); err != nil {
			return err
		}
		committing = true
		return nil
	})
	if err != nil && s.onWriteFailed != nil {
		s.onWriteFailed()
	}
	if !ran && errors.Is(err, bolt.ErrInvalidMapping) {
		// Another write lost the map before this one began.
		s.unmapped.Store(true)
		return fmt.Errorf("%s: %w", s.path, errNoMap)
	}
	if committing && err != nil && !s.mapped() {
		s.unmapped.Store(true)
		return fmt.Errorf("%s: the write needed a larger memory map of the file, which failed (%v): it wrote nothing. "+
			"The process may map no more: lift its address space limit (RLIMIT_AS, ulimit -v), or, with its memory locked (--mlock), "+
			"its RLIMIT_MEMLOCK limit (LimitMEMLOCK=infinity) or grant it CAP_IPC_LOCK", s.path, err)
	}
	return mapErr(err)
}

// mapped reports whether bbolt has a map of the file: it has none once
// a remap failed (its ErrInvalidMapping).
func (s *Store) mapped() bool {
	return !errors.Is(s.db.View(func(*bolt.Tx) error { return nil }), bolt.ErrInvalidMapping)
}

// remap maps the file again, when bbolt has no map of it, holding every
// transaction back: it maps the file as it is, at the size it had before
// the write that failed. While it cannot, every call fails with why.
//
// The file stays locked throughout: closing the *bolt.DB would unlock it,
// and another process (kms restore, migrate, root-key rotate) could then
// open it and write to it under this Store. remap opens the file anew in
// bbolt through a second descriptor of the one the old *bolt.DB holds,
// which shares its lock, and closes that descriptor, not the old
// *bolt.DB, which has nothing mapped to unmap.
func (s *Store) remap() error {
	if !s.unmapped.Load() {
		return nil
	}
	if !s.gate.hold(s.drainWait) {
		return fmt.Errorf("%s: the file is to be mapped again, and transactions in progress did not end within %v", s.path, s.drainWait)
	}
	defer s.gate.release()
	switch {
	case s.closed || !s.unmapped.Load():
		return nil
	case s.lockLost:
		return s.errLockLost()
	case s.mapped():
		// Compact put a copy, mapped, in the place of the file.
		s.unmapped.Store(false)
		return nil
	}
	if s.onRemap != nil {
		s.onRemap()
	}
	db, f, err := mapAgain(s.path, s.file)
	if err != nil {
		// bbolt unlocked the file as it gave up, which unlocks the
		// descriptor shared with the old *bolt.DB's: take it back.
		if lerr := syscall.Flock(int(s.file.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); lerr != nil {
			s.lockLost = true
			return s.errLockLost()
		}
		return fmt.Errorf("%s: mapping the file again after a write that could not grow its map: %w", s.path, err)
	}
	s.file.Close()
	s.db, s.file = db, f
	s.unmapped.Store(false)
	return nil
}

// errLockLost is the error of every call once remap lost the file's lock.
func (s *Store) errLockLost() error {
	return fmt.Errorf("%s: its lock was lost as it was mapped again, and another process may have written to it: "+
		"no call reads or writes it until the store is opened again (restart the server)", s.path)
}

// mapAgain opens the bbolt file at path in a new *bolt.DB through a
// second descriptor of held, the file an open *bolt.DB locked: bbolt's
// lock is the open file's, which the two descriptors share, so it takes
// it at once. If it fails, bbolt has unlocked held's file.
func mapAgain(path string, held *os.File) (*bolt.DB, *os.File, error) {
	// Closed on exec, as every descriptor Go opens: a program the
	// process ran would otherwise hold the file's lock past its end.
	fd, err := unix.FcntlInt(held.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	shared := func(string, int, os.FileMode) (*os.File, error) { return f, nil }
	var db *bolt.DB
	err = guarded(path, func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, OpenFile: shared})
		return err
	})
	if err != nil {
		f.Close() // bbolt closed it, unless it panicked
		return nil, nil, err
	}
	return db, f, nil
}

// Close implements store.Store. It waits for a Compact in progress.
func (s *Store) Close() error {
	s.gate.hold(0)
	defer s.gate.release()
	s.closed = true
	return s.db.Close()
}

func mapErr(err error) error {
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return store.ErrClosed
	}
	return err
}

type txn struct {
	b       *bolt.Bucket
	written *tracker // while Compact copies: records the keys put or deleted
}

func (t txn) Get(key []byte) ([]byte, error) {
	v := t.b.Get(key)
	if v == nil {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (t txn) Put(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	if t.written != nil {
		t.written.add(key, len(value))
	}
	return t.b.Put(key, value)
}

func (t txn) Delete(key []byte) error {
	if t.written != nil {
		t.written.add(key, 0)
	}
	return t.b.Delete(key)
}

func (t txn) Scan(prefix, after []byte, fn func(k, v []byte) (bool, error)) error {
	c := t.b.Cursor()
	var k, v []byte
	if after != nil && bytes.Compare(after, prefix) >= 0 {
		k, v = c.Seek(after)
		if k != nil && bytes.Equal(k, after) {
			k, v = c.Next()
		}
	} else {
		k, v = c.Seek(prefix)
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		more, err := fn(k, v)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// ErrLocked is returned by ReadValue when a running server holds the file.
var ErrLocked = errors.New("the key store is in use by a running server")

// ReadValue reads one record of the bbolt file at path, opened read-only
// for the time of the read, waiting at most timeout for a server holding
// the file (ErrLocked). A file that a server's Compact replaced while
// ReadValue waited for its lock no longer takes the server's writes: that
// too is ErrLocked. A missing record is store.ErrNotFound.
func ReadValue(path string, key []byte, timeout time.Duration) ([]byte, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	var db *bolt.DB
	var f *os.File
	opened := func(name string, flag int, perm os.FileMode) (*os.File, error) {
		var err error
		f, err = openNoFollow(name, flag, perm)
		return f, err
	}
	err := guarded(path, func() (err error) {
		db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout, OpenFile: opened})
		return err
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, openError(path, err)
	}
	defer guarded(path, db.Close)
	if replaced, err := isReplaced(f, path); err != nil {
		return nil, openError(path, err)
	} else if replaced {
		return nil, ErrLocked
	}
	var out []byte
	err = guarded(path, func() error {
		return db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucket)
			if b == nil {
				return store.ErrNotFound
			}
			v := b.Get(key)
			if v == nil {
				return store.ErrNotFound
			}
			out = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}
