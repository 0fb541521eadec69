package keyrepo_test

import (
	"testing"
	"time"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
)

func TestCacheStats(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	var first *keyrepo.Key
	for _, step := range []struct {
		name                 string
		do                   func() (*keyrepo.Key, error)
		hits, misses         uint64
		sameAsFirst, wantErr bool
	}{
		{"first load reads the store", func() (*keyrepo.Key, error) { return f.repo.Load(f.ctx, region, k.ID) }, 0, 1, false, false},
		{"second load is a hit", func() (*keyrepo.Key, error) { return f.repo.Load(f.ctx, region, k.ID) }, 1, 1, true, false},
		{"resolving by id uses the cache", func() (*keyrepo.Key, error) {
			k, _, err := f.repo.Resolve(f.ctx, acctA, region, k.ID, keyrepo.IDOrARN)
			return k, err
		}, 2, 1, true, false},
		{"after Invalidate the store is read again", func() (*keyrepo.Key, error) {
			f.repo.Invalidate(region, k.ID, "")
			return f.repo.Load(f.ctx, region, k.ID)
		}, 2, 2, false, false},
		{"an unknown key is a miss", func() (*keyrepo.Key, error) { return f.repo.Load(f.ctx, region, keys.NewID().String()) }, 2, 3, false, true},
		{"and is not cached", func() (*keyrepo.Key, error) { return f.repo.Load(f.ctx, region, keys.NewID().String()) }, 2, 4, false, true},
	} {
		got, err := step.do()
		if (err != nil) != step.wantErr {
			t.Fatalf("%s: error %v, want error %v", step.name, err, step.wantErr)
		}
		if first == nil {
			first = got
		} else if (got == first) != step.sameAsFirst {
			t.Fatalf("%s: the same snapshot as the first load: %v, want %v", step.name, got == first, step.sameAsFirst)
		}
		if hits, misses := f.repo.CacheStats(); hits != step.hits || misses != step.misses {
			t.Fatalf("%s: CacheStats = %d hits, %d misses; want %d, %d", step.name, hits, misses, step.hits, step.misses)
		}
	}
}

