package service_test

import (
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/service"
)

var grantIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (f *fixture) grant(c service.Caller, in kmsapi.CreateGrantInput) *kmsapi.CreateGrantOutput {
	f.t.Helper()
	out, err := f.svc.CreateGrant(f.ctx, c, &in)
	if err != nil {
		f.t.Fatalf("CreateGrant: %v", err)
	}
	return out
}

func (f *fixture) grantIDs(keyID string) []string {
	f.t.Helper()
	out, err := f.svc.ListGrants(f.ctx, rootA, &kmsapi.ListGrantsInput{KeyID: keyID})
	if err != nil {
		f.t.Fatal(err)
	}
	var ids []string
	for _, g := range out.Grants {
		ids = append(ids, g.GrantID)
	}
	return ids
}

// A grant lets its grantee perform its operations, under its constraints,
// and nothing else; retiring it takes that away.
func TestGrantAllowsItsGranteeOnly(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	arn := keyARN(acctA, id)
	grantee := iamUser(t, acctA, "grantee")
	stranger := iamUser(t, acctA, "stranger")
	encrypt := func(c service.Caller, ec map[string]string, tokens ...string) error {
		_, err := f.svc.Encrypt(f.ctx, c, &kmsapi.EncryptInput{KeyID: arn, Plaintext: []byte("p"), EncryptionContext: ec, GrantTokens: tokens})
		return err
	}
	noIdentity := deniedMsg(grantee, "kms:Encrypt", arn, noIdentityPolicy("kms:Encrypt"))
	wantErr(t, encrypt(grantee, map[string]string{"app": "a"}), fault.AccessDenied, noIdentity)

	g := f.grant(rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: grantee.ARN, RetiringPrincipal: "arn:aws:iam::111122223333:user/retirer",
		Operations: []string{"Encrypt", "Decrypt", "Encrypt"}, Name: "app-grant",
		Constraints: &kmsapi.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "a"}}})
	if !grantIDRE.MatchString(g.GrantID) || g.GrantToken == "" {
		t.Fatalf("CreateGrant = %+v", g)
	}
	for _, tc := range []struct {
		name   string
		caller service.Caller
		ec     map[string]string
		allow  bool
	}{
		{"grantee, the constrained pair and more", grantee, map[string]string{"APP": "a", "x": "y"}, true},
		{"grantee, another value", grantee, map[string]string{"app": "A"}, false},
		{"grantee, no context", grantee, nil, false},
		{"someone else", stranger, map[string]string{"app": "a"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := encrypt(tc.caller, tc.ec, g.GrantToken)
			if tc.allow && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.allow {
				wantErr(t, err, fault.AccessDenied, deniedMsg(tc.caller, "kms:Encrypt", arn, noIdentityPolicy("kms:Encrypt")))
			}
		})
	}
	_, err := f.svc.GenerateDataKey(f.ctx, grantee, &kmsapi.GenerateDataKeyInput{KeyID: id, KeySpec: "AES_256", EncryptionContext: map[string]string{"app": "a"}})
	wantErr(t, err, fault.AccessDenied, deniedMsg(grantee, "kms:GenerateDataKey", arn, noIdentityPolicy("kms:GenerateDataKey")))

	list, err := f.svc.ListGrants(f.ctx, rootA, &kmsapi.ListGrantsInput{KeyID: id})
	if err != nil {
		t.Fatal(err)
	}
	want := kmsapi.GrantListEntry{KeyID: arn, GrantID: g.GrantID, Name: "app-grant", CreationDate: kmsapi.Time(f.now), GranteePrincipal: grantee.ARN,
		RetiringPrincipal: "arn:aws:iam::111122223333:user/retirer", IssuingAccount: "arn:aws:iam::111122223333:root",
		Operations: []string{"Decrypt", "Encrypt"}, Constraints: &kmsapi.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "a"}}}
	if len(list.Grants) != 1 || !reflect.DeepEqual(list.Grants[0], want) || list.Truncated {
		t.Fatalf("ListGrants = %+v\nwant %+v", list, want)
	}

	// The grantee may not retire a grant that does not list RetireGrant.
	_, err = f.svc.RetireGrant(f.ctx, grantee, &kmsapi.RetireGrantInput{GrantToken: g.GrantToken})
	wantErr(t, err, fault.AccessDenied, deniedMsg(grantee, "kms:RetireGrant", arn,
		"because the caller is neither the retiring principal nor a grantee allowed to retire this grant"))
	retirer := iamUser(t, acctA, "retirer")
	if _, err := f.svc.RetireGrant(f.ctx, retirer, &kmsapi.RetireGrantInput{GrantToken: g.GrantToken, DryRun: true}); err == nil {
		t.Fatal("RetireGrant with DryRun succeeded")
	} else {
		wantErr(t, err, fault.DryRun, dryRunMsg)
	}
	if len(f.grantIDs(id)) != 1 {
		t.Fatal("a dry run retired the grant")
	}
	f.must2(f.svc.RetireGrant(f.ctx, retirer, &kmsapi.RetireGrantInput{GrantToken: g.GrantToken}))
	if ids := f.grantIDs(id); len(ids) != 0 {
		t.Fatalf("grants left after RetireGrant: %v", ids)
	}
	wantErr(t, encrypt(grantee, map[string]string{"app": "a"}), fault.AccessDenied, noIdentity)
	_, err = f.svc.RetireGrant(f.ctx, retirer, &kmsapi.RetireGrantInput{GrantToken: g.GrantToken})
	wantErr(t, err, fault.NotFound, "Grant ID "+g.GrantID+" not found")
}

