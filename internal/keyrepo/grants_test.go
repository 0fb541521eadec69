package keyrepo_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

func (f *fixture) grant(rec keyrepo.KeyRecord, id, name string) *keyrepo.GrantRecord {
	return &keyrepo.GrantRecord{V: keyrepo.RecordVersion, ID: id, KeyID: rec.ID, Region: region, Account: rec.Account, Name: name,
		Grantee: "arn:aws:iam::" + rec.Account + ":user/app", Retiring: "arn:aws:iam::" + rec.Account + ":user/ops",
		Operations: []string{"Decrypt"}, Created: f.clock.Now()}
}

func (f *fixture) update(fn func(tx store.Tx) error) {
	f.t.Helper()
	if err := f.st.Update(f.ctx, fn); err != nil {
		f.t.Fatal(err)
	}
}

// countAndNames reads a key's grant count and the ids its name index holds
// for name.
func (f *fixture) countAndNames(rec keyrepo.KeyRecord, name string) (n int, ids []string) {
	f.t.Helper()
	f.update(func(tx store.Tx) error {
		var err error
		if n, err = keyrepo.GrantCount(tx, region, rec.ID); err != nil {
			return err
		}
		return keyrepo.NamedGrants(tx, region, rec.ID, rec.Account, name, func(g *keyrepo.GrantRecord) bool {
			ids = append(ids, g.ID)
			return true
		})
	})
	slices.Sort(ids)
	return n, ids
}

// The count and the name index follow every PutGrant and DeleteGrant.
func TestGrantCountAndNames(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	other := f.newKey(acctA, keys.SymmetricDefault)
	a, b, c := f.grant(k, "a1", "batch"), f.grant(k, "b2", "batch"), f.grant(k, "c3", "")
	slash := f.grant(k, "d4", "batch/x") // a name the hex form keeps apart from "batch"
	f.update(func(tx store.Tx) error {
		for _, g := range []*keyrepo.GrantRecord{a, b, c, slash, f.grant(other, "e5", "batch")} {
			if err := keyrepo.PutGrant(tx, g); err != nil {
				return err
			}
		}
		return nil
	})
	if n, ids := f.countAndNames(k, "batch"); n != 4 || !slices.Equal(ids, []string{"a1", "b2"}) {
		t.Fatalf("after four grants: count %d, named batch %v; want 4, [a1 b2]", n, ids)
	}
	if _, ids := f.countAndNames(k, "batch/x"); !slices.Equal(ids, []string{"d4"}) {
		t.Fatalf("named batch/x %v, want [d4]", ids)
	}
	f.update(func(tx store.Tx) error { return keyrepo.DeleteGrant(tx, region, k.ID, a) })
	if n, ids := f.countAndNames(k, "batch"); n != 3 || !slices.Equal(ids, []string{"b2"}) {
		t.Fatalf("after deleting a1: count %d, named batch %v; want 3, [b2]", n, ids)
	}
	if n, _ := f.countAndNames(other, "batch"); n != 1 {
		t.Fatalf("the other key's count is %d, want 1", n)
	}
	f.update(func(tx store.Tx) error {
		if _, err := tx.Get(keyrepo.RetirableKey(a.Retiring, region, k.ID, a.ID)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the deleted grant is still retirable (%v)", err)
		}
		return nil
	})
}

// Grants stored before the count existed are counted, and their names
// indexed, by the first transaction that needs them; a count that cannot
// be right is dropped and counted again.
func TestGrantCountOfOlderGrants(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	for _, g := range []*keyrepo.GrantRecord{f.grant(k, "a1", "batch"), f.grant(k, "b2", ""), f.grant(k, "c3", "batch")} {
		f.put(keyrepo.GrantKey(region, k.ID, g.ID), g)
	}
	// Deleting one before the count exists leaves no count behind.
	f.update(func(tx store.Tx) error { return keyrepo.DeleteGrant(tx, region, k.ID, f.grant(k, "c3", "batch")) })
	f.update(func(tx store.Tx) error {
		if _, err := tx.Get(keyrepo.GrantCountKey(region, k.ID)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a delete made a count from nothing (%v)", err)
		}
		return nil
	})
	if n, ids := f.countAndNames(k, "batch"); n != 2 || !slices.Equal(ids, []string{"a1"}) {
		t.Fatalf("older grants: count %d, named batch %v; want 2, [a1]", n, ids)
	}

	f.putRaw(keyrepo.GrantCountKey(region, k.ID), []byte("0")) // fewer than there are
	f.update(func(tx store.Tx) error { return keyrepo.DeleteGrant(tx, region, k.ID, f.grant(k, "a1", "batch")) })
	if n, ids := f.countAndNames(k, "batch"); n != 1 || len(ids) != 0 {
		t.Fatalf("after a wrong count: count %d, named batch %v; want 1, none", n, ids)
	}
	f.putRaw(keyrepo.GrantCountKey(region, k.ID), []byte("x"))
	err := f.st.Update(f.ctx, func(tx store.Tx) error { _, err := keyrepo.GrantCount(tx, region, k.ID); return err })
	if err == nil {
		t.Fatal("a count that is not a number was read")
	}
}

