package keyrepo_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/store"
)

func TestLoadUnsealsEachSpec(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	for _, tc := range []struct {
		spec           string
		sym, asym, mac bool
	}{
		{keys.SymmetricDefault, true, false, false},
		{"HMAC_256", false, false, true},
		{"ECC_NIST_P256", false, true, false},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			rec := f.newKey(acctA, tc.spec)
			v1, err := f.repo.Load(f.ctx, region, rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(v1.Versions) != 1 || v1.Current == nil || v1.Current != v1.Versions[1] {
				t.Fatalf("versions %v, current %v; want version 1 current", v1.Versions, v1.Current)
			}
			c := v1.Current
			if (c.Sym != nil) != tc.sym || (c.Asym != nil) != tc.asym || (c.MAC != nil) != tc.mac {
				t.Fatalf("current version has sym %v, asym %v, mac %v; want %v, %v, %v",
					c.Sym != nil, c.Asym != nil, c.MAC != nil, tc.sym, tc.asym, tc.mac)
			}
			if c.MaterialID == "" || v1.MaterialID() != c.MaterialID {
				t.Fatalf("MaterialID() = %q, current version's %q", v1.MaterialID(), c.MaterialID)
			}
			if v1.ARN != keyARN(acctA, rec.ID) || v1.Rec.KeySpec != tc.spec {
				t.Fatalf("key %s of spec %s, want %s of %s", v1.ARN, v1.Rec.KeySpec, keyARN(acctA, rec.ID), tc.spec)
			}
			if v1.Policy == nil || len(v1.Policy.Statements) != 1 || v1.Policy.Statements[0].Sid != "Enable IAM User Permissions" {
				t.Fatalf("policy %+v, want the stored one parsed", v1.Policy)
			}
		})
	}
}

func TestLoadVersionsAndGrants(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	rec := f.newKey(acctA, keys.SymmetricDefault)
	v2 := f.addVersion(rec, 2)
	rec.CurrentVersion = 2
	f.put(keyrepo.KeyKey(region, rec.ID), &rec)
	g := &keyrepo.GrantRecord{V: 1, ID: "g1", KeyID: rec.ID, Account: acctA, Grantee: "arn:aws:iam::" + acctA + ":user/u",
		Operations: []string{"Decrypt"}, Constraints: &kmsapi.GrantConstraints{EncryptionContextSubset: map[string]string{"a": "b"}}}
	f.put(keyrepo.GrantKey(region, rec.ID, g.ID), g)
	// Another key's grant, whose id extends this one's, is not this key's.
	f.put(keyrepo.GrantKey(region, rec.ID+"x", "g2"), &keyrepo.GrantRecord{V: 1, ID: "g2"})

	k, err := f.repo.Load(f.ctx, region, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Versions) != 2 || k.Versions[1] == nil || k.Current != k.Versions[2] || k.MaterialID() != v2.MaterialID {
		t.Fatalf("versions %v, current material %q; want versions 1 and 2 with 2 current (%q)", k.Versions, k.MaterialID(), v2.MaterialID)
	}
	if k.Versions[1].MaterialID == v2.MaterialID {
		t.Fatal("two versions share a material id")
	}
	// Both versions are usable, and they are different material.
	ct, err := k.Versions[1].Sym.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Versions[1].Sym.Open(ct, nil); err != nil {
		t.Fatalf("version 1 does not decrypt its own ciphertext: %v", err)
	}
	if _, err := k.Versions[2].Sym.Open(ct, nil); err == nil {
		t.Fatal("version 2 decrypts version 1's ciphertext")
	}
	if len(k.Grants) != 1 || k.Grants[0].ID != "g1" || k.Grants[0].Constraints.EncryptionContextSubset["a"] != "b" {
		t.Fatalf("grants %+v, want g1 only", k.Grants)
	}
}