func TestCreateGrantRefusals(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	hmac := f.createKey(kmsapi.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	grantee := "arn:aws:iam::111122223333:user/g"
	user := iamUser(t, acctA, "u")
	for _, tc := range []struct {
		name   string
		caller service.Caller
		in     kmsapi.CreateGrantInput
		code   fault.Code
		msg    string
	}{
		{"operation the key cannot do", rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: grantee, Operations: []string{"Sign"}}, fault.Validation,
			"Grant operation Sign is not valid for a KMS key with key spec SYMMETRIC_DEFAULT."},
		{"encryption on an HMAC key", rootA, kmsapi.CreateGrantInput{KeyID: hmac, GranteePrincipal: grantee, Operations: []string{"GenerateMac", "Encrypt"}}, fault.Validation,
			"Grant operation Encrypt is not valid for a KMS key with key spec HMAC_256."},
		{"no grantee", rootA, kmsapi.CreateGrantInput{KeyID: id, Operations: []string{"Encrypt"}}, fault.Validation, "You must specify a GranteePrincipal."},
		{"no operations", rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: grantee}, fault.Validation,
			"1 validation error detected: Value null at 'operations' failed to satisfy constraint: Member must not be null"},
		{"empty operations", rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: grantee, Operations: []string{}}, fault.Validation,
			"1 validation error detected: Value '[]' at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"operation not in the enum", rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: grantee, Operations: []string{"Encrypt", "ScheduleKeyDeletion"}}, fault.Validation,
			"1 validation error detected: Value 'ScheduleKeyDeletion' at 'operations.2.member' failed to satisfy constraint: Member must satisfy enum value set: [Decrypt, Encrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext, ReEncryptFrom, ReEncryptTo, Sign, Verify, GetPublicKey, CreateGrant, RetireGrant, DescribeKey, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext, GenerateMac, VerifyMac, DeriveSharedSecret, Encapsulate, Decapsulate]"},
		{"bad grantee", rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: "user name", Operations: []string{"Encrypt"}}, fault.Validation,
			"1 validation error detected: Value 'user name' at 'granteePrincipal' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[\\w+=,.@:/-]+$"},
		{"service principal", rootA, kmsapi.CreateGrantInput{KeyID: id, GranteeServicePrincipal: "s3.amazonaws.com", Operations: []string{"Encrypt"}}, fault.UnsupportedOperation,
			"Grants to AWS service principals are not supported by this server."},
		{"bad grant token", rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: grantee, Operations: []string{"Encrypt"}, GrantTokens: []string{"AAAA"}}, fault.InvalidGrantToken,
			"The grant token is not valid."},
		{"alias as key", rootA, kmsapi.CreateGrantInput{KeyID: "alias/x", GranteePrincipal: grantee, Operations: []string{"Encrypt"}}, fault.NotFound, "Invalid keyId 'alias/x'"},
		{"not allowed", user, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: grantee, Operations: []string{"Encrypt"}}, fault.AccessDenied,
			deniedMsg(user, "kms:CreateGrant", keyARN(acctA, id), noIdentityPolicy("kms:CreateGrant"))},
		{"dry run", rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: grantee, Operations: []string{"Encrypt"}, DryRun: true}, fault.DryRun, dryRunMsg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot()
			_, err := f.svc.CreateGrant(f.ctx, tc.caller, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
			if !sameRecords(before, f.snapshot()) {
				t.Fatal("a refused CreateGrant changed the store")
			}
		})
	}
}

