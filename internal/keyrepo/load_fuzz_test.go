package keyrepo_test

import (
	"encoding/json"
	"testing"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// FuzzLoadRecords reads back arbitrary key, version and grant records, as
// a server does from a data directory that was damaged or tampered with.
// Load never panics and returns no key with an error; the cached and
// uncached reads agree; and key material opens only under the attributes
// it was sealed with: a key record changed to another id, spec, usage or
// origin yields no usable material.
func FuzzLoadRecords(f *testing.F) {
	fx := newFixture(f, keyrepo.Config{})
	rec := fx.newKey(acctA, keys.SymmetricDefault)
	var keyJSON, verJSON []byte
	fx.update(func(tx store.Tx) error {
		var err error
		if keyJSON, err = tx.Get(keyrepo.KeyKey(region, rec.ID)); err != nil {
			return err
		}
		verJSON, err = tx.Get(keyrepo.VersionKey(region, rec.ID, 1))
		keyJSON, verJSON = append([]byte(nil), keyJSON...), append([]byte(nil), verJSON...)
		return err
	})
	grantJSON, _ := json.Marshal(fx.grant(rec, "a1", "batch"))
	f.Add(keyJSON, verJSON, grantJSON)
	f.Add(keyJSON, verJSON, []byte(`{"Operations":null}`))
	f.Add(keyJSON, []byte(`{"Version":1,"Sealed":null}`), grantJSON)
	f.Add([]byte(`{"ID":"`+rec.ID+`","KeySpec":"HMAC_256","CurrentVersion":1,"Region":"`+region+`"}`), verJSON, grantJSON)
	f.Add([]byte(`{}`), []byte(`{}`), []byte(`{}`))
	f.Add([]byte(`null`), []byte(`null`), []byte(`null`))
	f.Fuzz(func(t *testing.T, keyRec, verRec, grantRec []byte) {
		fx.t = t // the fixture's helpers report to the input's test
		fx.update(func(tx store.Tx) error {
			if err := tx.Put(keyrepo.KeyKey(region, rec.ID), keyRec); err != nil {
				return err
			}
			if err := tx.Put(keyrepo.VersionKey(region, rec.ID, 1), verRec); err != nil {
				return err
			}
			return tx.Put(keyrepo.GrantKey(region, rec.ID, "a1"), grantRec)
		})
		repo := fx.newRepo(keyrepo.Config{})
		k, err := repo.Load(fx.ctx, region, rec.ID)
		uk, uerr := repo.Load(keyrepo.WithoutCache(fx.ctx), region, rec.ID)
		if err != nil {
			if k != nil {
				t.Fatalf("a key with the error %v", err)
			}
			// Only the cached read decodes every grant.
			if uerr == nil && keyrepo.UnmarshalRecord(grantRec, new(keyrepo.GrantRecord)) == nil {
				t.Fatalf("the cached read fails with %v, the uncached one does not", err)
			}
			return
		}
		if uerr != nil || uk.Rec.ID != k.Rec.ID {
			t.Fatalf("the uncached read fails with %v, the cached one does not", uerr)
		}
		if k.Current == nil {
			return
		}
		if k.Rec.ID != rec.ID || k.Rec.Region != rec.Region || k.Rec.KeySpec != rec.KeySpec ||
			k.Rec.KeyUsage != rec.KeyUsage || k.Rec.Origin != rec.Origin {
			t.Fatalf("material of %s %s %s %s opened for a record of %s %s %s %s", rec.ID, rec.KeySpec, rec.KeyUsage, rec.Origin,
				k.Rec.ID, k.Rec.KeySpec, k.Rec.KeyUsage, k.Rec.Origin)
		}
		if k.Current.Sym == nil {
			t.Fatalf("symmetric key %s loaded without its symmetric material", k.Rec.ID)
		}
	})
}
