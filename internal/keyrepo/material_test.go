package keyrepo_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// Material sealed before it was bound to its key's attributes is bound by
// BindMaterials, once, to the attributes its key has then: the key loads
// with the same material, a second run does nothing, and a change of the
// key's origin in the store afterwards keeps it from loading.
func TestBindMaterials(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	rec := f.newKey(acctA, keys.SymmetricDefault, func(r *keyrepo.KeyRecord) { r.CurrentVersion = 0 })
	rec.CurrentVersion = 2
	f.put(keyrepo.KeyKey(region, rec.ID), &rec)
	old := [][]byte{keys.GenerateMaterial(), keys.GenerateMaterial()}
	for i, m := range old {
		v := uint32(i + 1)
		f.put(keyrepo.VersionKey(region, rec.ID, v), &keyrepo.VersionRecord{V: 1, Version: v, MaterialID: "m",
			Sealed: f.rk.Seal(keyrepo.MaterialAAD(region, rec.ID, v), m)})
	}
	// A version whose imported material was deleted has nothing to bind.
	f.put(keyrepo.VersionKey(region, rec.ID, 3), &keyrepo.VersionRecord{V: 1, Version: 3, MaterialID: "gone"})
	if _, err := f.repo.Load(f.ctx, region, rec.ID); err == nil || !strings.Contains(err.Error(), "not bound") {
		t.Fatalf("Load of unbound material = %v, want it refused", err)
	}

	n, err := keyrepo.BindMaterials(f.ctx, f.st, f.rk)
	if err != nil || n != 2 {
		t.Fatalf("BindMaterials = %d, %v; want 2", n, err)
	}
	k, err := f.repo.Load(f.ctx, region, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range old {
		v := uint32(i + 1)
		want, err := keys.NewSymmetric(mustID(t, rec.ID), v, m)
		if err != nil {
			t.Fatal(err)
		}
		blob, err := want.Seal([]byte("same material"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := k.Versions[v].Sym.Open(blob, nil); err != nil || !bytes.Equal(pt, []byte("same material")) {
			t.Errorf("version %d after binding does not open what its old material sealed: %v", v, err)
		}
	}
	if n, err := keyrepo.BindMaterials(f.ctx, f.st, f.rk); err != nil || n != 0 {
		t.Fatalf("second BindMaterials = %d, %v; want 0", n, err)
	}

	rec.Origin = "EXTERNAL"
	f.put(keyrepo.KeyKey(region, rec.ID), &rec)
	f.repo.Invalidate(region, rec.ID, "")
	if _, err := f.repo.Load(f.ctx, region, rec.ID); err == nil || !strings.Contains(err.Error(), "not bound") {
		t.Fatalf("Load after the origin changed = %v, want it refused", err)
	}
	// The mark is what a later start sees; the store says it is bound.
	if err := f.st.View(f.ctx, func(tx store.Tx) error {
		v, err := tx.Get(keyrepo.MaterialRecord)
		if err == nil && string(v) != "v1" {
			t.Errorf("mark %q", v)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func mustID(t *testing.T, s string) keys.ID {
	t.Helper()
	id, ok := keys.ParseID(s)
	if !ok {
		t.Fatalf("key id %q", s)
	}
	return id
}
