package keyrepo_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// A store written before keys had regions: its records as that layout
// named them, with material sealed for those names.
func writeOldLayout(t *testing.T, f *fixture) (id string, material []byte) {
	t.Helper()
	id = keys.NewID().String()
	material = keys.GenerateMaterial()
	js := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ver := "keyver/" + id + "/00000001"
	old := map[string][]byte{
		"key/" + id: js(map[string]any{"v": 1, "id": id, "account": acctA, "created": start, "description": "old",
			"keySpec": keys.SymmetricDefault, "keyUsage": "ENCRYPT_DECRYPT", "origin": "AWS_KMS", "state": "Enabled",
			"policy":         `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`,
			"currentVersion": 1, "rotationPeriodInDays": 365}),
		ver:                             js(map[string]any{"v": 1, "version": 1, "materialId": "m", "created": start, "sealed": f.rk.Seal([]byte(ver), material)}),
		"acctkey/" + acctA + "/" + id:   nil,
		"alias/" + acctA + "/alias/old": js(map[string]any{"v": 1, "name": "alias/old", "keyId": id, "created": start, "updated": start}),
		"keyalias/" + id + "/alias/old": nil,
		"rotation/" + id:                nil,
		"grant/" + id + "/g1":           js(map[string]any{"v": 1, "id": "g1", "keyId": id, "account": acctA, "grantee": "arn:aws:iam::111122223333:user/u", "retiring": "arn:aws:iam::111122223333:user/r", "operations": []string{"Decrypt"}, "created": start}),
		"retiregrant/arn:aws:iam::111122223333:user/r/" + id + "/g1": nil,
		"importtoken/t1": js(map[string]any{"v": 1, "keyId": id, "account": acctA, "wrappingAlgorithm": "RSAES_OAEP_SHA_256", "wrappingKeySpec": "RSA_2048", "validTo": start, "sealedPrivateKey": f.rk.Seal([]byte("importtoken/t1"), []byte("der"))}),
	}
	if err := f.st.Update(f.ctx, func(tx store.Tx) error {
		for k, v := range old {
			if err := tx.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return id, material
}

func TestMigrateRegions(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	id, material := writeOldLayout(t, f)
	const into = "eu-west-1"
	n, err := keyrepo.MigrateRegions(f.ctx, f.st, f.rk, into)
	if err != nil {
		t.Fatal(err)
	}
	if n != 9 {
		t.Errorf("moved %d records, want 9", n)
	}
	names := map[string][]byte{}
	if err := f.st.View(f.ctx, func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			names[string(k)] = append([]byte(nil), v...)
			return true, nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"key/eu-west-1/" + id, "keyver/eu-west-1/" + id + "/00000001", "acctkey/" + acctA + "/eu-west-1/" + id,
		"alias/" + acctA + "/eu-west-1/alias/old", "keyalias/eu-west-1/" + id + "/alias/old", "rotation/eu-west-1/" + id,
		"grant/eu-west-1/" + id + "/g1", "retiregrant/arn:aws:iam::111122223333:user/r/eu-west-1/" + id + "/g1",
		"importtoken/t1", "meta/key-layout",
	} {
		if _, ok := names[want]; !ok {
			t.Errorf("no record %s after the migration", want)
		}
	}
	if len(names) != 10 {
		t.Errorf("%d records after the migration, want 10 (no old names left): %v", len(names), keysOf(names))
	}
	for _, rec := range []string{"key/eu-west-1/" + id, "grant/eu-west-1/" + id + "/g1", "importtoken/t1"} {
		var m struct {
			Region string `json:"region"`
		}
		if err := json.Unmarshal(names[rec], &m); err != nil || m.Region != into {
			t.Errorf("%s: region %q, %v; want %s", rec, m.Region, err, into)
		}
	}

	// The key works in its region, through its alias too (once its
	// material is bound, as a server's start does next), and its
	// material is the same, sealed for the new name only.
	if n, err := keyrepo.BindMaterials(f.ctx, f.st, f.rk); err != nil || n != 1 {
		t.Fatalf("BindMaterials after the migration = %d, %v; want 1", n, err)
	}
	k, alias, err := f.repo.Resolve(f.ctx, acctA, into, "alias/old", keyrepo.AnyForm)
	if err != nil || k.Rec.ID != id || alias != "alias/old" || k.Rec.Description != "old" {
		t.Fatalf("Resolve after the migration = %+v, %q, %v", k, alias, err)
	}
	if k.ARN != "arn:aws:kms:eu-west-1:"+acctA+":key/"+id {
		t.Errorf("ARN %s", k.ARN)
	}
	var vr keyrepo.VersionRecord
	if err := json.Unmarshal(names["keyver/eu-west-1/"+id+"/00000001"], &vr); err != nil {
		t.Fatal(err)
	}
	got, err := f.rk.Open(keyrepo.MaterialAAD(into, id, 1), vr.Sealed)
	if err != nil || string(got) != string(material) {
		t.Fatalf("material after the migration: %v", err)
	}
	if _, err := f.rk.Open([]byte("keyver/"+id+"/00000001"), vr.Sealed); err == nil {
		t.Error("the resealed material still opens under its old name")
	}
	if _, _, err := f.repo.Resolve(f.ctx, acctA, region, id, keyrepo.IDOrARN); err == nil {
		t.Error("the key exists in another region than it was moved into")
	}

	// Again: nothing to do, nothing changed.
	if n, err := keyrepo.MigrateRegions(f.ctx, f.st, f.rk, "us-west-2"); err != nil || n != 0 {
		t.Fatalf("second MigrateRegions = %d, %v; want 0", n, err)
	}
	if _, _, err := f.repo.Resolve(f.ctx, acctA, into, id, keyrepo.IDOrARN); err != nil {
		t.Fatal(err)
	}
}

// A store whose material does not open under the root key is not
// migrated at all: the one transaction is rolled back.
func TestMigrateRegionsWrongRootKey(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	id, _ := writeOldLayout(t, f)
	_, err := keyrepo.MigrateRegions(f.ctx, f.st, newRootKey(t), region)
	if err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("MigrateRegions with another root key = %v", err)
	}
	if err := f.st.View(f.ctx, func(tx store.Tx) error {
		if _, err := tx.Get([]byte("key/" + id)); err != nil {
			return err
		}
		_, err := tx.Get(keyrepo.LayoutRecord)
		if err == nil {
			t.Error("the store is marked migrated")
		}
		return nil
	}); err != nil {
		t.Fatalf("the old records are gone: %v", err)
	}
}

// A new store is only marked.
func TestMigrateRegionsNewStore(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	if n, err := keyrepo.MigrateRegions(f.ctx, f.st, f.rk, region); err != nil || n != 0 {
		t.Fatalf("MigrateRegions of an empty store = %d, %v", n, err)
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