func TestLoadWithoutMaterial(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	for _, tc := range []struct {
		name string
		mod  func(f *fixture, rec keyrepo.KeyRecord)
	}{
		{"EXTERNAL key before import", func(*fixture, keyrepo.KeyRecord) {}},
		{"imported material deleted", func(f *fixture, rec keyrepo.KeyRecord) {
			// The version stays, without its sealed material.
			f.put(keyrepo.VersionKey(region, rec.ID, 1), &keyrepo.VersionRecord{V: 1, Version: 1, MaterialID: "m"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.newKey(acctA, keys.SymmetricDefault, func(r *keyrepo.KeyRecord) {
				r.Origin, r.CurrentVersion, r.State = "EXTERNAL", 0, keyrepo.StatePendingImport
			})
			tc.mod(f, rec)
			k, err := f.repo.Load(f.ctx, region, rec.ID)
			if err != nil {
				t.Fatal(err)
			}
			if k.Current != nil || len(k.Versions) != 0 || k.MaterialID() != "" {
				t.Fatalf("current %v, versions %v, material id %q; want none", k.Current, k.Versions, k.MaterialID())
			}
		})
	}
}

func TestLoadPolicyThatDoesNotParse(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	rec := f.newKey(acctA, keys.SymmetricDefault, func(r *keyrepo.KeyRecord) { r.Policy = `{"Statement":` })
	k, err := f.repo.Load(f.ctx, region, rec.ID)
	if err != nil {
		t.Fatalf("a key whose stored policy does not parse must still load: %v", err)
	}
	if k.Policy != nil {
		t.Fatalf("policy %+v, want nil (allows nothing)", k.Policy)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "stored key policy does not parse") || !strings.Contains(logs, rec.ID) {
		t.Fatalf("log %q does not report the policy of %s", logs, rec.ID)
	}
}

func TestLoadRefusesBadRecords(t *testing.T) {
	for _, tc := range []struct {
		name    string
		spoil   func(f *fixture, rec keyrepo.KeyRecord)
		wantErr string // the error contains this, with <id> for the key id
	}{
		{"key record not JSON", func(f *fixture, rec keyrepo.KeyRecord) {
			f.putRaw(keyrepo.KeyKey(region, rec.ID), []byte("{"))
		}, "record key/us-east-1/<id> is corrupt"},
		{"version record not JSON", func(f *fixture, rec keyrepo.KeyRecord) {
			f.putRaw(keyrepo.VersionKey(region, rec.ID, 1), []byte("nope"))
		}, "corrupt record: invalid character"},
		{"version record of the wrong shape", func(f *fixture, rec keyrepo.KeyRecord) {
			f.putRaw(keyrepo.VersionKey(region, rec.ID, 1), []byte(`{"version":"one"}`))
		}, "corrupt record: cannot unmarshal string"},
		{"grant record not JSON", func(f *fixture, rec keyrepo.KeyRecord) {
			f.putRaw(keyrepo.GrantKey(region, rec.ID, "g"), []byte("["))
		}, "corrupt record: unexpected end of JSON input"},
		{"malformed id in the record", func(f *fixture, rec keyrepo.KeyRecord) {
			stored := rec
			stored.ID = "not-an-id"
			f.put(keyrepo.KeyKey(region, rec.ID), &stored)
		}, "key record with a malformed id not-an-id"},
		{"material sealed under another root key", func(f *fixture, rec keyrepo.KeyRecord) {
			other := newRootKey(f.t)
			vr := &keyrepo.VersionRecord{V: 1, Version: 1, MaterialID: "m",
				Sealed: other.Seal(keyrepo.MaterialAAD(region, rec.ID, 1), keys.GenerateMaterial())}
			f.put(keyrepo.VersionKey(region, rec.ID, 1), vr)
		}, "key material of <id> does not open under the root key"},
		{"material copied from another version", func(f *fixture, rec keyrepo.KeyRecord) {
			vr := f.addVersion(rec, 2)
			vr.Version = 1
			f.put(keyrepo.VersionKey(region, rec.ID, 1), vr)
		}, "key material of <id> does not open under the root key"},
		{"material copied from another key", func(f *fixture, rec keyrepo.KeyRecord) {
			other := f.newKey(acctA, keys.SymmetricDefault)
			var vr keyrepo.VersionRecord
			if err := f.st.View(f.ctx, func(tx store.Tx) error { return store.GetJSON(tx, keyrepo.VersionKey(region, other.ID, 1), &vr) }); err != nil {
				f.t.Fatal(err)
			}
			f.put(keyrepo.VersionKey(region, rec.ID, 1), &vr)
		}, "key material of <id> does not open under the root key"},
		{"material of the wrong size for the spec", func(f *fixture, rec keyrepo.KeyRecord) {
			vr := &keyrepo.VersionRecord{V: 1, Version: 1, MaterialID: "m",
				Sealed: f.repo.SealMaterial(&rec, region, 1, make([]byte, 16))}
			f.put(keyrepo.VersionKey(region, rec.ID, 1), vr)
		}, "key material of <id>: keys: symmetric material must be 32 bytes"},
		// The key's spec, usage and origin are in the clear in its record,
		// and bound into its sealed material: changed in the store, the
		// material no longer loads (an origin made EXTERNAL would open
		// the import path to the service's own key).
		{"origin changed in the record", func(f *fixture, rec keyrepo.KeyRecord) {
			rec.Origin = "EXTERNAL"
			f.put(keyrepo.KeyKey(region, rec.ID), &rec)
		}, "key material of <id> is not bound to the key's spec, usage and origin"},
		{"spec changed in the record", func(f *fixture, rec keyrepo.KeyRecord) {
			rec.KeySpec = "HMAC_256"
			rec.KeyUsage = "GENERATE_VERIFY_MAC"
			f.put(keyrepo.KeyKey(region, rec.ID), &rec)
		}, "key material of <id> is not bound to the key's spec, usage and origin"},
		{"usage changed in the record", func(f *fixture, rec keyrepo.KeyRecord) {
			rec.KeyUsage = "GENERATE_VERIFY_MAC"
			f.put(keyrepo.KeyKey(region, rec.ID), &rec)
		}, "key material of <id> is not bound to the key's spec, usage and origin"},
		{"material sealed without its binding", func(f *fixture, rec keyrepo.KeyRecord) {
			vr := &keyrepo.VersionRecord{V: 1, Version: 1, MaterialID: "m",
				Sealed: f.rk.Seal(keyrepo.MaterialAAD(region, rec.ID, 1), keys.GenerateMaterial())}
			f.put(keyrepo.VersionKey(region, rec.ID, 1), vr)
		}, "key material of <id> is not bound to the key's spec, usage and origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, keyrepo.Config{})
			rec := f.newKey(acctA, keys.SymmetricDefault)
			tc.spoil(f, rec)
			want := strings.ReplaceAll(tc.wantErr, "<id>", rec.ID)
			k, err := f.repo.Load(f.ctx, region, rec.ID)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Load = %v, %v; want an error containing %q", k, err, want)
			}
			if errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a damaged key reads as missing: %v", err)
			}
			// Resolve hands the failure on rather than calling the key unknown.
			_, _, err = f.repo.Resolve(f.ctx, acctA, region, rec.ID, keyrepo.IDOrARN)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Resolve = %v; want an error containing %q", err, want)
			}
		})
	}
}

