package keyrepo_test

import (
	"fmt"
	"testing"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// A grant made and retired by another process on a key with 50,000
// grants (the most a key may hold): what a process holding the key pays
// per change, patching it (Changed) or reading it again whole as it did
// before.
func BenchmarkPeerGrantChange(b *testing.B) {
	f := newFixture(b, keyrepo.Config{})
	k := f.newKey(acctA, keys.SymmetricDefault)
	f.update(func(tx store.Tx) error {
		for i := range 50000 - 1 {
			if err := keyrepo.PutGrant(tx, f.grant(k, fmt.Sprintf("%064x", i), "")); err != nil {
				return err
			}
		}
		return nil
	})
	g := f.grant(k, fmt.Sprintf("%064x", 1<<40), "")
	for _, bc := range []struct {
		name   string
		change func(r *keyrepo.Repo)
	}{
		{"patch", func(r *keyrepo.Repo) { r.Changed(grantChange(g)) }},
		{"reload", func(r *keyrepo.Repo) { r.Invalidate(region, k.ID, "") }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			peer := f.newRepo(keyrepo.Config{})
			if _, err := peer.Load(f.ctx, region, k.ID); err != nil {
				b.Fatal(err)
			}
			present := false
			for b.Loop() {
				b.StopTimer()
				if present {
					f.deleteGrant(g)
				} else {
					f.putGrants(g)
				}
				present = !present
				b.StartTimer()
				bc.change(peer)
				if _, err := peer.Load(f.ctx, region, k.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