// Creating the same named grant again returns the same grant; any
// difference makes a new one.
func TestNamedGrantIsIdempotent(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	in := kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: "arn:aws:iam::111122223333:user/g", Operations: []string{"Decrypt", "Encrypt"}, Name: "n"}
	first := f.grant(rootA, in)
	second := f.grant(rootA, in)
	if first.GrantID != second.GrantID {
		t.Fatalf("the same named grant twice gave %s and %s", first.GrantID, second.GrantID)
	}
	in.Operations = []string{"Encrypt"}
	third := f.grant(rootA, in)
	in.Name = ""
	fourth := f.grant(rootA, in)
	fifth := f.grant(rootA, in)
	ids := f.grantIDs(id)
	if third.GrantID == first.GrantID || fourth.GrantID == fifth.GrantID || len(ids) != 4 {
		t.Fatalf("grants %v; ids %s %s %s %s", ids, first.GrantID, third.GrantID, fourth.GrantID, fifth.GrantID)
	}
	// The same name on another key is another grant.
	other := f.createKey(kmsapi.CreateKeyInput{})
	in.KeyID, in.Name = other, "n"
	if g := f.grant(rootA, in); g.GrantID == first.GrantID {
		t.Fatal("a named grant on another key reused the first key's grant")
	}
}

// A grantee holding CreateGrant may hand on only what it holds.
func TestGrantedCreateGrant(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	arn := keyARN(acctA, id)
	delegate := iamUser(t, acctA, "delegate")
	f.grant(rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: delegate.ARN, Operations: []string{"CreateGrant", "Decrypt", "Encrypt"},
		Constraints: &kmsapi.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "t1"}}})
	for _, tc := range []struct {
		name  string
		in    kmsapi.CreateGrantInput
		allow bool
	}{
		{"subset, same constraint", kmsapi.CreateGrantInput{Operations: []string{"Decrypt"},
			Constraints: &kmsapi.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "t1"}}}, true},
		{"subset, stricter constraint", kmsapi.CreateGrantInput{Operations: []string{"Encrypt"},
			Constraints: &kmsapi.GrantConstraints{EncryptionContextEquals: map[string]string{"Tenant": "t1", "x": "y"}}}, true},
		{"dropping the constraint", kmsapi.CreateGrantInput{Operations: []string{"Decrypt"}}, false},
		{"another constraint value", kmsapi.CreateGrantInput{Operations: []string{"Decrypt"},
			Constraints: &kmsapi.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "t2"}}}, false},
		{"an operation beyond", kmsapi.CreateGrantInput{Operations: []string{"GenerateDataKey"},
			Constraints: &kmsapi.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "t1"}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.KeyID, tc.in.GranteePrincipal = arn, "arn:aws:iam::111122223333:user/child"
			_, err := f.svc.CreateGrant(f.ctx, delegate, &tc.in)
			if tc.allow && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.allow {
				wantErr(t, err, fault.AccessDenied, deniedMsg(delegate, "kms:CreateGrant", arn, noIdentityPolicy("kms:CreateGrant")))
			}
		})
	}
}

