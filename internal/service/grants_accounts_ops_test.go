package service_test

import (
	"testing"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"
)

// A grant that another account creates on a key names the key by its own
// ARN, the ARN of the account that owns the key; IssuingAccount stays the
// account that made the grant.
func TestCrossAccountGrantNamesTheKeyOwnersARN(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{Policy: strp(`{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:CreateGrant","Resource":"*"}]}`)})
	arn := keyARN(acctA, id)
	rootB := accountRoot(acctB)
	g, err := f.svc.CreateGrant(f.ctx, rootB, &kmsapi.CreateGrantInput{KeyID: arn,
		GranteePrincipal: "arn:aws:iam::444455556666:user/x", RetiringPrincipal: "arn:aws:iam::444455556666:user/r", Operations: []string{"Encrypt"}})
	if err != nil {
		t.Fatal(err)
	}
	list, err := f.svc.ListGrants(f.ctx, rootA, &kmsapi.ListGrantsInput{KeyID: id})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Grants) != 1 || list.Grants[0].KeyID != arn || list.Grants[0].IssuingAccount != "arn:aws:iam::444455556666:root" {
		t.Errorf("ListGrants = %+v, want KeyId %s issued by account B", list.Grants, arn)
	}
	retirable, err := f.svc.ListRetirableGrants(f.ctx, rootB, &kmsapi.ListRetirableGrantsInput{RetiringPrincipal: "arn:aws:iam::444455556666:user/r"})
	if err != nil {
		t.Fatal(err)
	}
	if len(retirable.Grants) != 1 || retirable.Grants[0].KeyID != arn {
		t.Errorf("ListRetirableGrants = %+v, want KeyId %s", retirable.Grants, arn)
	}
	nobody := iamUser(t, acctA, "nobody")
	_, err = f.svc.RetireGrant(f.ctx, nobody, &kmsapi.RetireGrantInput{GrantToken: g.GrantToken})
	wantErr(t, err, fault.AccessDenied, deniedMsg(nobody, "kms:RetireGrant", arn,
		"because the caller is neither the retiring principal nor a grantee allowed to retire this grant"))
}

// A key that has no key material never becomes Enabled: cancelling the
// deletion of a key in PendingImport, or of one whose material was deleted
// while it waited, leaves it PendingImport, and EnableKey refuses it.
func TestCancelledDeletionOfAKeyWithoutMaterial(t *testing.T) {
	for _, name := range []string{"never imported", "material deleted while pending deletion"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			id := f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL"})
			arn := keyARN(acctA, id)
			if name != "never imported" {
				material := make([]byte, 32)
				if _, err := f.importMaterial(id, material, kmsapi.ImportKeyMaterialInput{ExpirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE"}); err != nil {
					t.Fatal(err)
				}
			}
			f.must2(f.svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: id}))
			if name != "never imported" {
				f.must2(f.svc.DeleteImportedKeyMaterial(f.ctx, rootA, &kmsapi.DeleteImportedKeyMaterialInput{KeyID: id}))
			}
			f.must2(f.svc.CancelKeyDeletion(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id}))
			if m := f.describe(id); m.KeyState != "PendingImport" || m.Enabled {
				t.Errorf("after CancelKeyDeletion: KeyState %s, Enabled %v; want PendingImport", m.KeyState, m.Enabled)
			}
			_, err := f.svc.EnableKey(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
			wantErr(t, err, fault.InvalidState, arn+" is pending import.")
			if m := f.describe(id); m.KeyState == "Enabled" || m.Enabled {
				t.Fatalf("a key without key material is %s, Enabled %v", m.KeyState, m.Enabled)
			}
		})
	}
}

// Grants whose retiring principal is in the caller's account are listed
// whichever account's key they are on (AWS: "This can include grants on
// KMS keys owned by other AWS accounts").
func TestRetirableGrantsOnAnotherAccountsKey(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	retirer := "arn:aws:iam::444455556666:user/r"
	g := f.grant(rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: retirer, RetiringPrincipal: retirer, Operations: []string{"Encrypt"}})
	out, err := f.svc.ListRetirableGrants(f.ctx, accountRoot(acctB), &kmsapi.ListRetirableGrantsInput{RetiringPrincipal: retirer})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Grants) != 1 || out.Grants[0].GrantID != g.GrantID {
		t.Fatalf("account B's retiring principal lists %+v, want grant %s on account A's key", out.Grants, g.GrantID)
	}
	// A third account sees none of it.
	out, err = f.svc.ListRetirableGrants(f.ctx, accountRoot("777788889999"), &kmsapi.ListRetirableGrantsInput{RetiringPrincipal: retirer})
	if err != nil || len(out.Grants) != 0 {
		t.Fatalf("a third account lists %+v, %v", out, err)
	}
}
