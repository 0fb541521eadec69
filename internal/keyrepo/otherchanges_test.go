package keyrepo_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// otherChanges are the changes to another key or alias than those a read
// is of, as they reach a repository: made by this process or announced by
// another, a grant patched in, the last use every node writes, an alias
// moved. None may refuse what the read found.
var otherChanges = []struct {
	name   string
	change func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord)
}{
	{"invalidated", func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord) {
		r.Invalidate(region, other.ID, "")
	}},
	{"grant added here", func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord) {
		g := f.grant(other, "g1", "")
		f.putGrants(g)
		r.GrantAdded(g)
	}},
	{"grant removed here", func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord) {
		r.GrantRemoved(region, other.ID, "g0")
	}},
	{"grant announced", func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord) {
		g := f.grant(other, "g1", "")
		f.putGrants(g)
		r.Changed(grantChange(g))
	}},
	{"last use announced", func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord) {
		other.LastUsage = &keyrepo.LastUsage{Operation: "Encrypt", Time: f.clock.Now(), EventID: "e1", RequestID: "r1"}
		f.put(keyrepo.KeyKey(region, other.ID), &other)
		r.Changed([][]byte{keyrepo.KeyKey(region, other.ID)})
	}},
	{"key record announced", func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord) {
		r.Changed([][]byte{keyrepo.KeyKey(region, other.ID), keyrepo.VersionKey(region, other.ID, 1)})
	}},
	{"another alias moved", func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord) {
		f.putAlias(acctA, "alias/other", other.ID)
		r.Invalidate(region, "", acctA, "alias/other")
		r.Changed([][]byte{keyrepo.AliasKey(acctA, region, "alias/other")})
	}},
	{"the same alias name in another account", func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord) {
		r.Invalidate(region, "", acctB, "alias/app")
	}},
}

// A key in use read again in the background lands though another key
// changed while the read was under way: on a cluster some key changes
// every few milliseconds, and a hot key whose reads were all thrown away
// would run past its max age and be read on every call.
func TestCacheRefreshLandsOverAnotherKeysChange(t *testing.T) {
	for _, tc := range otherChanges {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, keyrepo.Config{})
			r, h, refreshed := heldRepo(t, f)
			k, other := f.newKey(acctA, keys.SymmetricDefault), f.newKey(acctA, keys.SymmetricDefault)
			f.description(r, k.ID)
			f.description(r, other.ID)
			f.describe(k, "read again") // and no one is told
			f.clock.Advance(45 * time.Second)

			h.Arm()
			if got := f.description(r, k.ID); got != "" {
				t.Fatalf("description %q, want the cached key", got)
			}
			await(t, h.Held, "no read in the background")
			tc.change(f, r, other)
			close(h.Release)
			await(t, refreshed, "the read in the background did not end")

			_, misses := r.CacheStats()
			if got := f.description(r, k.ID); got != "read again" {
				t.Fatalf("description %q, want %q: the read in the background did not land", got, "read again")
			}
			// Entered when read: trusted a full max age from then.
			f.clock.Advance(time.Minute - time.Nanosecond)
			f.description(r, k.ID)
			if _, now := r.CacheStats(); now != misses {
				t.Errorf("%d misses after the read in the background landed, want none", now-misses)
			}
		})
	}
}

// Callers that miss a key share its read, and the read is cached, though
// another key changed while it was under way: a caller that comes after
// that change joins it too.
func TestCacheSharedReadLandsOverAnotherKeysChange(t *testing.T) {
	for _, tc := range otherChanges {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, keyrepo.Config{})
				k, other := f.newKey(acctA, keys.SymmetricDefault), f.newKey(acctA, keys.SymmetricDefault)
				f.describe(k, "hot")
				r, g := newGatedRepo(f, keyrepo.Config{CacheMaxAge: time.Minute})
				got := make(chan string, 2)
				load := func() {
					k, err := r.Load(context.Background(), region, k.ID)
					if err != nil {
						t.Error(err)
						got <- ""
						return
					}
					got <- k.Rec.Description
				}
				go load()
				synctest.Wait() // the first read is done and held
				tc.change(f, r, other)
				go load()
				synctest.Wait()
				if n := g.views.Load(); n != 1 {
					t.Errorf("a caller after a change to another key made a read of its own (%d reads), want it to share the first", n)
				}
				close(g.release)
				for range 2 {
					if d := <-got; d != "hot" {
						t.Errorf("a caller got description %q, want %q", d, "hot")
					}
				}
				f.describe(k, "changed, untold")
				if d := f.description(r, k.ID); d != "hot" {
					t.Errorf("description %q: the shared read was not cached, and the key was read again", d)
				}
				if n := g.views.Load(); n != 1 {
					t.Errorf("%d reads of the key in all, want 1", n)
				}
			})
		})
	}
}

