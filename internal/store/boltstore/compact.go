package boltstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/openkms/kms/internal/store"
)

const (
	// maxHeldKeys and maxHeldBytes bound the keys (and the bytes
	// written to them) that Compact applies to its copy while it holds
	// the gate; past them it catches up first without holding it.
	maxHeldKeys  = 256
	maxHeldBytes = 256 << 10
	// catchUpRounds bounds those catch-ups: past them Compact applies
	// what is left while it holds the gate, however much.
	catchUpRounds = 4
	// copyChunkBytes bounds the records copied in one read transaction:
	// a write that must grow the file's mapping waits for the
	// transaction.
	copyChunkBytes = 2 << 20
)

// compactHooks are called at Compact's steps, by tests.
type compactHooks struct {
	// barrier: before Compact waits for the write in progress.
	barrier func()
	// chunk: between two chunks of the copy, outside their read
	// transactions, with the last key copied.
	chunk func(last []byte)
	// copied: after the copy, and after each catch-up round, before
	// Compact holds the gate.
	copied func()
	// held: while Compact holds the gate, with the number of keys it
	// applies to its copy.
	held func(keys int)
}

// Compact rewrites the store's file with nothing but its live records.
// bbolt keeps what a change replaced or deleted in the file's free pages
// until it happens to reuse them: after a root key rotation, every value
// sealed under the retired key could still be read there, and opened
// with that key; after a key's deletion, its sealed material.
//
// Compact copies the records into a new file beside the store's (mode
// 0600) while the Store serves, from read transactions, tracking the
// keys that Updates write meanwhile. It then holds every transaction
// back (View and Update wait, or return their context's error if it ends
// first), applies the keys written since the copy to it from the store's
// file, zeroes the copy's free pages (the pages those changes replaced
// hold values deleted since, perhaps), syncs it, and renames it over the
// store's file while it still holds the old one's lock, so that no other
// process writes to the old file meanwhile; the Store goes on with the
// new one. Calls wait for what changed during the copy, not for the
// copy (but for a pass over the copy's list of pages): when more than
// maxHeldKeys keys or maxHeldBytes were written, Compact first applies
// them without holding the transactions back, up to catchUpRounds
// times, then holds them back for whatever is left.
//
// Before it holds the transactions back it waits for those in progress
// to end; if they do not end within DrainWait (a live backup's
// snapshot), it gives up and lets the others go on, changing nothing.
// It needs room for a second copy of the live records; without it, the
// Store goes on with the old file as it was. One Compact runs at a time.
//
// If ctx ends before it holds the transactions back (a server shutting
// down must not wait for the copy of a large file), it stops, removes its
// copy, and the Store goes on with the old file as it was; its error
// wraps ctx's. It checks ctx before each record it copies.
//
// It clears the old bytes from the file, not from the disk: the file
// system's free blocks (and a disk's spare sectors) may still hold them.
// When only the sync of the directory after the rename fails, the error
// wraps ErrCompactedNotDurable.
func (s *Store) Compact(ctx context.Context) error {
	_, err := s.CompactHeld(ctx)
	return err
}

