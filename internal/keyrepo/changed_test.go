package keyrepo_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// grantChange is what another process's transaction that put or deleted
// grant g names: the grant and its index records.
func grantChange(g *keyrepo.GrantRecord) [][]byte {
	return [][]byte{keyrepo.GrantKey(region, g.KeyID, g.ID), keyrepo.GrantCountKey(region, g.KeyID),
		keyrepo.RetirableKey(g.Retiring, region, g.KeyID, g.ID)}
}

func (f *fixture) putGrants(gs ...*keyrepo.GrantRecord) {
	f.t.Helper()
	f.update(func(tx store.Tx) error {
		for _, g := range gs {
			if err := keyrepo.PutGrant(tx, g); err != nil {
				return err
			}
		}
		return nil
	})
}

func (f *fixture) deleteGrant(g *keyrepo.GrantRecord) {
	f.t.Helper()
	f.update(func(tx store.Tx) error { return keyrepo.DeleteGrant(tx, region, g.KeyID, g) })
}

// reloaded is key id as a repository that never cached it reads it.
func (f *fixture) reloaded(id string) *keyrepo.Key {
	f.t.Helper()
	k, err := f.newRepo(keyrepo.Config{}).Load(f.ctx, region, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

// sameGrants fails unless k holds exactly the grants want does, in the
// same order, and finds the same ones by grantee: each of theirs, and
// those named.
func sameGrants(t *testing.T, what string, k, want *keyrepo.Key, grantees ...string) {
	t.Helper()
	if !reflect.DeepEqual(k.Grants, want.Grants) {
		t.Fatalf("%s: grants %v, want %v as read again", what, grantIDs(k.Grants), grantIDs(want.Grants))
	}
	for _, g := range k.Grants {
		grantees = append(grantees, g.Grantee)
	}
	for _, a := range grantees {
		got, _ := k.GranteeGrants(a)
		exp, _ := want.GranteeGrants(a)
		if !reflect.DeepEqual(got, exp) {
			t.Fatalf("%s: grants of %s %v, want %v", what, a, grantIDs(got), grantIDs(exp))
		}
	}
}

// A grant made, deleted or rewritten by another process patches a cached
// key from that grant's record alone: the key is not read again, its
// material stays warm, and it then holds what reading it again would give.
func TestChangedPatchesGrants(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	peer := f.newRepo(keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	app, other := "arn:aws:iam::"+acctA+":user/app", "arn:aws:iam::"+acctA+":user/other"
	retired, kept, rewritten := f.grant(k, "b2", ""), f.grant(k, "c3", ""), f.grant(k, "d4", "batch")
	retired.Grantee = "arn:aws:iam::" + acctA + ":user/leaving" // its only grant
	f.putGrants(retired, kept, rewritten)
	first, err := peer.Load(f.ctx, region, k.ID)
	if err != nil {
		t.Fatal(err)
	}

	added := f.grant(k, "a1", "")
	added.Grantee = other
	f.putGrants(added)
	f.deleteGrant(retired)
	rewritten.Operations = []string{"Encrypt", "Decrypt"}
	f.put(keyrepo.GrantKey(region, k.ID, rewritten.ID), rewritten)
	views := f.st.views.Load()
	peer.Changed(append(append(grantChange(added), grantChange(retired)...), keyrepo.GrantKey(region, k.ID, rewritten.ID)))
	if n := f.st.views.Load() - views; n != 1 {
		t.Fatalf("the changed grants were read in %d transactions, want 1", n)
	}

	got, err := peer.Load(f.ctx, region, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, misses := peer.CacheStats(); misses != 1 {
		t.Fatalf("%d misses, want 1: the key was read again", misses)
	}
	if got.Current != first.Current {
		t.Fatal("the key's material was unsealed again")
	}
	if len(first.Grants) != 3 {
		t.Fatal("the patch changed a snapshot a caller holds")
	}
	sameGrants(t, "after the patch", got, f.reloaded(k.ID), app, other, retired.Grantee)

	// A grant of a key this process does not hold is not read.
	cold := f.newKey(acctA, keys.SymmetricDefault)
	g := f.grant(cold, "e5", "")
	f.putGrants(g)
	views = f.st.views.Load()
	peer.Changed(grantChange(g))
	if n := f.st.views.Load() - views; n != 0 {
		t.Fatalf("a grant of a key not cached was read (%d transactions)", n)
	}
}

// Grants made here and by other processes are patched in the same order
// as a load reads them, whatever order they come in.
func TestPatchedGrantsKeepLoadOrder(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	peer := f.newRepo(keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	f.putGrants(f.grant(k, "m", ""))
	if _, err := peer.Load(f.ctx, region, k.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"z", "a", "q", "b"} {
		g := f.grant(k, id, "")
		f.putGrants(g)
		if id == "a" || id == "b" {
			peer.GrantAdded(g) // as if made by this process
		}
		peer.Changed(grantChange(g))
	}
	got, _ := peer.Load(f.ctx, region, k.ID)
	sameGrants(t, "after five patches", got, f.reloaded(k.ID))
}

// A patch that cannot read the changed grant drops the key, to be read
// again whole by the next request.
func TestChangedGrantUnreadable(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	peer := f.newRepo(keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	if _, err := peer.Load(f.ctx, region, k.ID); err != nil {
		t.Fatal(err)
	}
	g := f.grant(k, "a1", "")
	f.putGrants(g)
	f.st.viewErr = errors.New("connection refused")
	peer.Changed(grantChange(g))
	got, err := peer.Load(f.ctx, region, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, misses := peer.CacheStats(); misses != 2 {
		t.Fatalf("%d misses, want 2: the key was kept without the grant", misses)
	}
	sameGrants(t, "read again", got, f.reloaded(k.ID))
	if !strings.Contains(f.logs.String(), "connection refused") {
		t.Errorf("the failed read is not logged:\n%s", f.logs)
	}

	// Told that anything may have changed, it drops every key.
	f.deleteGrant(g)
	peer.Changed(nil)
	got, _ = peer.Load(f.ctx, region, k.ID)
	if len(got.Grants) != 0 {
		t.Fatalf("after Changed(nil) the key holds %v", grantIDs(got.Grants))
	}
}

// The patch keeps the cache's guards against loads that race a change.
func TestChangedGrantRacesLoad(t *testing.T) {
	t.Run("a load that read before the change does not fill the cache", func(t *testing.T) {
		f := newFixture(t, keyrepo.Config{})
		peer := f.newRepo(keyrepo.Config{})
		k := f.newKey(acctA, keys.SymmetricDefault)
		g := f.grant(k, "a1", "")
		f.st.afterView = func() {
			f.putGrants(g)
			peer.Changed(grantChange(g))
		}
		if racing, _ := peer.Load(f.ctx, region, k.ID); len(racing.Grants) != 0 {
			t.Fatalf("the racing load read %v, want the grants before the change", grantIDs(racing.Grants))
		}
		got, _ := peer.Load(f.ctx, region, k.ID)
		sameGrants(t, "the load after", got, f.reloaded(k.ID))
	})
	t.Run("a change while the patch reads drops the key", func(t *testing.T) {
		f := newFixture(t, keyrepo.Config{})
		peer := f.newRepo(keyrepo.Config{})
		k := f.newKey(acctA, keys.SymmetricDefault)
		if _, err := peer.Load(f.ctx, region, k.ID); err != nil {
			t.Fatal(err)
		}
		g := f.grant(k, "a1", "")
		f.putGrants(g)
		// The patch reads the grant as made; before it patches, the grant
		// is deleted and the cached key patched by this process.
		f.st.afterView = func() {
			f.deleteGrant(g)
			peer.GrantRemoved(region, k.ID, g.ID)
		}
		peer.Changed(grantChange(g))
		got, _ := peer.Load(f.ctx, region, k.ID)
		if len(got.Grants) != 0 {
			t.Fatalf("the deleted grant came back from the patch's earlier read: %v", grantIDs(got.Grants))
		}
	})
	t.Run("a patch keeps the entry's age", func(t *testing.T) {
		f := newFixture(t, keyrepo.Config{})
		peer := f.newRepo(keyrepo.Config{CacheMaxAge: time.Minute})
		k := f.newKey(acctA, keys.SymmetricDefault)
		if _, err := peer.Load(f.ctx, region, k.ID); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(30 * time.Second)
		g := f.grant(k, "a1", "")
		f.putGrants(g)
		peer.Changed(grantChange(g))
		f.describe(k, "changed, untold")
		f.clock.Advance(30 * time.Second)
		if got := f.description(peer, k.ID); got != "changed, untold" {
			t.Fatalf("a patched entry outlived its age: description %q", got)
		}
	})
}

// Loads running beside a stream of grant changes, each announced once
// committed: when the stream ends, the cached key holds what a load reads.
// Run with -race.
func TestChangedGrantsConcurrentLoads(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	peer := f.newRepo(keyrepo.Config{CacheSize: 1})
	k := f.newKey(acctA, keys.SymmetricDefault)
	other := f.newKey(acctA, keys.SymmetricDefault) // evicts k now and then: CacheSize 1
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := k.ID
				if i == 0 {
					id = other.ID
				}
				if _, err := peer.Load(f.ctx, region, id); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var live []*keyrepo.GrantRecord
	for i := range 200 {
		g := f.grant(k, fmt.Sprintf("%064x", (i*7919)%1000), "")
		f.putGrants(g)
		peer.Changed(grantChange(g))
		live = append(live, g)
		if i%3 == 2 {
			gone := live[0]
			live = live[1:]
			f.deleteGrant(gone)
			peer.Changed(grantChange(gone))
		}
	}
	close(stop)
	wg.Wait()
	got, err := peer.Load(f.ctx, region, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameGrants(t, "after the stream", got, f.reloaded(k.ID))
	if len(got.Grants) != len(live) {
		t.Fatalf("%d grants, want %d", len(got.Grants), len(live))
	}
}

// A key record whose last use alone changed, as every process that used
// the key writes it every few seconds, patches the cached key's record;
// any other change to it, or its deletion, drops the key.
func TestChangedKeyRecordLastUse(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	peer := f.newRepo(keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	f.putGrants(f.grant(k, "a1", ""))
	first, err := peer.Load(f.ctx, region, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	used := k
	used.LastUsage = &keyrepo.LastUsage{Operation: "Encrypt", Time: f.clock.Now(), EventID: "e1", RequestID: "r1"}
	since := f.clock.Now()
	used.UsageTrackedSince = &since
	f.put(keyrepo.KeyKey(region, k.ID), &used)
	peer.Changed([][]byte{keyrepo.KeyKey(region, k.ID)})
	got, err := peer.Load(f.ctx, region, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, misses := peer.CacheStats(); misses != 1 {
		t.Fatalf("%d misses, want 1: a new last use read the key again", misses)
	}
	if got.Current != first.Current || got.Policy != first.Policy || len(got.Grants) != 1 {
		t.Fatal("the key's material, policy or grants were read again")
	}
	want := f.reloaded(k.ID)
	if !reflect.DeepEqual(got.Rec, want.Rec) {
		t.Fatalf("patched record %+v, want %+v", got.Rec, want.Rec)
	}
	if first.Rec.LastUsage != nil {
		t.Fatal("the patch changed a snapshot a caller holds")
	}

	f.describe(used, "changed")
	peer.Changed([][]byte{keyrepo.KeyKey(region, k.ID)})
	if got := f.description(peer, k.ID); got != "changed" {
		t.Fatalf("after another change to the key record: description %q", got)
	}
	if _, misses := peer.CacheStats(); misses != 2 {
		t.Fatalf("%d misses, want 2: the key was not read again", misses)
	}

	f.update(func(tx store.Tx) error { return tx.Delete(keyrepo.KeyKey(region, k.ID)) })
	peer.Changed([][]byte{keyrepo.KeyKey(region, k.ID)})
	if _, err := peer.Load(f.ctx, region, k.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a deleted key loads: %v", err)
	}
}