func TestLookupAliasRefusesCorruptRecord(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	f.putRaw(keyrepo.AliasKey(acctA, region, "alias/x"), []byte("{"))
	if _, err := f.repo.LookupAlias(f.ctx, acctA, region, "alias/x"); err == nil || !strings.Contains(err.Error(), "is corrupt") {
		t.Fatalf("LookupAlias = %v, want a corrupt record error", err)
	}
	_, _, err := f.repo.Resolve(f.ctx, acctA, region, "alias/x", keyrepo.AnyForm)
	if err == nil || !strings.Contains(err.Error(), "is corrupt") {
		t.Fatalf("Resolve = %v, want a corrupt record error", err)
	}
	if _, err := f.repo.LookupAlias(f.ctx, acctA, region, "alias/none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LookupAlias of an unknown alias = %v, want store.ErrNotFound", err)
	}
	if _, err := f.repo.Load(f.ctx, region, keys.NewID().String()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of an unknown key = %v, want store.ErrNotFound", err)
	}
}

func TestUnmarshalRecord(t *testing.T) {
	for _, tc := range []struct {
		in, wantErr string
	}{
		{`{"name":"alias/a","keyId":"k"}`, ""},
		{`{`, "corrupt record: unexpected end of JSON input"},
		{`{"keyId":7}`, "corrupt record: cannot unmarshal number into Go struct field AliasRecord.keyId of type string"},
	} {
		var rec keyrepo.AliasRecord
		err := keyrepo.UnmarshalRecord([]byte(tc.in), &rec)
		switch {
		case tc.wantErr == "" && (err != nil || rec.KeyID != "k" || rec.Name != "alias/a"):
			t.Errorf("UnmarshalRecord(%s) = %v, %+v", tc.in, err, rec)
		case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
			t.Errorf("UnmarshalRecord(%s) = %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestNewVersion(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	id := keys.NewID().String()
	seen := map[string]bool{}
	for _, tc := range []struct {
		spec, rotation string
		v              uint32
	}{
		{keys.SymmetricDefault, "", 1},
		{keys.SymmetricDefault, "ON_DEMAND", 2},
		{"HMAC_512", "", 1},
		{"ECC_NIST_P256", "", 1},
	} {
		vrs, err := f.repo.NewVersion([]string{region}, &keyrepo.KeyRecord{ID: id, KeySpec: tc.spec, KeyUsage: "ENCRYPT_DECRYPT", Origin: "AWS_KMS"}, tc.v, start, tc.rotation)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		vr := vrs[0]
		if vr.V != keyrepo.RecordVersion || vr.Version != tc.v || !vr.Created.Equal(start) || vr.RotationType != tc.rotation {
			t.Errorf("%s: record %+v", tc.spec, vr)
		}
		if len(vr.MaterialID) != 64 || strings.Trim(vr.MaterialID, "0123456789abcdef") != "" || seen[vr.MaterialID] {
			t.Errorf("%s: material id %q is not 32 fresh random bytes in hex", tc.spec, vr.MaterialID)
		}
		seen[vr.MaterialID] = true
		material, err := f.rk.Open(keyrepo.MaterialAAD(region, id, tc.v), vr.Sealed)
		if err != nil || len(material) == 0 {
			t.Errorf("%s: sealed material does not open under the root key with its record name: %v", tc.spec, err)
		}
		if _, err := f.rk.Open(keyrepo.MaterialAAD(region, id, tc.v+1), vr.Sealed); err == nil {
			t.Errorf("%s: sealed material opens under another record's name", tc.spec)
		}
		if bytes.Contains(vr.Sealed, material) {
			t.Errorf("%s: the material is in the sealed value in the clear", tc.spec)
		}
	}
	if _, err := f.repo.NewVersion([]string{region}, &keyrepo.KeyRecord{ID: id, KeySpec: "NO_SUCH_SPEC"}, 1, start, ""); err == nil {
		t.Error("NewVersion of an unknown spec succeeded")
	}
}

func TestRecordNames(t *testing.T) {
	for _, tc := range []struct {
		got  []byte
		want string
	}{
		{keyrepo.KeyKey(region, "k"), "key/us-east-1/k"},
		{keyrepo.VersionPrefix(region, "k"), "keyver/us-east-1/k/"},
		{keyrepo.VersionKey(region, "k", 26), "keyver/us-east-1/k/0000001a"},
		{keyrepo.MaterialAAD(region, "k", 26), "keyver/us-east-1/k/0000001a"},
		{keyrepo.AcctKeyPrefix(acctA, region), "acctkey/111122223333/us-east-1/"},
		{keyrepo.AcctKeyKey(acctA, region, "k"), "acctkey/111122223333/us-east-1/k"},
		{keyrepo.AliasPrefix(acctA, region), "alias/111122223333/us-east-1/"},
		{keyrepo.AliasKey(acctA, region, "alias/a"), "alias/111122223333/us-east-1/alias/a"},
		{keyrepo.KeyAliasPrefix(region, "k"), "keyalias/us-east-1/k/"},
		{keyrepo.KeyAliasKey(region, "k", "alias/a"), "keyalias/us-east-1/k/alias/a"},
		{keyrepo.PendingDeletionKey(region, "k"), "pendingdel/us-east-1/k"},
		{keyrepo.RotationKey(region, "k"), "rotation/us-east-1/k"},
		{keyrepo.ImportExpiryKey(region, "k"), "importexpiry/us-east-1/k"},
		{keyrepo.ImportTokenKey("ab"), "importtoken/ab"},
		{keyrepo.GrantPrefix(region, "k"), "grant/us-east-1/k/"},
		{keyrepo.GrantKey(region, "k", "g"), "grant/us-east-1/k/g"},
		{keyrepo.RetirablePrefix("p", region), "retiregrant/p/us-east-1/"},
		{keyrepo.RetirableKey("p", region, "k", "g"), "retiregrant/p/us-east-1/k/g"},
		{keyrepo.PendingDeletionPrefix, "pendingdel/"},
		{keyrepo.RotationPrefix, "rotation/"},
		{keyrepo.ImportExpiryPrefix, "importexpiry/"},
		{keyrepo.ImportTokenPrefix, "importtoken/"},
	} {
		if string(tc.got) != tc.want {
			t.Errorf("record name %q, want %q", tc.got, tc.want)
		}
	}
	// Versions sort by number, as a prefix scan returns them.
	if bytes.Compare(keyrepo.VersionKey(region, "k", 9), keyrepo.VersionKey(region, "k", 10)) >= 0 {
		t.Error("version 9 does not sort before version 10")
	}
}

func TestStateErr(t *testing.T) {
	const arn = "arn:aws:kms:us-east-1:111122223333:key/k"
	for _, tc := range []struct {
		st      keyrepo.State
		wantErr string
		class   fault.Code
	}{
		{keyrepo.StateEnabled, "", 0},
		{keyrepo.StateDisabled, arn + " is disabled.", fault.Disabled},
		{keyrepo.StatePendingDeletion, arn + " is pending deletion.", fault.InvalidState},
		{keyrepo.StatePendingImport, arn + " is pending import.", fault.InvalidState},
		{keyrepo.State("Unavailable"), arn + " is Unavailable.", fault.InvalidState},
	} {
		err := tc.st.Err(arn)
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s: Err = %v, want nil", tc.st, err)
			}
			continue
		}
		if err == nil || err.Error() != tc.wantErr || !fault.Is(err, tc.class) {
			t.Errorf("%s: Err = %v (class %d), want class %d %q", tc.st, err, fault.CodeOf(err), tc.class, tc.wantErr)
		}
	}
}

func TestStateOfAndExpiry(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	past, now, future := start.Add(-time.Second), start, start.Add(time.Second)
	for _, tc := range []struct {
		name            string
		state           keyrepo.State
		validTo, delete *time.Time
		want            keyrepo.State
		materialExpired bool
		expired         bool
	}{
		{"enabled", keyrepo.StateEnabled, nil, nil, keyrepo.StateEnabled, false, false},
		{"enabled, material valid", keyrepo.StateEnabled, &future, nil, keyrepo.StateEnabled, false, false},
		{"enabled, material expires now", keyrepo.StateEnabled, &now, nil, keyrepo.StatePendingImport, true, false},
		{"enabled, material expired", keyrepo.StateEnabled, &past, nil, keyrepo.StatePendingImport, true, false},
		{"disabled, material expired", keyrepo.StateDisabled, &past, nil, keyrepo.StatePendingImport, true, false},
		{"disabled, material valid", keyrepo.StateDisabled, &future, nil, keyrepo.StateDisabled, false, false},
		{"pending deletion, material expired", keyrepo.StatePendingDeletion, &past, &future, keyrepo.StatePendingDeletion, true, false},
		{"pending deletion, date now", keyrepo.StatePendingDeletion, nil, &now, keyrepo.StatePendingDeletion, false, true},
		{"pending deletion, date passed", keyrepo.StatePendingDeletion, nil, &past, keyrepo.StatePendingDeletion, false, true},
		{"pending deletion without a date", keyrepo.StatePendingDeletion, nil, nil, keyrepo.StatePendingDeletion, false, false},
		{"enabled with a stale deletion date", keyrepo.StateEnabled, nil, &past, keyrepo.StateEnabled, false, false},
		{"pending import", keyrepo.StatePendingImport, &past, nil, keyrepo.StatePendingImport, true, false},
	} {
		rec := &keyrepo.KeyRecord{State: tc.state, ValidTo: tc.validTo, DeletionDate: tc.delete}
		if got := f.repo.StateOf(rec); got != tc.want {
			t.Errorf("%s: StateOf = %s, want %s", tc.name, got, tc.want)
		}
		if got := f.repo.MaterialExpired(rec); got != tc.materialExpired {
			t.Errorf("%s: MaterialExpired = %v, want %v", tc.name, got, tc.materialExpired)
		}
		if got := f.repo.Expired(rec); got != tc.expired {
			t.Errorf("%s: Expired = %v, want %v", tc.name, got, tc.expired)
		}
	}
}