// Each change drops exactly the cache entries its records feed: a cached
// key or alias is used until then, even though the store changed.
func TestCacheDropsWhatChanged(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		change                   func(r *keyrepo.Repo, keyID string)
		keyDropped, aliasDropped bool
	}{
		{"nothing", func(*keyrepo.Repo, string) {}, false, false},
		{"Invalidate the key", func(r *keyrepo.Repo, id string) { r.Invalidate(region, id, "") }, true, false},
		{"Invalidate another key", func(r *keyrepo.Repo, _ string) { r.Invalidate(region, keys.NewID().String(), "") }, false, false},
		{"Invalidate the alias", func(r *keyrepo.Repo, _ string) { r.Invalidate(region, "", acctA, "alias/app") }, false, true},
		{"Invalidate the key and the alias", func(r *keyrepo.Repo, id string) { r.Invalidate(region, id, acctA, "alias/other", "alias/app") }, true, true},
		{"Invalidate the same alias name in another account", func(r *keyrepo.Repo, _ string) { r.Invalidate(region, "", acctB, "alias/app") }, false, false},
		{"Changed: anything", func(r *keyrepo.Repo, _ string) { r.Changed(nil) }, true, true},
		{"Changed: no records", func(r *keyrepo.Repo, _ string) { r.Changed([][]byte{}) }, false, false},
		{"Changed: the key record", func(r *keyrepo.Repo, id string) { r.Changed([][]byte{keyrepo.KeyKey(region, id)}) }, true, false},
		{"Changed: a version record", func(r *keyrepo.Repo, id string) { r.Changed([][]byte{keyrepo.VersionKey(region, id, 2)}) }, true, false},
		{"Changed: a grant record (patched in, not read again)", func(r *keyrepo.Repo, id string) { r.Changed([][]byte{keyrepo.GrantKey(region, id, "g")}) }, false, false},
		{"Changed: a grant record and the key record", func(r *keyrepo.Repo, id string) {
			r.Changed([][]byte{keyrepo.GrantKey(region, id, "g"), keyrepo.KeyKey(region, id)})
		}, true, false},
		{"Changed: a record named like a key's grants", func(r *keyrepo.Repo, id string) { r.Changed([][]byte{keyrepo.GrantPrefix(region, id)}) }, true, false},
		{"Changed: the alias record", func(r *keyrepo.Repo, _ string) { r.Changed([][]byte{keyrepo.AliasKey(acctA, region, "alias/app")}) }, false, true},
		{"Changed: both", func(r *keyrepo.Repo, id string) {
			r.Changed([][]byte{keyrepo.AliasKey(acctA, region, "alias/app"), keyrepo.KeyKey(region, id)})
		}, true, true},
		{"Changed: the alias of another account", func(r *keyrepo.Repo, _ string) { r.Changed([][]byte{keyrepo.AliasKey(acctB, region, "alias/app")}) }, false, false},
		{"Changed: another key", func(r *keyrepo.Repo, _ string) { r.Changed([][]byte{keyrepo.KeyKey(region, keys.NewID().String())}) }, false, false},
		{"Changed: index records only", func(r *keyrepo.Repo, id string) {
			r.Changed([][]byte{keyrepo.KeyAliasKey(region, id, "alias/app"), keyrepo.PendingDeletionKey(region, id), keyrepo.AcctKeyKey(acctA, region, id)})
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, keyrepo.Config{})
			k := f.newKey(acctA, keys.SymmetricDefault)
			k2 := f.newKey(acctA, keys.SymmetricDefault)
			f.putAlias(acctA, "alias/app", k.ID)
			// Warm the cache, then change the store behind its back.
			if f.description(f.repo, k.ID) != "" || f.aliasTarget(f.repo, acctA, "alias/app") != k.ID {
				t.Fatal("unexpected initial state")
			}
			f.describe(k, "changed")
			f.putAlias(acctA, "alias/app", k2.ID)

			tc.change(f.repo, k.ID)
			if got := f.description(f.repo, k.ID) == "changed"; got != tc.keyDropped {
				t.Errorf("key read again: %v, want %v", got, tc.keyDropped)
			}
			if got := f.aliasTarget(f.repo, acctA, "alias/app") == k2.ID; got != tc.aliasDropped {
				t.Errorf("alias read again: %v, want %v", got, tc.aliasDropped)
			}
		})
	}
}

// With CacheMaxAge, an entry is trusted for that long after it was read
// and no longer, even if no change is ever reported.
func TestCacheMaxAge(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxAge  time.Duration
		advance time.Duration
		reread  bool
	}{
		{"no max age, a year later", 0, 365 * 24 * time.Hour, false},
		{"before the max age", time.Minute, time.Minute - time.Nanosecond, false},
		{"at the max age", time.Minute, time.Minute, true},
		{"after the max age", time.Minute, time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, keyrepo.Config{CacheMaxAge: tc.maxAge})
			k := f.newKey(acctA, keys.SymmetricDefault)
			k2 := f.newKey(acctA, keys.SymmetricDefault)
			f.putAlias(acctA, "alias/app", k.ID)
			f.description(f.repo, k.ID)
			f.aliasTarget(f.repo, acctA, "alias/app")
			f.describe(k, "changed")
			f.putAlias(acctA, "alias/app", k2.ID)

			f.clock.Advance(tc.advance)
			if got := f.description(f.repo, k.ID) == "changed"; got != tc.reread {
				t.Errorf("key read again: %v, want %v", got, tc.reread)
			}
			if got := f.aliasTarget(f.repo, acctA, "alias/app") == k2.ID; got != tc.reread {
				t.Errorf("alias read again: %v, want %v", got, tc.reread)
			}
			wantHits := uint64(1)
			if tc.reread {
				wantHits = 0
			}
			if hits, misses := f.repo.CacheStats(); hits != wantHits || misses != 2-wantHits {
				t.Errorf("CacheStats = %d hits, %d misses; want %d, %d", hits, misses, wantHits, 2-wantHits)
			}
			// A reread entry is fresh again for the full max age.
			if tc.reread {
				f.describe(k, "changed again")
				f.clock.Advance(tc.maxAge - time.Nanosecond)
				if got := f.description(f.repo, k.ID); got != "changed" {
					t.Errorf("description %q after rereading, want the reread %q", got, "changed")
				}
			}
		})
	}
}

