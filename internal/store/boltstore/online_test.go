package boltstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// TestCompactWhileServing: Compact runs while other goroutines read and
// write the store; every call succeeds, every change acknowledged before,
// during or after a compaction is in the store (and in its file, opened
// again), and a deleted value is in the file no more.
func TestCompactWhileServing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kms.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	// Compact waits for the writers' transactions in progress however
	// long they take: a loaded machine's fsyncs can pass DrainWait, and
	// a Compact that gives way to them (TestCompactGivesWayToALongTransaction)
	// is not what this test shows.
	s.SetDrainWait(0)
	secret := []byte("sealed material of a deleted key " + strings.Repeat("x", 100))
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("gone"), secret) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Delete([]byte("gone")) }); err != nil {
		t.Fatal(err)
	}
	if raw, _ := os.ReadFile(path); !bytes.Contains(raw, secret) {
		t.Fatal("the deleted value is not in the file's free pages: the test shows nothing")
	}

	const writers, compactions = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	stop := make(chan struct{})
	acked := make([]int, writers) // records acknowledged by each writer
	var started sync.WaitGroup
	started.Add(writers)
	for w := range writers {
		wg.Go(func() {
			defer func() {
				if acked[w] == 0 {
					started.Done()
				}
			}()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Appendf(nil, "w%d/%05d", w, i)
				if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put(k, k) }); err != nil {
					errs <- fmt.Errorf("Update %s: %w", k, err)
					return
				}
				if acked[w]++; acked[w] == 1 {
					started.Done()
				}
				// What was acknowledged reads back at once.
				if err := s.View(ctx, func(tx store.Tx) error {
					v, err := tx.Get(k)
					if err == nil && !bytes.Equal(v, k) {
						err = fmt.Errorf("reads %q", v)
					}
					return err
				}); err != nil {
					errs <- fmt.Errorf("View %s: %w", k, err)
					return
				}
			}
		})
	}
	started.Wait() // every writer is writing
	for range compactions {
		if err := s.Compact(ctx); err != nil {
			t.Errorf("Compact: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if raw, _ := os.ReadFile(path); bytes.Contains(raw, secret) {
		t.Error("the deleted value is still in the file after the compactions")
	}
	s.Close()
	s, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for w, n := range acked {
		held := 0
		if err := s.View(ctx, func(tx store.Tx) error {
			return tx.Scan(fmt.Appendf(nil, "w%d/", w), nil, func(k, v []byte) (bool, error) {
				held++
				return true, nil
			})
		}); err != nil || held != n {
			t.Errorf("the store opened again holds %d of the %d records writer %d had acknowledged (%v)", held, n, w, err)
		}
	}
}

// TestCompactGivesWayToALongTransaction: a transaction that outlasts
// Compact's wait (a live backup's snapshot) makes Compact give up,
// changing nothing; the calls that waited behind it go on.
func TestCompactGivesWayToALongTransaction(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kms.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetDrainWait(50 * time.Millisecond)
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	inside, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		done <- s.View(ctx, func(tx store.Tx) error {
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	compacted := make(chan error)
	go func() { compacted <- s.Compact(ctx) }()
	// A read that comes while Compact waits goes on once it gives up,
	// before the long transaction ends. (A write could wait for it in
	// bbolt itself, to grow the file's mapping.)
	if err := s.View(ctx, func(tx store.Tx) error {
		_, err := tx.Get([]byte("k"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := <-compacted; err == nil || !strings.Contains(err.Error(), "did not end within") {
		t.Fatalf("Compact beside a long transaction: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil || !os.SameFile(before, after) {
		t.Fatalf("the store's file was replaced by a Compact that gave up (%v)", err)
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatalf("Compact once the transaction ended: %v", err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("k2"), []byte("v2")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Compact(ctx); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Compact after Close: %v", err)
	}
}

// TestCallWaitingForCompactHonoursItsContext: a call that waits for a
// Compact to let go of the store gives up when its context ends (the
// server's --call-timeout), instead of waiting for the whole copy.
func TestCallWaitingForCompactHonoursItsContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetDrainWait(0) // Compact waits for the long transaction without end
	inside, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		done <- s.View(context.Background(), func(tx store.Tx) error {
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	compacted := make(chan error)
	go func() { compacted <- s.Compact(context.Background()) }()
	for !boltstore.Held(s) {
		runtime.Gosched()
	}
	for _, call := range []struct {
		name string
		run  func(ctx context.Context) error
	}{
		{"View", func(ctx context.Context) error { return s.View(ctx, func(store.Tx) error { return nil }) }},
		{"Update", func(ctx context.Context) error {
			return s.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("k"), []byte("v")) })
		}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		result := make(chan error, 1)
		go func() { result <- call.run(ctx) }()
		select {
		case err := <-result:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s waiting for Compact, past its deadline: %v", call.name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s waiting for Compact did not give up at its deadline", call.name)
		}
		cancel()
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-compacted; err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if err := s.View(context.Background(), func(tx store.Tx) error {
		if _, err := tx.Get([]byte("k")); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("the Update that gave up wrote its record: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestCompactBesideANestedCall: a call that, inside its transaction,
// makes another (a read nested in a read) while Compact waits to hold
// the calls would wait for Compact, which waits for it: Compact gives up
// after its wait, the nested call goes on, and so does the store.
func TestCompactBesideANestedCall(t *testing.T) {
	ctx := context.Background()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetDrainWait(50 * time.Millisecond)
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	compacted := make(chan error, 1)
	if err := s.View(ctx, func(store.Tx) error {
		go func() { compacted <- s.Compact(ctx) }()
		for !boltstore.Held(s) {
			runtime.Gosched()
		}
		return s.View(ctx, func(tx store.Tx) error {
			_, err := tx.Get([]byte("k"))
			return err
		})
	}); err != nil {
		t.Fatalf("a read nested in a read while Compact waited: %v", err)
	}
	if err := <-compacted; err == nil || !strings.Contains(err.Error(), "did not end within") {
		t.Fatalf("Compact beside a nested call: %v", err)
	}
	if err := s.Compact(ctx); err != nil {
		t.Fatalf("Compact once the calls ended: %v", err)
	}
}
