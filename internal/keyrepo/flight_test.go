package keyrepo_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// gateStore holds the first read transaction it is given, once its reads
// are done, until release is closed; the others pass. It counts them.
type gateStore struct {
	store.Store
	release chan struct{}
	views   atomic.Int64
}

func (g *gateStore) View(ctx context.Context, fn func(store.Tx) error) error {
	n := g.views.Add(1)
	err := g.Store.View(ctx, fn)
	if n == 1 {
		<-g.release
	}
	return err
}

// newGatedRepo is a repository over the fixture's store whose first read
// transaction waits for the gate.
func newGatedRepo(f *fixture, cfg keyrepo.Config) (*keyrepo.Repo, *gateStore) {
	g := &gateStore{Store: f.st, release: make(chan struct{})}
	cfg.Store, cfg.RootKey, cfg.Region, cfg.Now = g, f.rk, region, f.clock.Now
	r, err := keyrepo.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return r, g
}

// Callers that miss the cache together read the key once between them:
// a hot key's entry running out of age, or a cache emptied by a
// notification, does not have every caller read it whole at once.
func TestCacheMissesShareOneRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, keyrepo.Config{})
		k := f.newKey(acctA, keys.SymmetricDefault)
		f.describe(k, "hot")
		r, g := newGatedRepo(f, keyrepo.Config{CacheMaxAge: time.Minute})

		const callers = 16
		var wg sync.WaitGroup
		got := make([]string, callers)
		for i := range callers {
			wg.Go(func() {
				k, err := r.Load(context.Background(), region, k.ID)
				if err != nil {
					t.Errorf("caller %d: %v", i, err)
					return
				}
				got[i] = k.Rec.Description
			})
		}
		synctest.Wait() // the first read is held; every caller waits
		if n := g.views.Load(); n != 1 {
			t.Errorf("%d callers missing the cache together made %d reads, want 1", callers, n)
		}
		close(g.release)
		wg.Wait()
		for i, d := range got {
			if d != "hot" {
				t.Errorf("caller %d got the description %q, want %q", i, d, "hot")
			}
		}
		if n := g.views.Load(); n != 1 {
			t.Errorf("%d reads in all, want 1", n)
		}
	})
}

// A caller that begins after a change was invalidated does not share a
// read that began before it: that read may hold the key as it was before
// the change, and a disabled key, a retired grant or a narrowed policy
// must not be used by a call that came after the change was answered.
func TestCacheMissAfterAChangeReadsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, keyrepo.Config{})
		k := f.newKey(acctA, keys.SymmetricDefault)
		r, g := newGatedRepo(f, keyrepo.Config{CacheMaxAge: time.Minute})

		var before string
		go func() {
			k, err := r.Load(context.Background(), region, k.ID)
			if err != nil {
				t.Error(err)
				return
			}
			before = k.Rec.Description
		}()
		synctest.Wait() // the first read is done and held
		f.describe(k, "changed")
		r.Invalidate(region, k.ID, "")

		if got := f.description(r, k.ID); got != "changed" {
			t.Errorf("a call after the change was answered from the read before it: description %q, want %q", got, "changed")
		}
		close(g.release)
		synctest.Wait()
		if before != "" {
			t.Errorf("the read before the change: description %q, want the key as it was", before)
		}
		// What the older read found was not cached over the change.
		if got := f.description(r, k.ID); got != "changed" {
			t.Errorf("after both reads: description %q, want %q", got, "changed")
		}
		if n := g.views.Load(); n != 2 {
			t.Errorf("%d reads, want 2 (one before the change, one after)", n)
		}
	})
}

// A key in use past three quarters of its max age is read again in the
// background, once, while its callers are answered from the cache; the
// entry read again is trusted for the full max age from that read.
func TestCacheRefreshesAKeyInUse(t *testing.T) {
	f := newFixture(t, keyrepo.Config{CacheMaxAge: time.Minute})
	awaitRefresh := watchRefreshes(t, f.repo)
	k := f.newKey(acctA, keys.SymmetricDefault)
	f.description(f.repo, k.ID)
	views := f.st.views.Load()
	f.describe(k, "changed") // and no one is told: a lost notification

	f.clock.Advance(45*time.Second - time.Nanosecond)
	if got := f.description(f.repo, k.ID); got != "" {
		t.Fatalf("before three quarters of the max age: description %q, want the cached key", got)
	}
	if n := f.st.views.Load() - views; n != 0 {
		t.Fatalf("before three quarters of the max age the key was read %d times, want 0", n)
	}

	f.clock.Advance(time.Nanosecond)
	if got := f.description(f.repo, k.ID); got != "" {
		t.Fatalf("at three quarters of the max age: description %q, want the cached key while it is read again", got)
	}
	awaitRefresh()
	if n := f.st.views.Load() - views; n != 1 {
		t.Fatalf("the key was read %d times in the background, want 1", n)
	}
	if got := f.description(f.repo, k.ID); got != "changed" {
		t.Fatalf("after the read in the background: description %q, want %q", got, "changed")
	}
	if hits, misses := f.repo.CacheStats(); misses != 1 {
		t.Errorf("CacheStats = %d hits, %d misses; want the first load the only miss", hits, misses)
	}

	// The entry read again is as old as that read: 44 s later it is not
	// due yet (counted from the first read, it would be past its age).
	f.describe(k, "changed again")
	f.clock.Advance(44 * time.Second)
	if got := f.description(f.repo, k.ID); got != "changed" {
		t.Fatalf("44 s after the read in the background: description %q, want %q", got, "changed")
	}
	if n := f.st.views.Load() - views; n != 1 {
		t.Fatalf("44 s after the read in the background, the key was read %d times, want 1", n)
	}
	f.clock.Advance(time.Second)
	for range 3 {
		f.description(f.repo, k.ID)
	}
	awaitRefresh()
	if n := f.st.views.Load() - views; n != 2 {
		t.Errorf("the key was read %d times, want 2: one more for the three calls past three quarters of its age", n)
	}
	if got := f.description(f.repo, k.ID); got != "changed again" {
		t.Errorf("after the second read in the background: description %q, want %q", got, "changed again")
	}

	// Past its max age, a key is read before it is used, as before.
	f.describe(k, "third")
	f.clock.Advance(time.Minute)
	if got := f.description(f.repo, k.ID); got != "third" {
		t.Errorf("past the max age: description %q, want %q", got, "third")
	}
}

