package keyrepo_test

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/service"
)

// The records the service writes are the ones the repository reads: keys
// made, aliased, granted, rotated and scheduled for deletion through the
// service's operations read back through another Repo on the same store.
func TestRecordsWrittenByTheService(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	svc, err := service.New(service.Config{Store: f.st, RootKey: f.rk, Region: region, Now: f.clock.Now,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:iam::" + acctA + ":root"
	caller := service.Caller{AccountID: acctA, ARN: arn, Root: true, Principal: policy.Principal{ARN: arn, Account: acctA, UserID: acctA}}

	created := map[string]string{} // key id by spec
	for _, spec := range []string{keys.SymmetricDefault, "HMAC_256", "ECC_NIST_P256"} {
		out, err := svc.CreateKey(f.ctx, caller, &kmsapi.CreateKeyInput{KeySpec: spec, KeyUsage: keys.Usages(spec)[0]})
		if err != nil {
			t.Fatalf("CreateKey %s: %v", spec, err)
		}
		created[spec] = out.KeyMetadata.KeyID
	}
	sym := created[keys.SymmetricDefault]
	if _, err := svc.CreateAlias(f.ctx, caller, &kmsapi.AliasInput{AliasName: "alias/app", TargetKeyID: sym}); err != nil {
		t.Fatal(err)
	}
	grantee := "arn:aws:iam::" + acctA + ":user/alice"
	g, err := svc.CreateGrant(f.ctx, caller, &kmsapi.CreateGrantInput{KeyID: sym, GranteePrincipal: grantee, Operations: []string{"Decrypt"}})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := svc.Encrypt(f.ctx, caller, &kmsapi.EncryptInput{KeyID: "alias/app", Plaintext: []byte("secret"),
		EncryptionContext: map[string]string{"purpose": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RotateKeyOnDemand(f.ctx, caller, &kmsapi.KeyIDInput{KeyID: sym}); err != nil {
		t.Fatal(err)
	}

	for spec, id := range created {
		k, alias, err := f.repo.Resolve(f.ctx, acctA, region, keyARN(acctA, id), keyrepo.AnyForm)
		if err != nil || alias != "" {
			t.Fatalf("%s: Resolve = %v, %q", spec, err, alias)
		}
		if k.Rec.KeySpec != spec || k.Rec.State != keyrepo.StateEnabled || k.Current == nil || k.Policy == nil {
			t.Fatalf("%s: read key %+v", spec, k.Rec)
		}
	}
	k, alias, err := f.repo.Resolve(f.ctx, acctA, region, "alias/app", keyrepo.AnyForm)
	if err != nil || alias != "alias/app" || k.Rec.ID != sym {
		t.Fatalf("Resolve(alias/app) = %v, %q, %v; want %s", k, alias, err, sym)
	}
	if len(k.Versions) != 2 || k.Rec.CurrentVersion != 2 || k.Current != k.Versions[2] {
		t.Fatalf("after an on-demand rotation: versions %v, current %d", k.Versions, k.Rec.CurrentVersion)
	}
	if len(k.Grants) != 1 || k.Grants[0].ID != g.GrantID || k.Grants[0].Grantee != grantee {
		t.Fatalf("grants %+v, want %s to %s", k.Grants, g.GrantID, grantee)
	}
	// The service's ciphertext, made under version 1, opens with the
	// material the repository unsealed, and only with that version's.
	pt, err := k.Versions[1].Sym.Open(enc.CiphertextBlob, map[string]string{"purpose": "test"})
	if err != nil || !bytes.Equal(pt, []byte("secret")) {
		t.Fatalf("version 1 opens the service's ciphertext: %q, %v", pt, err)
	}
	if _, err := k.Current.Sym.Open(enc.CiphertextBlob, map[string]string{"purpose": "test"}); err == nil {
		t.Fatal("the rotated version opens a ciphertext of the first")
	}

	// Scheduled for deletion: pending until the date, then gone.
	window := int32(7)
	if _, err := svc.ScheduleKeyDeletion(f.ctx, caller, &kmsapi.ScheduleKeyDeletionInput{KeyID: sym, PendingWindowInDays: &window}); err != nil {
		t.Fatal(err)
	}
	f.repo.Changed([][]byte{keyrepo.KeyKey(region, sym)})
	k, _, err = f.repo.Resolve(f.ctx, acctA, region, sym, keyrepo.IDOrARN)
	if err != nil || f.repo.StateOf(&k.Rec) != keyrepo.StatePendingDeletion || k.Rec.DeletionDate == nil {
		t.Fatalf("after ScheduleKeyDeletion: %v, %+v", err, k)
	}
	f.clock.Set(*k.Rec.DeletionDate)
	if f.clock.Now().Sub(start) < 7*24*time.Hour {
		t.Fatalf("deletion date %v is inside the window", k.Rec.DeletionDate)
	}
	if _, _, err := f.repo.Resolve(f.ctx, acctA, region, sym, keyrepo.IDOrARN); err == nil || err.Error() != "Key '"+keyARN(acctA, sym)+"' does not exist" {
		t.Fatalf("after the deletion date: %v", err)
	}
	if _, _, err := f.repo.Resolve(f.ctx, acctA, region, "alias/app", keyrepo.AnyForm); err == nil || err.Error() != "Alias "+keyrepo.AliasARN(region, acctA, "alias/app")+" is not found." {
		t.Fatalf("its alias after the deletion date: %v", err)
	}
}