func TestRetireAndRevokeGrant(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	arn := keyARN(acctA, id)
	grantee := iamUser(t, acctA, "grantee")
	mk := func(ops ...string) *kmsapi.CreateGrantOutput {
		return f.grant(rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: grantee.ARN, Operations: ops})
	}
	// A grantee whose grant lists RetireGrant may retire it by key and id.
	g := mk("Encrypt", "RetireGrant")
	f.must2(f.svc.RetireGrant(f.ctx, grantee, &kmsapi.RetireGrantInput{KeyID: arn, GrantID: g.GrantID}))
	// The issuing account's root may retire any of its grants.
	g = mk("Encrypt")
	f.must2(f.svc.RetireGrant(f.ctx, rootA, &kmsapi.RetireGrantInput{KeyID: arn, GrantID: g.GrantID}))
	// Another account's root may not.
	g = mk("Encrypt")
	_, err := f.svc.RetireGrant(f.ctx, accountRoot(acctB), &kmsapi.RetireGrantInput{GrantToken: g.GrantToken})
	wantErr(t, err, fault.AccessDenied, deniedMsg(accountRoot(acctB), "kms:RetireGrant", arn,
		"because the caller is neither the retiring principal nor a grantee allowed to retire this grant"))
	for _, tc := range []struct {
		name string
		in   kmsapi.RetireGrantInput
		code fault.Code
		msg  string
	}{
		{"nothing named", kmsapi.RetireGrantInput{}, fault.Validation, "Either GrantToken, or both KeyId and GrantId, must be specified."},
		{"grant id without key", kmsapi.RetireGrantInput{GrantID: g.GrantID}, fault.Validation, "Either GrantToken, or both KeyId and GrantId, must be specified."},
		{"malformed grant id", kmsapi.RetireGrantInput{KeyID: arn, GrantID: "1234"}, fault.InvalidGrantID, "Invalid grant ID 1234"},
		{"malformed token", kmsapi.RetireGrantInput{GrantToken: "bm90IGEgdG9rZW4"}, fault.InvalidGrantToken, "The grant token is not valid."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.RetireGrant(f.ctx, rootA, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}

	// RevokeGrant needs kms:RevokeGrant on the key, which the grantee lacks.
	_, err = f.svc.RevokeGrant(f.ctx, grantee, &kmsapi.RevokeGrantInput{KeyID: id, GrantID: g.GrantID})
	wantErr(t, err, fault.AccessDenied, deniedMsg(grantee, "kms:RevokeGrant", arn, noIdentityPolicy("kms:RevokeGrant")))
	_, err = f.svc.RevokeGrant(f.ctx, rootA, &kmsapi.RevokeGrantInput{KeyID: id, GrantID: g.GrantID, DryRun: true})
	wantErr(t, err, fault.DryRun, dryRunMsg)
	if ids := f.grantIDs(id); !slices.Equal(ids, []string{g.GrantID}) {
		t.Fatalf("grants after refused revocations: %v", ids)
	}
	f.must2(f.svc.RevokeGrant(f.ctx, rootA, &kmsapi.RevokeGrantInput{KeyID: id, GrantID: g.GrantID}))
	if ids := f.grantIDs(id); len(ids) != 0 {
		t.Fatalf("grants after RevokeGrant: %v", ids)
	}
	_, err = f.svc.RevokeGrant(f.ctx, rootA, &kmsapi.RevokeGrantInput{KeyID: id, GrantID: g.GrantID})
	wantErr(t, err, fault.NotFound, "Grant ID "+g.GrantID+" not found")
	_, err = f.svc.RevokeGrant(f.ctx, rootA, &kmsapi.RevokeGrantInput{KeyID: id, GrantID: "zz"})
	wantErr(t, err, fault.InvalidGrantID, "Invalid grant ID zz")
	_, err = f.svc.RevokeGrant(f.ctx, rootA, &kmsapi.RevokeGrantInput{KeyID: id})
	wantErr(t, err, fault.Validation, "1 validation error detected: Value null at 'grantId' failed to satisfy constraint: Member must not be null")
}

func TestListGrantsFiltersAndPages(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	var all []string
	for _, who := range []string{"a", "b", "a", "c", "a"} {
		g := f.grant(rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: "arn:aws:iam::111122223333:user/" + who, Operations: []string{"Encrypt"}})
		all = append(all, g.GrantID)
	}
	slices.Sort(all)
	var paged []string
	var marker *string
	for {
		out, err := f.svc.ListGrants(f.ctx, rootA, &kmsapi.ListGrantsInput{KeyID: id, Limit: int32p(2), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.Grants {
			paged = append(paged, g.GrantID)
		}
		if !out.Truncated {
			break
		}
		marker = strp(out.NextMarker)
	}
	if !slices.Equal(paged, all) {
		t.Fatalf("paged %v, want %v", paged, all)
	}
	out, err := f.svc.ListGrants(f.ctx, rootA, &kmsapi.ListGrantsInput{KeyID: id, GranteePrincipal: "arn:aws:iam::111122223333:user/a", Limit: int32p(2)})
	if err != nil || len(out.Grants) != 2 || !out.Truncated {
		t.Fatalf("first page of grantee a's grants: %+v, %v", out, err)
	}
	out, err = f.svc.ListGrants(f.ctx, rootA, &kmsapi.ListGrantsInput{KeyID: id, GranteePrincipal: "arn:aws:iam::111122223333:user/a", Marker: strp(out.NextMarker)})
	if err != nil || len(out.Grants) != 1 || out.Truncated || out.Grants[0].GranteePrincipal != "arn:aws:iam::111122223333:user/a" {
		t.Fatalf("second page of grantee a's grants: %+v, %v", out, err)
	}
	out, err = f.svc.ListGrants(f.ctx, rootA, &kmsapi.ListGrantsInput{KeyID: id, GrantID: all[3]})
	if err != nil || len(out.Grants) != 1 || out.Grants[0].GrantID != all[3] {
		t.Fatalf("ListGrants by id: %+v, %v", out, err)
	}
	_, err = f.svc.ListGrants(f.ctx, rootA, &kmsapi.ListGrantsInput{KeyID: id, GrantID: "nope"})
	wantErr(t, err, fault.InvalidGrantID, "Invalid grant ID nope")
	_, err = f.svc.ListGrants(f.ctx, rootA, &kmsapi.ListGrantsInput{KeyID: id, Marker: strp("bogus")})
	wantErr(t, err, fault.InvalidMarker, "The marker is not valid. Pass the NextMarker of a previous response unchanged.")
	_, err = f.svc.ListGrants(f.ctx, rootA, &kmsapi.ListGrantsInput{KeyID: id, Limit: int32p(1001)})
	wantErr(t, err, fault.Validation, "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000")
	user := iamUser(t, acctA, "u")
	_, err = f.svc.ListGrants(f.ctx, user, &kmsapi.ListGrantsInput{KeyID: id})
	wantErr(t, err, fault.AccessDenied, deniedMsg(user, "kms:ListGrants", keyARN(acctA, id), noIdentityPolicy("kms:ListGrants")))
}

func TestListRetirableGrants(t *testing.T) {
	f := newFixture(t)
	k1, k2 := f.createKey(kmsapi.CreateKeyInput{}), f.createKey(kmsapi.CreateKeyInput{})
	retirer := "arn:aws:iam::111122223333:user/retirer"
	want := map[string]bool{}
	for _, k := range []string{k1, k2, k1} {
		g := f.grant(rootA, kmsapi.CreateGrantInput{KeyID: k, GranteePrincipal: "arn:aws:iam::111122223333:user/g", RetiringPrincipal: retirer, Operations: []string{"Encrypt"}})
		want[g.GrantID] = true
	}
	f.grant(rootA, kmsapi.CreateGrantInput{KeyID: k1, GranteePrincipal: "arn:aws:iam::111122223333:user/g", RetiringPrincipal: "arn:aws:iam::111122223333:user/other", Operations: []string{"Encrypt"}})
	got := map[string]bool{}
	var marker *string
	for {
		out, err := f.svc.ListRetirableGrants(f.ctx, rootA, &kmsapi.ListRetirableGrantsInput{RetiringPrincipal: retirer, Limit: int32p(2), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.Grants {
			if g.RetiringPrincipal != retirer {
				t.Fatalf("listed %+v", g)
			}
			got[g.GrantID] = true
		}
		if !out.Truncated {
			break
		}
		marker = strp(out.NextMarker)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("retirable grants %v, want %v", got, want)
	}
	// Another account sees none of account A's grants.
	out, err := f.svc.ListRetirableGrants(f.ctx, accountRoot(acctB), &kmsapi.ListRetirableGrantsInput{RetiringPrincipal: retirer})
	if err != nil || len(out.Grants) != 0 {
		t.Fatalf("account B listed %+v, %v", out, err)
	}
	out, err = f.svc.ListRetirableGrants(f.ctx, rootA, &kmsapi.ListRetirableGrantsInput{RetiringServicePrincipal: "s3.amazonaws.com"})
	if err != nil || out.Grants == nil || len(out.Grants) != 0 {
		t.Fatalf("by service principal: %+v, %v", out, err)
	}
	_, err = f.svc.ListRetirableGrants(f.ctx, rootA, &kmsapi.ListRetirableGrantsInput{})
	wantErr(t, err, fault.Validation, "1 validation error detected: Value null at 'retiringPrincipal' failed to satisfy constraint: Member must not be null")
	user := iamUser(t, acctA, "u")
	_, err = f.svc.ListRetirableGrants(f.ctx, user, &kmsapi.ListRetirableGrantsInput{RetiringPrincipal: retirer})
	wantErr(t, err, fault.AccessDenied, deniedMsg(user, "kms:ListRetirableGrants", "*", noIdentityPolicy("kms:ListRetirableGrants")))

	// When the key is deleted, its grants go with it.
	f.must2(f.svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: k1, PendingWindowInDays: int32p(7)}))
	f.advance(7 * day)
	if n, err := f.svc.DeleteExpiredKeys(f.ctx); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredKeys = %d, %v", n, err)
	}
	out, err = f.svc.ListRetirableGrants(f.ctx, rootA, &kmsapi.ListRetirableGrantsInput{RetiringPrincipal: retirer})
	if err != nil || len(out.Grants) != 1 || out.Grants[0].KeyID != keyARN(acctA, k2) {
		t.Fatalf("after k1 was deleted: %+v, %v", out, err)
	}
}

// A grant reaches across accounts: the grantee names the key by its ARN.
func TestCrossAccountGrant(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	arn := keyARN(acctA, id)
	userB := iamUser(t, acctB, "partner")
	enc := func() error {
		_, err := f.svc.Encrypt(f.ctx, userB, &kmsapi.EncryptInput{KeyID: arn, Plaintext: []byte("p")})
		return err
	}
	wantErr(t, enc(), fault.AccessDenied, deniedMsg(userB, "kms:Encrypt", arn, noResourcePolicy("kms:Encrypt")))
	g := f.grant(rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: userB.ARN, Operations: []string{"Encrypt", "DescribeKey"}})
	if err := enc(); err != nil {
		t.Fatalf("Encrypt by the grantee in another account: %v", err)
	}
	if _, err := f.svc.DescribeKey(f.ctx, userB, &kmsapi.DescribeKeyInput{KeyID: arn}); err != nil {
		t.Fatalf("DescribeKey by the grantee: %v", err)
	}
	// Its bare id names a key of account B, which does not exist.
	_, err := f.svc.Encrypt(f.ctx, userB, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")})
	wantErr(t, err, fault.NotFound, "Key '"+keyARN(acctB, id)+"' does not exist")
	// Management operations do not reach across accounts.
	_, err = f.svc.DisableKey(f.ctx, userB, &kmsapi.KeyIDInput{KeyID: arn})
	wantErr(t, err, fault.NotFound, "Key '"+arn+"' does not exist")
	f.must2(f.svc.RevokeGrant(f.ctx, rootA, &kmsapi.RevokeGrantInput{KeyID: id, GrantID: g.GrantID}))
	wantErr(t, enc(), fault.AccessDenied, deniedMsg(userB, "kms:Encrypt", arn, noResourcePolicy("kms:Encrypt")))
}