// An alias in use read again in the background lands though another
// alias or a key changed while the read was under way; a move of the
// alias itself, or a flush, still refuses it.
func TestCacheAliasRefreshAndOtherChanges(t *testing.T) {
	cases := []struct {
		name   string
		change func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord)
		lands  bool
	}{
		{"the alias moved", func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord) {
			f.putAlias(acctA, "alias/app", other.ID)
			r.Invalidate(region, "", acctA, "alias/app")
		}, false},
		{"the alias announced", func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord) {
			f.putAlias(acctA, "alias/app", other.ID)
			r.Changed([][]byte{keyrepo.AliasKey(acctA, region, "alias/app")})
		}, false},
		{"flushed", func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord) {
			f.putAlias(acctA, "alias/app", other.ID)
			r.Changed(nil)
		}, false},
	}
	for _, tc := range otherChanges {
		cases = append(cases, struct {
			name   string
			change func(f *fixture, r *keyrepo.Repo, other keyrepo.KeyRecord)
			lands  bool
		}{tc.name, tc.change, true})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, keyrepo.Config{})
			r, h, refreshed := heldRepo(t, f)
			k, k2, other := f.newKey(acctA, keys.SymmetricDefault), f.newKey(acctA, keys.SymmetricDefault), f.newKey(acctA, keys.SymmetricDefault)
			f.putAlias(acctA, "alias/app", k.ID)
			f.aliasTarget(r, acctA, "alias/app")
			f.description(r, other.ID)
			f.putAlias(acctA, "alias/app", k2.ID) // and no one is told
			f.clock.Advance(45 * time.Second)

			h.Arm()
			if got := f.aliasTarget(r, acctA, "alias/app"); got != k.ID {
				t.Fatalf("target %s, want the cached %s", got, k.ID)
			}
			await(t, h.Held, "no read in the background")
			tc.change(f, r, other)
			close(h.Release)
			await(t, refreshed, "the read in the background did not end")

			got := f.aliasTarget(r, acctA, "alias/app")
			switch {
			case tc.lands && got != k2.ID:
				t.Errorf("target %s, want %s: the read in the background did not land", got, k2.ID)
			case !tc.lands && got != other.ID:
				t.Errorf("target %s, want %s: the read before the change landed over it", got, other.ID)
			}
		})
	}
}

// A shared read that a change to its key, or a flush, overtakes is not
// joined by a caller that comes after the change, and is not cached.
func TestCacheSharedReadOvertaken(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(f *fixture, r *keyrepo.Repo, k keyrepo.KeyRecord)
	}{
		{"invalidated", func(f *fixture, r *keyrepo.Repo, k keyrepo.KeyRecord) { r.Invalidate(region, k.ID, "") }},
		{"key record announced", func(f *fixture, r *keyrepo.Repo, k keyrepo.KeyRecord) {
			r.Changed([][]byte{keyrepo.KeyKey(region, k.ID)})
		}},
		{"grant announced", func(f *fixture, r *keyrepo.Repo, k keyrepo.KeyRecord) {
			g := f.grant(k, "g1", "")
			f.putGrants(g)
			r.Changed(grantChange(g))
		}},
		{"grant removed here", func(f *fixture, r *keyrepo.Repo, k keyrepo.KeyRecord) { r.GrantRemoved(region, k.ID, "g0") }},
		{"flushed", func(f *fixture, r *keyrepo.Repo, k keyrepo.KeyRecord) { r.Changed(nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t, keyrepo.Config{})
				k := f.newKey(acctA, keys.SymmetricDefault)
				r, g := newGatedRepo(f, keyrepo.Config{CacheMaxAge: time.Minute})
				before := make(chan string, 1)
				go func() {
					k, err := r.Load(context.Background(), region, k.ID)
					if err != nil {
						t.Error(err)
					}
					before <- k.Rec.Description
				}()
				synctest.Wait() // the first read is done and held
				f.describe(k, "changed")
				tc.change(f, r, k)
				if got := f.description(r, k.ID); got != "changed" {
					t.Errorf("a call after the change: description %q, want %q", got, "changed")
				}
				close(g.release)
				if got := <-before; got != "" {
					t.Errorf("the call before the change: description %q, want the key as it was", got)
				}
				if got := f.description(r, k.ID); got != "changed" {
					t.Errorf("after both reads: description %q, want %q", got, "changed")
				}
			})
		})
	}
}

