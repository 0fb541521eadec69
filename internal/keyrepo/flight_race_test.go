package keyrepo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/testsupport"
)

// heldRepo is a repository over the fixture's store, with a max age of a
// minute, whose reads can be held, and a channel told after each read in
// the background.
func heldRepo(t *testing.T, f *fixture) (*keyrepo.Repo, *testsupport.HoldStore, chan struct{}) {
	t.Helper()
	h := testsupport.NewHoldStore(f.st)
	r, err := keyrepo.New(keyrepo.Config{Store: h, RootKey: f.rk, Region: region, Now: f.clock.Now, CacheMaxAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	refreshed := make(chan struct{}, 10)
	keyrepo.OnRefreshed(r, func() { refreshed <- struct{}{} })
	return r, h, refreshed
}

func await(t *testing.T, c chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

// A read of a key in the background that a change overtakes does not
// land: not over an invalidation, a grant patched in locally or from a
// notification, nor a flush of the cache.
func TestCacheRefreshOvertakenByAChange(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(f *fixture, r *keyrepo.Repo, k keyrepo.KeyRecord, g *keyrepo.GrantRecord)
	}{
		{"invalidated", func(f *fixture, r *keyrepo.Repo, k keyrepo.KeyRecord, g *keyrepo.GrantRecord) {
			r.Invalidate(region, k.ID, "")
		}},
		{"grant added here", func(f *fixture, r *keyrepo.Repo, k keyrepo.KeyRecord, g *keyrepo.GrantRecord) {
			r.GrantAdded(g)
		}},
		{"grant announced", func(f *fixture, r *keyrepo.Repo, k keyrepo.KeyRecord, g *keyrepo.GrantRecord) {
			r.Changed(grantChange(g))
		}},
		{"key record announced", func(f *fixture, r *keyrepo.Repo, k keyrepo.KeyRecord, g *keyrepo.GrantRecord) {
			r.Changed([][]byte{keyrepo.KeyKey(region, k.ID), keyrepo.GrantKey(region, k.ID, g.ID)})
		}},
		{"flushed", func(f *fixture, r *keyrepo.Repo, k keyrepo.KeyRecord, g *keyrepo.GrantRecord) {
			r.Changed(nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, keyrepo.Config{})
			r, h, refreshed := heldRepo(t, f)
			k := f.newKey(acctA, keys.SymmetricDefault)
			f.description(r, k.ID)
			f.clock.Advance(45 * time.Second)

			h.Arm()
			if got := f.description(r, k.ID); got != "" {
				t.Fatalf("description %q, want the cached key", got)
			}
			await(t, h.Held, "no read in the background")
			// Another process changes the key after that read.
			g := f.grant(k, "g1", "")
			f.putGrants(g)
			f.describe(k, "changed")
			tc.change(f, r, k, g)
			close(h.Release)
			await(t, refreshed, "the read in the background did not end")

			got, err := r.Load(f.ctx, region, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(got.Grants, func(x *keyrepo.GrantRecord) bool { return x.ID == "g1" }) {
				t.Errorf("the key lacks the grant made after the read in the background began: that read landed over the change")
			}
			if tc.name == "invalidated" || tc.name == "flushed" {
				if got.Rec.Description != "changed" {
					t.Errorf("description %q, want %q", got.Rec.Description, "changed")
				}
			}
		})
	}
}

// An alias read in the background that an invalidation overtakes does
// not land.
func TestCacheAliasRefreshOvertakenByAChange(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	r, h, refreshed := heldRepo(t, f)
	k, k2 := f.newKey(acctA, keys.SymmetricDefault), f.newKey(acctA, keys.SymmetricDefault)
	f.putAlias(acctA, "alias/app", k.ID)
	f.aliasTarget(r, acctA, "alias/app")
	f.clock.Advance(45 * time.Second)
	h.Arm()
	f.aliasTarget(r, acctA, "alias/app")
	await(t, h.Held, "no read in the background")
	f.putAlias(acctA, "alias/app", k2.ID)
	r.Invalidate(region, "", acctA, "alias/app")
	close(h.Release)
	await(t, refreshed, "the read in the background did not end")
	if got := f.aliasTarget(r, acctA, "alias/app"); got != k2.ID {
		t.Errorf("target %s, want %s: the read before the change landed over it", got, k2.ID)
	}
}

// panicOnce panics in its first read transaction, once its reads are
// done and the waiting callers have joined.
type panicOnce struct {
	store.Store
	views atomic.Int64
	gate  chan struct{}
}

func (p *panicOnce) View(ctx context.Context, fn func(store.Tx) error) error {
	if p.views.Add(1) == 1 {
		<-p.gate
		panic("a read that panics")
	}
	return p.Store.View(ctx, fn)
}

// A call's shared read that panics fails the calls waiting for it, with
// an error, without leaving them waiting, and the key is read again by
// the next call.
func TestCacheSharedReadThatPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, keyrepo.Config{})
		k := f.newKey(acctA, keys.SymmetricDefault)
		ps := &panicOnce{Store: f.st, gate: make(chan struct{})}
		r, err := keyrepo.New(keyrepo.Config{Store: ps, RootKey: f.rk, Region: region, Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		panicked := make(chan any, 1)
		go func() {
			defer func() { panicked <- recover() }()
			r.Load(context.Background(), region, k.ID)
		}()
		synctest.Wait()
		errs := make(chan error, 3)
		for range 3 {
			go func() {
				_, err := r.Load(context.Background(), region, k.ID)
				errs <- err
			}()
		}
		synctest.Wait()
		close(ps.gate)
		if p := <-panicked; p == nil {
			t.Error("the reader's panic did not reach its caller")
		}
		for range 3 {
			if err := <-errs; err == nil {
				t.Error("a caller waiting for a read that panicked got a key")
			}
		}
		if got := f.description(r, k.ID); got != "" {
			t.Errorf("description %q", got)
		}
	})
}

// A caller that shares a read that began before a grant was made, and
// that names the grant by token, has it.
func TestCacheSharedReadWithTokenGrants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, keyrepo.Config{})
		k := f.newKey(acctA, keys.SymmetricDefault)
		r, g := newGatedRepo(f, keyrepo.Config{CacheMaxAge: time.Minute})
		go func() {
			if _, err := r.Load(context.Background(), region, k.ID); err != nil {
				t.Error(err)
			}
		}()
		synctest.Wait()
		made := f.grant(k, "g1", "")
		f.putGrants(made) // by another process, not announced yet
		var got *keyrepo.Key
		done := make(chan struct{})
		go func() {
			defer close(done)
			ctx := keyrepo.WithTokenGrants(context.Background(), []keyrepo.TokenGrant{{KeyID: k.ID, GrantID: "g1"}})
			var err error
			if got, err = r.Load(ctx, region, k.ID); err != nil {
				t.Error(err)
			}
		}()
		synctest.Wait()
		close(g.release)
		<-done
		if got == nil || !slices.ContainsFunc(got.Grants, func(x *keyrepo.GrantRecord) bool { return x.ID == "g1" }) {
			t.Error("a caller sharing a read named a grant by token and was not given it")
		}
	})
}