// The cache holds at most CacheSize keys and CacheSize aliases.
func TestCacheSize(t *testing.T) {
	f := newFixture(t, keyrepo.Config{CacheSize: 1})
	k1 := f.newKey(acctA, keys.SymmetricDefault)
	k2 := f.newKey(acctA, keys.SymmetricDefault)
	for _, step := range []struct {
		id           string
		hits, misses uint64
	}{
		{k1.ID, 0, 1},
		{k1.ID, 1, 1},
		{k2.ID, 1, 2}, // evicts k1
		{k2.ID, 2, 2},
		{k1.ID, 2, 3},
	} {
		f.description(f.repo, step.id)
		if hits, misses := f.repo.CacheStats(); hits != step.hits || misses != step.misses {
			t.Fatalf("after loading %s: CacheStats = %d hits, %d misses; want %d, %d", step.id, hits, misses, step.hits, step.misses)
		}
	}

	f.putAlias(acctA, "alias/one", k1.ID)
	f.putAlias(acctA, "alias/two", k1.ID)
	f.aliasTarget(f.repo, acctA, "alias/one")
	f.aliasTarget(f.repo, acctA, "alias/two") // evicts alias/one
	f.putAlias(acctA, "alias/one", k2.ID)
	f.putAlias(acctA, "alias/two", k2.ID)
	if got := f.aliasTarget(f.repo, acctA, "alias/one"); got != k2.ID {
		t.Errorf("alias/one was not evicted: it names %s, want %s", got, k2.ID)
	}
}

// A load that began before a change was committed and invalidated must
// not leave what it read in the cache: the next request would use the old
// key until the next change.
func TestCacheFillRacesInvalidate(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	k2 := f.newKey(acctA, keys.SymmetricDefault)
	f.putAlias(acctA, "alias/app", k.ID)

	// Another writer commits and invalidates between the reader's read
	// transaction and its fill.
	f.st.afterView = func() {
		f.describe(k, "changed")
		f.repo.Invalidate(region, k.ID, "")
	}
	if got := f.description(f.repo, k.ID); got != "" {
		t.Fatalf("the racing load read %q, want the state before the change", got)
	}
	if got := f.description(f.repo, k.ID); got != "changed" {
		t.Fatalf("after the race the cache holds the stale key (description %q)", got)
	}
	if got := f.description(f.repo, k.ID); got != "changed" {
		t.Fatalf("after rereading: description %q", got)
	}
	if hits, misses := f.repo.CacheStats(); hits != 1 || misses != 2 {
		t.Fatalf("CacheStats = %d hits, %d misses; want 1, 2 (the reread key is cached)", hits, misses)
	}

	f.st.afterView = func() {
		f.putAlias(acctA, "alias/app", k2.ID)
		f.repo.Invalidate(region, "", acctA, "alias/app")
	}
	if got := f.aliasTarget(f.repo, acctA, "alias/app"); got != k.ID {
		t.Fatalf("the racing lookup read %s, want the target before the change", got)
	}
	if got := f.aliasTarget(f.repo, acctA, "alias/app"); got != k2.ID {
		t.Fatal("after the race the cache holds the stale alias target")
	}
}

// Two repositories over one store each keep their own cache: one learns
// of the other's changes only through Changed.
func TestChangedAcrossRepos(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	other := f.newRepo(keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	f.description(f.repo, k.ID)
	f.description(other, k.ID)

	f.describe(k, "by other")
	other.Invalidate(region, k.ID, "")
	if got := f.description(other, k.ID); got != "by other" {
		t.Fatalf("the writer's repository reads %q", got)
	}
	if got := f.description(f.repo, k.ID); got != "" {
		t.Fatalf("the other repository saw the change before being told: %q", got)
	}
	f.repo.Changed([][]byte{keyrepo.KeyKey(region, k.ID)})
	if got := f.description(f.repo, k.ID); got != "by other" {
		t.Fatalf("after Changed the repository reads %q", got)
	}
}