// However many other keys change while a key is read, memory stays
// bounded: past the changes it remembers, the cache refuses what the
// read found, since one it forgot may have been to that key.
func TestCacheRefreshPastTheChangesRemembered(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	r, h, refreshed := heldRepo(t, f)
	k := f.newKey(acctA, keys.SymmetricDefault)
	f.description(r, k.ID)
	f.describe(k, "read again")
	f.clock.Advance(45 * time.Second)
	h.Arm()
	f.description(r, k.ID)
	await(t, h.Held, "no read in the background")
	for range 5000 {
		r.Invalidate(region, keys.NewID().String(), "")
	}
	close(h.Release)
	await(t, refreshed, "the read in the background did not end")
	if got := f.description(r, k.ID); got != "" {
		t.Errorf("description %q: a read that outlived the changes remembered landed", got)
	}
	// One that began after them lands.
	f.clock.Advance(time.Minute)
	f.description(r, k.ID)
	_, misses := r.CacheStats()
	if got := f.description(r, k.ID); got != "read again" {
		t.Errorf("description %q, want %q", got, "read again")
	}
	if _, now := r.CacheStats(); now != misses {
		t.Errorf("the read after the changes was not cached")
	}
}

// gatesStore holds each read transaction, once its reads are done, until
// the gate of its turn (0 for the first) is opened; it counts them.
type gatesStore struct {
	store.Store
	gates []chan struct{}
	views atomic.Int64
}

func (g *gatesStore) View(ctx context.Context, fn func(store.Tx) error) error {
	n := g.views.Add(1)
	err := g.Store.View(ctx, fn)
	if int(n) <= len(g.gates) {
		<-g.gates[n-1]
	}
	return err
}

// A read that a change overtook, landing while the read begun after the
// change is under way, leaves that one to be joined: a caller that comes
// then shares it rather than reading the key a third time.
func TestCacheOvertakenReadLandsBesideTheNewer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, keyrepo.Config{})
		k := f.newKey(acctA, keys.SymmetricDefault)
		g := &gatesStore{Store: f.st, gates: []chan struct{}{make(chan struct{}), make(chan struct{})}}
		r, err := keyrepo.New(keyrepo.Config{Store: g, RootKey: f.rk, Region: region, Now: f.clock.Now, CacheMaxAge: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 3)
		load := func() {
			k, err := r.Load(context.Background(), region, k.ID)
			if err != nil {
				t.Error(err)
				got <- ""
				return
			}
			got <- k.Rec.Description
		}
		go load()
		synctest.Wait() // the first read is held
		f.describe(k, "changed")
		r.Invalidate(region, k.ID, "")
		go load()
		synctest.Wait() // the second read, after the change, is held
		close(g.gates[0])
		if d := <-got; d != "" {
			t.Errorf("the call before the change: description %q", d)
		}
		go load()
		synctest.Wait()
		if n := g.views.Load(); n != 2 {
			t.Errorf("%d reads, want 2: a call after the first read landed did not join the second", n)
		}
		close(g.gates[1])
		for range 2 {
			if d := <-got; d != "changed" {
				t.Errorf("a call after the change: description %q, want %q", d, "changed")
			}
		}
	})
}