// A shared read that began more than the max age before a call is not
// the answer to that call: a change made since, its notification lost,
// would be honoured later than the max age promises.
func TestCacheSharedReadOlderThanMaxAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, keyrepo.Config{})
		k := f.newKey(acctA, keys.SymmetricDefault)
		r, g := newGatedRepo(f, keyrepo.Config{CacheMaxAge: time.Minute})
		go func() {
			if _, err := r.Load(context.Background(), region, k.ID); err != nil {
				t.Error(err)
			}
		}()
		synctest.Wait()          // the first read is done and held
		f.describe(k, "changed") // by another process, its notification lost
		f.clock.Advance(time.Minute)

		var got string
		done := make(chan struct{})
		go func() {
			defer close(done)
			k, err := r.Load(context.Background(), region, k.ID)
			if err != nil {
				t.Error(err)
				return
			}
			got = k.Rec.Description
		}()
		synctest.Wait()
		close(g.release)
		<-done
		if got != "changed" {
			t.Errorf("a call a max age after a change: description %q, want %q", got, "changed")
		}
	})
}

// cancelStore holds its first read until its caller's context ends, and
// fails it with the context's error, as a store does when the caller
// goes away mid-read.
type cancelStore struct {
	store.Store
	views atomic.Int64
}

func (c *cancelStore) View(ctx context.Context, fn func(store.Tx) error) error {
	if c.views.Add(1) == 1 {
		<-ctx.Done()
		return fmt.Errorf("store: scan: %w", ctx.Err())
	}
	return c.Store.View(ctx, fn)
}

