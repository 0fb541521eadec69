package keyrepo_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/policy"
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

// The keys the cache holds take at most CacheBytes, as estimated,
// however many keys it may hold: a fill or a patch that would pass it
// evicts other keys, and a key larger than that alone is not held at all.
// A key with a larger policy, or more grants, counts for more.
func TestCacheBytesBound(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	probe := f.newKey(acctA, keys.SymmetricDefault)
	for j := range 4 {
		f.putGrants(f.grant(probe, fmt.Sprintf("p%d", j), ""))
	}
	k, err := f.repo.Load(f.ctx, region, probe.ID)
	if err != nil {
		t.Fatal(err)
	}
	one := keyrepo.MemSize(k)
	budget := 2*one + one/2 // two keys like probe, not three
	f = newFixture(t, keyrepo.Config{CacheSize: 100, CacheBytes: budget})
	check := func(what string) {
		t.Helper()
		n, bytes, accounted := keyrepo.CachedBytes(f.repo)
		if bytes > budget || bytes != accounted {
			t.Fatalf("%s: the cache holds %d keys of %d bytes (accounted %d); want at most %d", what, n, bytes, accounted, budget)
		}
	}
	var ks []keyrepo.KeyRecord
	for i := range 6 {
		k := f.newKey(acctA, keys.SymmetricDefault)
		ks = append(ks, k)
		for j := range 4 {
			f.putGrants(f.grant(k, fmt.Sprintf("g%d%d", i, j), ""))
		}
		f.description(f.repo, k.ID)
		check(fmt.Sprintf("after loading key %d", i+1))
	}
	if n, _, _ := keyrepo.CachedBytes(f.repo); n != 2 {
		t.Errorf("the cache holds %d keys; want the 2 that fit", n)
	}
	// Grants patched into a cached key make room as a fill does.
	last := ks[len(ks)-1]
	for j := range 5 {
		g := f.grant(last, fmt.Sprintf("h%d", j), "")
		f.putGrants(g)
		f.repo.GrantAdded(g)
		check(fmt.Sprintf("after patching in grant %d", j+1))
	}
	// A key whose policy alone is larger than the budget is read, not held.
	big := f.newKey(acctA, keys.SymmetricDefault, func(r *keyrepo.KeyRecord) {
		r.Policy = `{"Version":"2012-10-17","Statement":[` + strings.Repeat(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::`+acctA+`:root"},"Action":"kms:*","Resource":"*"},`, 100) +
			`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctA + `:root"},"Action":"kms:*","Resource":"*"}]}`
	})
	_, misses := f.repo.CacheStats()
	f.description(f.repo, big.ID)
	f.description(f.repo, big.ID)
	if _, m := f.repo.CacheStats(); m != misses+2 {
		t.Errorf("a key over the budget was answered from the cache: %d misses for 2 loads", m-misses)
	}
	check("after loading a key over the budget")
	f.repo.Invalidate(region, last.ID, acctA)
	check("after an invalidation")
}

// The default budget holds CacheSize keys of a usual kind, with a policy
// of 3 KiB and a few grants, and not CacheSize keys at AWS's limits.
func TestCacheBytesDefault(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	usual := f.newKey(acctA, keys.SymmetricDefault, func(r *keyrepo.KeyRecord) {
		r.Policy = `{"Version":"2012-10-17","Statement":[{"Sid":"pad","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctA + `:root"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"` + strings.Repeat("1", 2900) + `"}}}]}`
	})
	for j := range 3 {
		f.putGrants(f.grant(usual, fmt.Sprintf("g%d", j), ""))
	}
	k, err := f.repo.Load(f.ctx, region, usual.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := 10000 * keyrepo.MemSize(k); n > keyrepo.DefaultCacheBytes {
		t.Errorf("10,000 keys with a 3 KiB policy and 3 grants take %d bytes; the default budget is %d", n, keyrepo.DefaultCacheBytes)
	}
	full := *k
	full.Rec.Policy = `{"Version":"2012-10-17","Statement":[{"Sid":"pad","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctA + `:root"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"` + strings.Repeat("1", 32500) + `"}}}]}`
	if full.Policy, err = policy.ParseStoredResource(full.Rec.Policy); err != nil {
		t.Fatal(err)
	}
	if n := 10000 * keyrepo.MemSize(&full); n <= keyrepo.DefaultCacheBytes {
		t.Errorf("10,000 keys with 32 KiB policies are estimated at %d bytes, within the default budget of %d", n, keyrepo.DefaultCacheBytes)
	}
}

// A working set of small hot keys stays cached while keys with many
// grants are filled in turn, each taking a large part of the budget: room
// for a large key is made from the other large keys, not from the hot
// ones.
func TestCacheBytesKeepsSmallHotKeys(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	bigKey := func(f *fixture) keyrepo.KeyRecord {
		k := f.newKey(acctA, keys.SymmetricDefault)
		var gs []*keyrepo.GrantRecord
		for j := range 40 {
			gs = append(gs, f.grant(k, fmt.Sprintf("g%02d", j), ""))
		}
		f.putGrants(gs...)
		return k
	}
	probe := bigKey(f)
	k, err := f.repo.Load(f.ctx, region, probe.ID)
	if err != nil {
		t.Fatal(err)
	}
	big := keyrepo.MemSize(k)
	k, err = f.repo.Load(f.ctx, region, f.newKey(acctA, keys.SymmetricDefault).ID)
	if err != nil {
		t.Fatal(err)
	}
	small := keyrepo.MemSize(k)

	const hot = 8
	f = newFixture(t, keyrepo.Config{CacheSize: 100, CacheBytes: 2*big + hot*small + small/2})
	var hots []string
	for range hot {
		k := f.newKey(acctA, keys.SymmetricDefault)
		hots = append(hots, k.ID)
		f.description(f.repo, k.ID)
	}
	var bigs []string
	for range 3 {
		bigs = append(bigs, bigKey(f).ID)
	}
	for round := range 5 {
		for _, id := range bigs {
			f.description(f.repo, id)
		}
		_, misses := f.repo.CacheStats()
		for _, id := range hots {
			f.description(f.repo, id)
		}
		if _, m := f.repo.CacheStats(); m != misses {
			t.Fatalf("round %d: %d of the %d hot keys were evicted by the fills of keys with many grants", round+1, m-misses, hot)
		}
	}
}