// CompactHeld compacts the store as Compact does, and returns for how
// long it held the transactions back (the calls that read or write the
// store waited at most that long): zero if it failed before, and its
// wait for those in progress if it gave up then.
func (s *Store) CompactHeld(ctx context.Context) (held time.Duration, err error) {
	s.compacting.Lock()
	defer s.compacting.Unlock()
	path := s.path
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("compact %s: %w", path, err)
	}
	s.written.start()
	defer s.written.stop()
	// Every write committed after the copy's first snapshot is tracked.
	if err := s.barrier(); err != nil {
		return 0, fmt.Errorf("compact %s: %w", path, err)
	}
	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err // a copy left by a compaction that was killed
	}
	var dstFile *os.File
	exclusive := func(name string, flag int, perm os.FileMode) (*os.File, error) {
		var err error
		dstFile, err = openNoFollow(name, flag|os.O_CREATE|os.O_EXCL, perm)
		return dstFile, err
	}
	// Not synced until the copy is whole: it is removed if anything fails.
	pageSize := os.Getpagesize() // bbolt's default
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second, OpenFile: exclusive, NoSync: true, PageSize: pageSize})
	if err != nil {
		return 0, fmt.Errorf("compact %s: %w", path, err)
	}
	fail := func(err error) error {
		dst.Close()
		os.Remove(tmp)
		return fmt.Errorf("compact %s: %w", path, err)
	}
	if err := s.copyLive(ctx, dst); err != nil {
		return 0, fail(err)
	}
	s.hook()
	for round := 0; round < catchUpRounds; round++ {
		if keys, n := s.written.size(); keys <= s.heldKeys && n <= s.heldBytes {
			break
		}
		if err := ctx.Err(); err != nil {
			return 0, fail(err)
		}
		keys := s.written.take()
		// Every write committed after the snapshot apply reads is
		// tracked anew.
		if err := s.barrier(); err != nil {
			return 0, fail(err)
		}
		if err := s.inGate(func() error { return applyWritten(s.db, dst, keys) }); err != nil {
			return 0, fail(err)
		}
		s.hook()
	}
	// The copy's bulk goes to the disk before the calls are held back,
	// and then only what changed since.
	if err := zeroFreePages(dst, pageSize); err != nil {
		return 0, fail(err)
	}
	if err := dst.Sync(); err != nil {
		return 0, fail(err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fail(err)
	}

	start := time.Now()
	old, err := s.swapIn(dst, dstFile, pageSize)
	held = time.Since(start)
	if old == nil {
		return held, fail(err)
	}
	// After the calls go on: closing the old file frees its blocks,
	// which takes a while for a large one.
	if cerr := old.Close(); err == nil {
		err = cerr
	}
	return held, err
}

// swapIn holds every transaction back, applies to dst what was written
// since the copy, zeroes the pages that freed, syncs dst and renames it
// over the store's file; the Store goes on with it, and with dstFile,
// its file. It returns the old file to close, unless it failed before the
// rename: then dst is still Compact's to remove.
func (s *Store) swapIn(dst *bolt.DB, dstFile *os.File, pageSize int) (old *bolt.DB, err error) {
	if !s.gate.hold(s.drainWait) {
		return nil, fmt.Errorf("transactions in progress did not end within %v", s.drainWait)
	}
	defer s.gate.release()
	if s.closed {
		return nil, store.ErrClosed
	}
	if s.lockLost {
		return nil, s.errLockLost()
	}
	keys := s.written.take()
	if s.hooks.held != nil {
		s.hooks.held(len(keys))
	}
	if len(keys) > 0 {
		if err := guarded(s.path, func() error { return applyWritten(s.db, dst, keys) }); err != nil {
			return nil, err
		}
		if err := zeroFreePages(dst, pageSize); err != nil {
			return nil, err
		}
	}
	dst.NoSync = false // it serves the store's Updates from now on
	if err := dst.Sync(); err != nil {
		return nil, err
	}
	if err := os.Rename(dst.Path(), s.path); err != nil {
		return nil, err
	}
	old, s.db, s.file = s.db, dst, dstFile
	if err := s.syncDir(filepath.Dir(s.path)); err != nil {
		// Renamed, but perhaps not durably: the store goes on with the
		// new file all the same, which holds every record, but writes
		// to it only once the rename is durable.
		s.dirUnsynced.Store(true)
		return old, fmt.Errorf("compact %s: %w: %w", s.path, ErrCompactedNotDurable, err)
	}
	s.dirUnsynced.Store(false)
	return old, nil
}

// hook calls the copied hook, if a test set one.
func (s *Store) hook() {
	if s.hooks.copied != nil {
		s.hooks.copied()
	}
}

// inGate runs fn, which reads s.db, as a transaction of the gate's, so
// that Close waits for it; it returns store.ErrClosed once s is closed.
func (s *Store) inGate(fn func() error) error {
	if err := s.gate.enter(context.Background()); err != nil {
		return err
	}
	defer s.gate.leave()
	if s.closed {
		return store.ErrClosed
	}
	return guarded(s.path, fn)
}