// A grant made or deleted on a cached key changes the cached key's grants
// without reading the key again; a load that read the grants before the
// change does not fill the cache.
func TestCachePatchesGrants(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	first, err := f.repo.Load(f.ctx, region, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	g := f.grant(k, "a1", "")
	f.update(func(tx store.Tx) error { return keyrepo.PutGrant(tx, g) })
	f.repo.GrantAdded(g)
	got, err := f.repo.Load(f.ctx, region, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Grants) != 1 || got.Grants[0].ID != "a1" {
		t.Fatalf("after GrantAdded the cached key has grants %v", got.Grants)
	}
	if len(first.Grants) != 0 {
		t.Fatal("GrantAdded changed a snapshot a caller holds")
	}
	if got.Current != first.Current {
		t.Fatal("the key's material was loaded again")
	}
	if _, misses := f.repo.CacheStats(); misses != 1 {
		t.Fatalf("%d misses, want 1: the key was read again", misses)
	}
	f.repo.GrantAdded(g) // told twice (a fill after the commit already had it)
	if got, _ := f.repo.Load(f.ctx, region, k.ID); len(got.Grants) != 1 {
		t.Fatalf("a grant added twice is held %d times", len(got.Grants))
	}

	// A load racing a deletion: it read the grant, the deletion commits
	// and patches, then the load would fill the cache with the grant.
	f.repo.Invalidate(region, k.ID, "")
	f.st.afterView = func() {
		f.update(func(tx store.Tx) error { return keyrepo.DeleteGrant(tx, region, k.ID, g) })
		f.repo.GrantRemoved(region, k.ID, g.ID)
	}
	if racing, _ := f.repo.Load(f.ctx, region, k.ID); len(racing.Grants) != 1 {
		t.Fatalf("the racing load read %d grants, want the one before the change", len(racing.Grants))
	}
	if got, _ := f.repo.Load(f.ctx, region, k.ID); len(got.Grants) != 0 {
		t.Fatalf("the racing load's stale grants were cached: %v", got.Grants)
	}
	f.repo.GrantRemoved(region, k.ID, g.ID)
	f.repo.GrantAdded(f.grant(f.newKey(acctA, keys.SymmetricDefault), "b2", "")) // a key not cached is not loaded
}

func grantIDs(gs []*keyrepo.GrantRecord) []string {
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	slices.Sort(ids)
	return ids
}

// A key read WithoutCache reads only the grants a call asks for, from the
// store as it is when asked, and is not cached; a cached key finds them
// by grantee.
func TestGranteeGrants(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	app, role := "arn:aws:iam::"+acctA+":user/app", "arn:aws:iam::"+acctA+":role/worker"
	mine, theirs, roles := f.grant(k, "a1", ""), f.grant(k, "b2", ""), f.grant(k, "c3", "")
	theirs.Grantee, theirs.Retiring = "arn:aws:iam::"+acctA+":user/other", app // names app, but not as grantee
	roles.Grantee = role
	f.update(func(tx store.Tx) error {
		for _, g := range []*keyrepo.GrantRecord{mine, theirs, roles} {
			if err := keyrepo.PutGrant(tx, g); err != nil {
				return err
			}
		}
		return nil
	})

	cached, err := f.repo.Load(f.ctx, region, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := f.repo.Load(keyrepo.WithoutCache(f.ctx), region, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Grants != nil {
		t.Fatalf("a key read WithoutCache read all %d grants", len(fresh.Grants))
	}
	later := f.grant(k, "d4", "")
	f.update(func(tx store.Tx) error { return keyrepo.PutGrant(tx, later) })
	for _, c := range []struct {
		name string
		k    *keyrepo.Key
		arns []string
		want []string
	}{
		{"cached, the user", cached, []string{app, ""}, []string{"a1"}},
		{"cached, the user and its role", cached, []string{app, role}, []string{"a1", "c3"}},
		{"cached, nobody", cached, []string{"", ""}, []string{}},
		{"from the store, the user, as stored now", fresh, []string{app}, []string{"a1", "d4"}},
		{"from the store, the role", fresh, []string{"", role}, []string{"c3"}},
	} {
		gs, err := c.k.GranteeGrants(c.arns...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := grantIDs(gs); !slices.Equal(got, c.want) {
			t.Errorf("%s: grants %v, want %v", c.name, got, c.want)
		}
	}
	if again, _ := f.repo.Load(f.ctx, region, k.ID); again != cached {
		t.Fatal("a key read WithoutCache replaced the cached one")
	}
	f.st.Close()
	if _, err := fresh.GranteeGrants(app); err == nil {
		t.Fatal("GranteeGrants on a closed store did not fail")
	}
}
