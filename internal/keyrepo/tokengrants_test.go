package keyrepo_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
)

// A key from the cache includes the grants its call names by token: one
// it lacks is read from the store for that call, one it holds or of
// another key costs no read, and one that cannot be read is left out.
// The cached key gains the grant when its change is announced.
func TestTokenGrants(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	peer := f.newRepo(keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	held, made := f.grant(k, "b2", ""), f.grant(k, "c3", "")
	f.putGrants(held)
	first, err := peer.Load(f.ctx, region, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.putGrants(made) // by another process, not announced yet
	token := func(gs ...*keyrepo.GrantRecord) []keyrepo.TokenGrant {
		var out []keyrepo.TokenGrant
		for _, g := range gs {
			out = append(out, keyrepo.TokenGrant{KeyID: g.KeyID, GrantID: g.ID})
		}
		return out
	}
	other := f.grant(f.newKey(acctA, keys.SymmetricDefault), "c3", "")
	for _, step := range []struct {
		name   string
		tokens []keyrepo.TokenGrant
		fail   bool
		reads  int64
		want   []string
	}{
		{"no token", nil, false, 0, []string{"b2"}},
		{"a grant held", token(held), false, 0, []string{"b2"}},
		{"a grant of another key", token(other), false, 0, []string{"b2"}},
		{"a grant gone", []keyrepo.TokenGrant{{KeyID: k.ID, GrantID: "a1"}}, false, 1, []string{"b2"}},
		{"a grant made, unreadable", token(made), true, 1, []string{"b2"}},
		{"a grant made", token(made, made), false, 1, []string{"b2", "c3"}},
		{"then without its token", nil, false, 0, []string{"b2"}},
		{"then with it", token(made), false, 1, []string{"b2", "c3"}},
		{"announced", nil, false, 0, []string{"b2", "c3"}},
		{"then with its token", token(made), false, 0, []string{"b2", "c3"}},
	} {
		if step.name == "announced" {
			peer.Changed(grantChange(made))
		}
		if step.fail {
			f.st.viewErr = errors.New("connection refused")
		}
		views := f.st.views.Load()
		got, err := peer.Load(keyrepo.WithTokenGrants(f.ctx, step.tokens), region, k.ID)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if n := f.st.views.Load() - views; n != step.reads {
			t.Errorf("%s: %d reads, want %d", step.name, n, step.reads)
		}
		if ids := grantIDs(got.Grants); !slices.Equal(ids, step.want) {
			t.Errorf("%s: grants %v, want %v", step.name, ids, step.want)
		}
		if got.Current != first.Current {
			t.Fatalf("%s: the key's material was unsealed again", step.name)
		}
	}
	if _, misses := peer.CacheStats(); misses != 1 {
		t.Fatalf("%d misses, want 1", misses)
	}
	sameGrants(t, "after the tokens", mustLoad(t, f, peer, k.ID), f.reloaded(k.ID))
}

func mustLoad(t *testing.T, f *fixture, r *keyrepo.Repo, id string) *keyrepo.Key {
	t.Helper()
	k, err := r.Load(f.ctx, region, id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