// barrier waits for the write transaction in progress, if any, to end:
// bbolt lets one writer at a time, so every Update that began its
// transaction before the barrier has committed (or rolled back) after
// it, and every one that begins later sees the tracking as it is.
func (s *Store) barrier() error {
	if s.hooks.barrier != nil {
		s.hooks.barrier()
	}
	return s.inGate(func() error {
		tx, err := s.db.Begin(true)
		if err != nil {
			return err
		}
		return tx.Rollback()
	})
}

// copyLive copies the store's records into dst, in chunks of about
// s.copyChunk bytes (copyChunkBytes), each from a read transaction of
// its own: a record written between two chunks is in the copy as it
// was, or not at all, and is tracked. The file must hold nothing but the store's bucket. It
// stops with ctx's error once ctx ends, checked before each record.
func (s *Store) copyLive(ctx context.Context, dst *bolt.DB) error {
	var last []byte // the last key copied
	for first := true; ; first = false {
		if !first && s.hooks.chunk != nil {
			s.hooks.chunk(bytes.Clone(last))
		}
		done := false
		err := s.inGate(func() error {
			return s.db.View(func(stx *bolt.Tx) error {
				if first {
					if err := stx.ForEach(func(name []byte, _ *bolt.Bucket) error {
						if !bytes.Equal(name, bucket) {
							return fmt.Errorf("the file holds a bucket %q besides the store's: not compacted", name)
						}
						return nil
					}); err != nil {
						return err
					}
				}
				return dst.Update(func(dtx *bolt.Tx) error {
					b, err := dtx.CreateBucketIfNotExists(bucket)
					if err != nil {
						return err
					}
					b.FillPercent = 1.0 // the keys come in order: fill every page
					c := stx.Bucket(bucket).Cursor()
					var k, v []byte
					if first {
						k, v = c.First()
					} else if k, v = c.Seek(last); bytes.Equal(k, last) {
						k, v = c.Next()
					}
					for n := 0; k != nil && n < s.copyChunk; k, v = c.Next() {
						if err := ctx.Err(); err != nil {
							return err
						}
						if v == nil {
							return fmt.Errorf("the store's bucket holds a bucket %q: not compacted", k)
						}
						if err := b.Put(k, v); err != nil {
							return err
						}
						n += len(k) + len(v)
						last = append(last[:0], k...)
					}
					done = k == nil
					return nil
				})
			})
		})
		if err != nil || done {
			return err
		}
	}
}

// applyWritten makes the records of keys in dst what they are in src:
// the value src holds, or none.
func applyWritten(src, dst *bolt.DB, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	return src.View(func(stx *bolt.Tx) error {
		return dst.Update(func(dtx *bolt.Tx) error {
			c, b := stx.Bucket(bucket).Cursor(), dtx.Bucket(bucket)
			for _, key := range keys {
				k := []byte(key)
				if found, v := c.Seek(k); bytes.Equal(found, k) && v != nil {
					if err := b.Put(k, v); err != nil {
						return err
					}
				} else if err := b.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// zeroFreePages overwrites the free pages of db, of pageSize bytes,
// which has no transaction open, with zeros: a page of the copy that a later change
// to it replaced still holds the records as they were, since deleted
// perhaps.
func zeroFreePages(db *bolt.DB, pageSize int) error {
	var free []int64
	if err := db.View(func(tx *bolt.Tx) error {
		for id := 2; ; id++ {
			p, err := tx.Page(id)
			if p == nil || err != nil {
				return err // nil past the last page
			}
			if p.Type == "free" {
				free = append(free, int64(id))
			}
		}
	}); err != nil || len(free) == 0 {
		return err
	}
	f, err := openNoFollow(db.Path(), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	zeros := make([]byte, 64*pageSize)
	for i := 0; i < len(free); {
		// A run of consecutive pages, in one write.
		n := 1
		for i+n < len(free) && n < 64 && free[i+n] == free[i]+int64(n) {
			n++
		}
		if _, err := f.WriteAt(zeros[:n*pageSize], free[i]*int64(pageSize)); err != nil {
			f.Close()
			return err
		}
		i += n
	}
	return f.Close()
}