// The callers waiting for a read whose caller went away are not answered
// with that caller's error: one of them reads again, for all of them, and
// the others do not read the key whole each in turn.
func TestCacheSharedReadOfACallerGone(t *testing.T) {
	// Which of the waiters reads again, and when the others wake, is the
	// scheduler's: enough rounds that each order is met.
	for range 20 {
		synctest.Test(t, testSharedReadOfACallerGone)
	}
}

func testSharedReadOfACallerGone(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	cs := &cancelStore{Store: f.st}
	r, err := keyrepo.New(keyrepo.Config{Store: cs, RootKey: f.rk, Region: region, Now: f.clock.Now, CacheMaxAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := r.Load(ctx, region, k.ID)
		leaderErr <- err
	}()
	synctest.Wait()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := r.Load(context.Background(), region, k.ID)
			errs <- err
		}()
	}
	synctest.Wait()
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("the caller gone: %v, want context.Canceled", err)
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("a caller waiting for the read of a caller gone: %v", err)
		}
	}
	if n := cs.views.Load(); n != 2 {
		t.Errorf("%d reads, want 2: the caller gone's, and one for those waiting", n)
	}
}

// countingHold holds every read of one key's grants while hold is set,
// and counts the reads of that key.
type countingHold struct {
	store.Store
	prefix  []byte
	hold    chan struct{}
	reads   atomic.Int64
	holding atomic.Bool
}

func (c *countingHold) View(ctx context.Context, fn func(store.Tx) error) error {
	err := c.Store.View(ctx, func(tx store.Tx) error { return fn(&countingTx{tx, c}) })
	return err
}

type countingTx struct {
	store.Tx
	c *countingHold
}

func (t *countingTx) Scan(prefix, after []byte, fn func(k, v []byte) (bool, error)) error {
	if bytes.Equal(prefix, t.c.prefix) {
		t.c.reads.Add(1)
		if t.c.holding.Load() {
			<-t.c.hold
		}
	}
	return t.Tx.Scan(prefix, after, fn)
}

// A key in use is read in the background once at a time, however many
// changes to other keys come while that read is under way: each change
// does not have the next call start another read of it whole.
func TestCacheOneRefreshOfAKeyAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, keyrepo.Config{})
		k, other := f.newKey(acctA, keys.SymmetricDefault), f.newKey(acctA, keys.SymmetricDefault)
		c := &countingHold{Store: f.st, prefix: keyrepo.GrantPrefix(region, k.ID), hold: make(chan struct{})}
		r, err := keyrepo.New(keyrepo.Config{Store: c, RootKey: f.rk, Region: region, Now: f.clock.Now, CacheMaxAge: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		f.description(r, k.ID)
		f.clock.Advance(45 * time.Second)
		c.holding.Store(true)
		c.reads.Store(0)
		for range 10 {
			r.Invalidate(region, other.ID, "")
			f.description(r, k.ID)
			synctest.Wait() // a read in the background began and is held
		}
		n := c.reads.Load()
		close(c.hold)
		synctest.Wait()
		if n != 1 {
			t.Errorf("ten calls, each after a change to another key, started %d reads of the key in the background, want 1", n)
		}
	})
}