// watchRefreshes returns a function that waits for r's next read in the
// background to end, failing t if none comes.
func watchRefreshes(t *testing.T, r *keyrepo.Repo) func() {
	refreshed := make(chan struct{}, 10)
	keyrepo.OnRefreshed(r, func() { refreshed <- struct{}{} })
	return func() {
		t.Helper()
		select {
		case <-refreshed:
		case <-time.After(10 * time.Second):
			t.Fatal("nothing was read again in the background")
		}
	}
}

// panicStore panics in its read transactions while armed.
type panicStore struct {
	store.Store
	armed atomic.Bool
}

func (p *panicStore) View(ctx context.Context, fn func(store.Tx) error) error {
	if p.armed.Load() {
		panic("a read that panics")
	}
	return p.Store.View(ctx, fn)
}

// A read in the background that panics is logged and does not end the
// process, as a call's read that panics fails only that call; the key
// goes on being used from the cache, and is read again later.
func TestCacheRefreshThatPanics(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	ps := &panicStore{Store: f.st}
	var logs syncBuffer
	r, err := keyrepo.New(keyrepo.Config{Store: ps, RootKey: f.rk, Region: region, Now: f.clock.Now, CacheMaxAge: time.Minute,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	awaitRefresh := watchRefreshes(t, r)
	k := f.newKey(acctA, keys.SymmetricDefault)
	f.description(r, k.ID)
	f.describe(k, "changed")

	ps.armed.Store(true)
	f.clock.Advance(45 * time.Second)
	if got := f.description(r, k.ID); got != "" {
		t.Fatalf("description %q, want the cached key", got)
	}
	awaitRefresh()
	if !strings.Contains(logs.String(), "panic reading a key again in the background") {
		t.Errorf("the panic was not logged: %s", logs.String())
	}
	ps.armed.Store(false)
	if got := f.description(r, k.ID); got != "" {
		t.Fatalf("after the panic: description %q, want the cached key", got)
	}
	awaitRefresh()
	if got := f.description(r, k.ID); got != "changed" {
		t.Errorf("after a read that did not panic: description %q, want %q", got, "changed")
	}
}

// syncBuffer is a bytes.Buffer that a logger in another goroutine may
// write while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// An alias in use past three quarters of its max age is read again in
// the background while its callers are answered from the cache; one
// found deleted then is dropped at once.
func TestCacheRefreshesAnAliasInUse(t *testing.T) {
	f := newFixture(t, keyrepo.Config{CacheMaxAge: time.Minute})
	awaitRefresh := watchRefreshes(t, f.repo)
	k := f.newKey(acctA, keys.SymmetricDefault)
	k2 := f.newKey(acctA, keys.SymmetricDefault)
	f.putAlias(acctA, "alias/app", k.ID)
	f.aliasTarget(f.repo, acctA, "alias/app")
	f.putAlias(acctA, "alias/app", k2.ID) // and no one is told

	f.clock.Advance(45 * time.Second)
	if got := f.aliasTarget(f.repo, acctA, "alias/app"); got != k.ID {
		t.Fatalf("at three quarters of the max age: target %s, want the cached %s", got, k.ID)
	}
	awaitRefresh()
	if got := f.aliasTarget(f.repo, acctA, "alias/app"); got != k2.ID {
		t.Fatalf("after the read in the background: target %s, want %s", got, k2.ID)
	}

	if err := f.st.Update(f.ctx, func(tx store.Tx) error { return tx.Delete(keyrepo.AliasKey(acctA, region, "alias/app")) }); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(45 * time.Second)
	views := f.st.views.Load()
	if got := f.aliasTarget(f.repo, acctA, "alias/app"); got != k2.ID {
		t.Fatalf("at three quarters of the max age: target %s, want the cached %s", got, k2.ID)
	}
	awaitRefresh()
	if _, err := f.repo.LookupAlias(f.ctx, acctA, region, "alias/app"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an alias found deleted in the background: %v, want it gone", err)
	}
	if n := f.st.views.Load() - views; n != 2 {
		t.Errorf("%d reads, want 2: in the background, and the lookup after the alias was dropped", n)
	}
}
