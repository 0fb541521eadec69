package boltstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// TestCompactLeavesNoReplacedValue: a value that a change replaced stays
// in the file's free pages (after a root key rotation: a value sealed
// under the retired key); once compacted, the file holds only the live
// records, the store goes on with them, and a process that opens the
// store after the compaction (or waited for it) gets the new file.
func TestCompactLeavesNoReplacedValue(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "kms.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	old, live := make([]byte, 300), make([]byte, 300)
	rand.Read(old)
	rand.Read(live)
	put := func(v []byte) {
		t.Helper()
		if err := s.Update(ctx, func(tx store.Tx) error {
			for i := range 50 {
				if err := tx.Put([]byte{'k', byte(i)}, append([]byte{byte(i)}, v...)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	put(old)
	put(live)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, old) {
		t.Fatal("the replaced values are not in the file's free pages: the test shows nothing")
	}

	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, old) {
		t.Error("a replaced value is still in the file after Compact")
	}
	if !bytes.Contains(raw, live) {
		t.Error("a live value is not in the compacted file")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the compacted file: %v, %v", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d entries after Compact, want only kms.db", len(entries))
	}

	// The store goes on with the new file, and holds its lock.
	var got []byte
	if err := s.View(ctx, func(tx store.Tx) error {
		got, err = tx.Get([]byte{'k', 7})
		return err
	}); err != nil || !bytes.Equal(got, append([]byte{7}, live...)) {
		t.Fatalf("a record read after Compact: %x, %v", got, err)
	}
	put(old)
	if _, err := boltstore.ReadValue(path, []byte{'k', 7}, 50*time.Millisecond); err != boltstore.ErrLocked {
		t.Errorf("another process opens the compacted file while the store has it: %v", err)
	}

	// A process that opens the store while it is compacted (waiting for
	// the old file's lock, or after) opens the new file.
	s2 := make(chan *boltstore.Store, 1)
	errs := make(chan error, 1)
	s.Close()
	s, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		st, err := boltstore.Open(path)
		errs <- err
		s2 <- st
	}()
	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	put(live)
	s.Close()
	if err := <-errs; err != nil {
		t.Fatalf("an Open that waited through Compact: %v", err)
	}
	st := <-s2
	defer st.Close()
	if err := st.View(ctx, func(tx store.Tx) error {
		got, err = tx.Get([]byte{'k', 7})
		return err
	}); err != nil || !bytes.Equal(got, append([]byte{7}, live...)) {
		t.Errorf("an Open that waited through Compact reads %x, %v: not the store's file", got, err)
	}
}

// A Compact whose directory sync fails after the rename has compacted
// the file all the same: its error says so (ErrCompactedNotDurable), the
// file holds no replaced value, and the store goes on with it. A Compact
// that fails before the rename does not say so.
func TestCompactWhoseDirectorySyncFails(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "kms.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	old, live := make([]byte, 300), make([]byte, 300)
	rand.Read(old)
	rand.Read(live)
	for _, v := range [][]byte{old, live} {
		if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("k"), v) }); err != nil {
			t.Fatal(err)
		}
	}
	if raw, err := os.ReadFile(path); err != nil || !bytes.Contains(raw, old) {
		t.Fatalf("the replaced value is not in the file's free pages (%v): the test shows nothing", err)
	}
	// Before the rename: the copy's place taken.
	blocker := filepath.Join(dir, "kms.db.compact")
	if err := os.MkdirAll(filepath.Join(blocker, "in"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx); err == nil || errors.Is(err, boltstore.ErrCompactedNotDurable) {
		t.Fatalf("a Compact that could not make its copy: %v", err)
	}
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}

	boltstore.FailDirSync(s, errors.New("input/output error"))
	err = s.Compact(ctx)
	if !errors.Is(err, boltstore.ErrCompactedNotDurable) || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("a Compact whose directory sync failed: %v", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, old) || !bytes.Contains(raw, live) {
		t.Error("the file is not compacted")
	}
	var got []byte
	if err := s.View(ctx, func(tx store.Tx) error {
		got, err = tx.Get([]byte("k"))
		return err
	}); err != nil || !bytes.Equal(got, live) {
		t.Fatalf("a record read after the Compact: %x, %v", got, err)
	}
}

// TestUpdateAfterAnUndurableCompact: after a Compact whose directory
// could not be synced, a crash could bring back the file from before; an
// Update acknowledged in the new file would be lost with it. So Update
// syncs the directory first, and fails, writing nothing, while it cannot.
func TestUpdateAfterAnUndurableCompact(t *testing.T) {
	ctx := context.Background()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	boltstore.FailDirSync(s, errors.New("input/output error"))
	if err := s.Compact(ctx); !errors.Is(err, boltstore.ErrCompactedNotDurable) {
		t.Fatalf("a Compact whose directory sync failed: %v", err)
	}
	put := func() error {
		return s.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("k"), []byte("v")) })
	}
	if err := put(); err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("an Update while the compacted file's rename is not durable: %v", err)
	}
	if err := s.View(ctx, func(tx store.Tx) error {
		_, err := tx.Get([]byte("k"))
		return err
	}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused Update wrote its record: %v", err)
	}
	syncs := 0
	boltstore.CountDirSyncs(s, &syncs)
	for range 2 {
		if err := put(); err != nil {
			t.Fatalf("an Update once the directory syncs: %v", err)
		}
	}
	if syncs != 1 {
		t.Errorf("two Updates synced the directory %d times, want once", syncs)
	}
}

// TestUpdateAfterAKillBeforeTheDirectorySyncs: a server killed between
// Compact's rename and the sync of its directory leaves a kms.db whose
// name is not durable: a power cut could bring back the file from
// before, and with it lose what the next server acknowledged in this
// one. So a Store's first Update syncs the directory before it writes,
// and fails, writing nothing, while it cannot.
func TestUpdateAfterAKillBeforeTheDirectorySyncs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kms.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	// The rename, and no sync after it: as a kill would leave it.
	boltstore.FailDirSync(s, errors.New("killed"))
	if err := s.Compact(ctx); !errors.Is(err, boltstore.ErrCompactedNotDurable) {
		t.Fatalf("a Compact whose directory sync failed: %v", err)
	}
	s.Close()

	s, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	boltstore.FailDirSync(s, errors.New("input/output error"))
	put := func() error {
		return s.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("k"), []byte("v")) })
	}
	if err := put(); err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("the first Update of a Store whose directory does not sync: %v", err)
	}
	if err := s.View(ctx, func(tx store.Tx) error {
		_, err := tx.Get([]byte("k"))
		return err
	}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused Update wrote its record: %v", err)
	}
	syncs := 0
	boltstore.CountDirSyncs(s, &syncs)
	for range 2 {
		if err := put(); err != nil {
			t.Fatalf("an Update once the directory syncs: %v", err)
		}
	}
	if syncs != 1 {
		t.Errorf("two Updates synced the directory %d times, want once", syncs)
	}
}

// endsAtCheck is a context that ends at its nth check (Err), as a
// server's does at SIGTERM while Compact copies: a test cannot time a
// real signal to fall inside the copy of a small store. at runs once,
// just before it ends.
type endsAtCheck struct {
	context.Context
	cancel    context.CancelFunc
	checks, n int
	at        func()
}

func (c *endsAtCheck) Err() error {
	if c.checks++; c.checks == c.n {
		c.at()
		c.cancel()
	}
	return c.Context.Err()
}

// TestCompactStopsWhenItsContextEnds: a Compact whose context ends while
// it copies the records (a server shutting down) stops there, returns
// the context's error, removes its copy, and leaves the store on its old
// file with every record, serving; a Compact after compacts it. One whose
// context has ended before does not start.
func TestCompactStopsWhenItsContextEnds(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "kms.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	const records = 2000
	old, live := make([]byte, 300), make([]byte, 300)
	rand.Read(old)
	rand.Read(live)
	for _, v := range [][]byte{old, live} {
		if err := s.Update(ctx, func(tx store.Tx) error {
			for i := range records {
				if err := tx.Put(fmt.Appendf(nil, "k%05d", i), append(fmt.Appendf(nil, "%05d", i), v...)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	copying := false
	stop, cancel := context.WithCancel(ctx)
	defer cancel()
	midway := &endsAtCheck{Context: stop, cancel: cancel, n: records / 2, at: func() {
		fi, err := os.Stat(path + ".compact")
		copying = err == nil && fi.Size() > 0
	}}
	if err := s.Compact(midway); !errors.Is(err, context.Canceled) {
		t.Fatalf("a Compact whose context ended as it copied: %v", err)
	}
	if !copying {
		t.Fatal("the context did not end while Compact copied: the test shows nothing")
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the copy of a Compact that stopped is left (%v)", err)
	}
	after, err := os.Stat(path)
	if err != nil || !os.SameFile(before, after) {
		t.Fatalf("the store's file was replaced by a Compact that stopped (%v)", err)
	}
	if raw, err := os.ReadFile(path); err != nil || !bytes.Contains(raw, old) {
		t.Errorf("the store's file is not the one from before the Compact (%v)", err)
	}
	check := func() {
		t.Helper()
		n := 0
		if err := s.View(ctx, func(tx store.Tx) error {
			return tx.Scan([]byte("k"), nil, func(k, v []byte) (bool, error) {
				if want := append(fmt.Appendf(nil, "%05d", n), live...); string(k) != fmt.Sprintf("k%05d", n) || !bytes.Equal(v, want) {
					return false, fmt.Errorf("record %d is %q", n, k)
				}
				n++
				return true, nil
			})
		}); err != nil || n != records {
			t.Fatalf("the store holds %d of its %d records (%v)", n, records, err)
		}
	}
	check()
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("after"), []byte("v")) }); err != nil {
		t.Fatalf("an Update after a Compact that stopped: %v", err)
	}

	ended, end := context.WithCancel(ctx)
	end()
	if err := s.Compact(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("a Compact whose context had ended: %v", err)
	}
	if now, err := os.Stat(path); err != nil || !os.SameFile(before, now) {
		t.Fatalf("a Compact whose context had ended replaced the store's file (%v)", err)
	}

	if err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if raw, err := os.ReadFile(path); err != nil || bytes.Contains(raw, old) {
		t.Errorf("the Compact after one that stopped left a replaced value in the file (%v)", err)
	}
	check()
}
