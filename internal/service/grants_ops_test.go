package service_test

import (
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/openkms/kms/internal/service"
)

var grantIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (f *fixture) grant(c service.Caller, in service.CreateGrantInput) *service.CreateGrantOutput {
	f.t.Helper()
	out, err := f.svc.CreateGrant(f.ctx, c, &in)
	if err != nil {
		f.t.Fatalf("CreateGrant: %v", err)
	}
	return out
}

func (f *fixture) grantIDs(keyID string) []string {
	f.t.Helper()
	out, err := f.svc.ListGrants(f.ctx, rootA, &service.ListGrantsInput{KeyID: keyID})
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
	id := f.createKey(service.CreateKeyInput{})
	arn := keyARN(acctA, id)
	grantee := iamUser(t, acctA, "grantee")
	stranger := iamUser(t, acctA, "stranger")
	encrypt := func(c service.Caller, ec map[string]string, tokens ...string) error {
		_, err := f.svc.Encrypt(f.ctx, c, &service.EncryptInput{KeyID: arn, Plaintext: []byte("p"), EncryptionContext: ec, GrantTokens: tokens})
		return err
	}
	noIdentity := deniedMsg(grantee, "kms:Encrypt", arn, noIdentityPolicy("kms:Encrypt"))
	wantErr(t, encrypt(grantee, map[string]string{"app": "a"}), service.CodeAccessDenied, noIdentity)

	g := f.grant(rootA, service.CreateGrantInput{KeyID: id, GranteePrincipal: grantee.ARN, RetiringPrincipal: "arn:aws:iam::111122223333:user/retirer",
		Operations: []string{"Encrypt", "Decrypt", "Encrypt"}, Name: "app-grant",
		Constraints: &service.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "a"}}})
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
				wantErr(t, err, service.CodeAccessDenied, deniedMsg(tc.caller, "kms:Encrypt", arn, noIdentityPolicy("kms:Encrypt")))
			}
		})
	}
	_, err := f.svc.GenerateDataKey(f.ctx, grantee, &service.GenerateDataKeyInput{KeyID: id, KeySpec: "AES_256", EncryptionContext: map[string]string{"app": "a"}})
	wantErr(t, err, service.CodeAccessDenied, deniedMsg(grantee, "kms:GenerateDataKey", arn, noIdentityPolicy("kms:GenerateDataKey")))

	list, err := f.svc.ListGrants(f.ctx, rootA, &service.ListGrantsInput{KeyID: id})
	if err != nil {
		t.Fatal(err)
	}
	want := service.GrantListEntry{KeyID: arn, GrantID: g.GrantID, Name: "app-grant", CreationDate: service.Time(f.now), GranteePrincipal: grantee.ARN,
		RetiringPrincipal: "arn:aws:iam::111122223333:user/retirer", IssuingAccount: "arn:aws:iam::111122223333:root",
		Operations: []string{"Decrypt", "Encrypt"}, Constraints: &service.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "a"}}}
	if len(list.Grants) != 1 || !reflect.DeepEqual(list.Grants[0], want) || list.Truncated {
		t.Fatalf("ListGrants = %+v\nwant %+v", list, want)
	}

	// The grantee may not retire a grant that does not list RetireGrant.
	_, err = f.svc.RetireGrant(f.ctx, grantee, &service.RetireGrantInput{GrantToken: g.GrantToken})
	wantErr(t, err, service.CodeAccessDenied, deniedMsg(grantee, "kms:RetireGrant", arn,
		"because the caller is neither the retiring principal nor a grantee allowed to retire this grant"))
	retirer := iamUser(t, acctA, "retirer")
	if _, err := f.svc.RetireGrant(f.ctx, retirer, &service.RetireGrantInput{GrantToken: g.GrantToken, DryRun: true}); err == nil {
		t.Fatal("RetireGrant with DryRun succeeded")
	} else {
		wantErr(t, err, service.CodeDryRun, dryRunMsg)
	}
	if len(f.grantIDs(id)) != 1 {
		t.Fatal("a dry run retired the grant")
	}
	f.must2(f.svc.RetireGrant(f.ctx, retirer, &service.RetireGrantInput{GrantToken: g.GrantToken}))
	if ids := f.grantIDs(id); len(ids) != 0 {
		t.Fatalf("grants left after RetireGrant: %v", ids)
	}
	wantErr(t, encrypt(grantee, map[string]string{"app": "a"}), service.CodeAccessDenied, noIdentity)
	_, err = f.svc.RetireGrant(f.ctx, retirer, &service.RetireGrantInput{GrantToken: g.GrantToken})
	wantErr(t, err, service.CodeNotFound, "Grant ID "+g.GrantID+" not found")
}

func TestCreateGrantRefusals(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(service.CreateKeyInput{})
	hmac := f.createKey(service.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	grantee := "arn:aws:iam::111122223333:user/g"
	user := iamUser(t, acctA, "u")
	for _, tc := range []struct {
		name   string
		caller service.Caller
		in     service.CreateGrantInput
		code   service.Code
		msg    string
	}{
		{"operation the key cannot do", rootA, service.CreateGrantInput{KeyID: id, GranteePrincipal: grantee, Operations: []string{"Sign"}}, service.CodeValidation,
			"Grant operation Sign is not valid for a KMS key with key spec SYMMETRIC_DEFAULT."},
		{"encryption on an HMAC key", rootA, service.CreateGrantInput{KeyID: hmac, GranteePrincipal: grantee, Operations: []string{"GenerateMac", "Encrypt"}}, service.CodeValidation,
			"Grant operation Encrypt is not valid for a KMS key with key spec HMAC_256."},
		{"no grantee", rootA, service.CreateGrantInput{KeyID: id, Operations: []string{"Encrypt"}}, service.CodeValidation, "You must specify a GranteePrincipal."},
		{"no operations", rootA, service.CreateGrantInput{KeyID: id, GranteePrincipal: grantee}, service.CodeValidation,
			"1 validation error detected: Value null at 'operations' failed to satisfy constraint: Member must not be null"},
		{"empty operations", rootA, service.CreateGrantInput{KeyID: id, GranteePrincipal: grantee, Operations: []string{}}, service.CodeValidation,
			"1 validation error detected: Value '[]' at 'operations' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"operation not in the enum", rootA, service.CreateGrantInput{KeyID: id, GranteePrincipal: grantee, Operations: []string{"Encrypt", "ScheduleKeyDeletion"}}, service.CodeValidation,
			"1 validation error detected: Value 'ScheduleKeyDeletion' at 'operations.2.member' failed to satisfy constraint: Member must satisfy enum value set: [Decrypt, Encrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext, ReEncryptFrom, ReEncryptTo, Sign, Verify, GetPublicKey, CreateGrant, RetireGrant, DescribeKey, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext, GenerateMac, VerifyMac, DeriveSharedSecret]"},
		{"bad grantee", rootA, service.CreateGrantInput{KeyID: id, GranteePrincipal: "user name", Operations: []string{"Encrypt"}}, service.CodeValidation,
			"1 validation error detected: Value 'user name' at 'granteePrincipal' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[\\w+=,.@:/-]+$"},
		{"service principal", rootA, service.CreateGrantInput{KeyID: id, GranteeServicePrincipal: "s3.amazonaws.com", Operations: []string{"Encrypt"}}, service.CodeUnsupportedOperation,
			"Grants to AWS service principals are not supported by this server."},
		{"bad grant token", rootA, service.CreateGrantInput{KeyID: id, GranteePrincipal: grantee, Operations: []string{"Encrypt"}, GrantTokens: []string{"AAAA"}}, service.CodeInvalidGrantToken,
			"The grant token is not valid."},
		{"alias as key", rootA, service.CreateGrantInput{KeyID: "alias/x", GranteePrincipal: grantee, Operations: []string{"Encrypt"}}, service.CodeNotFound, "Invalid keyId 'alias/x'"},
		{"not allowed", user, service.CreateGrantInput{KeyID: id, GranteePrincipal: grantee, Operations: []string{"Encrypt"}}, service.CodeAccessDenied,
			deniedMsg(user, "kms:CreateGrant", keyARN(acctA, id), noIdentityPolicy("kms:CreateGrant"))},
		{"dry run", rootA, service.CreateGrantInput{KeyID: id, GranteePrincipal: grantee, Operations: []string{"Encrypt"}, DryRun: true}, service.CodeDryRun, dryRunMsg},
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
	id := f.createKey(service.CreateKeyInput{})
	in := service.CreateGrantInput{KeyID: id, GranteePrincipal: "arn:aws:iam::111122223333:user/g", Operations: []string{"Decrypt", "Encrypt"}, Name: "n"}
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
	other := f.createKey(service.CreateKeyInput{})
	in.KeyID, in.Name = other, "n"
	if g := f.grant(rootA, in); g.GrantID == first.GrantID {
		t.Fatal("a named grant on another key reused the first key's grant")
	}
}

// A grantee holding CreateGrant may hand on only what it holds.
func TestGrantedCreateGrant(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(service.CreateKeyInput{})
	arn := keyARN(acctA, id)
	delegate := iamUser(t, acctA, "delegate")
	f.grant(rootA, service.CreateGrantInput{KeyID: id, GranteePrincipal: delegate.ARN, Operations: []string{"CreateGrant", "Decrypt", "Encrypt"},
		Constraints: &service.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "t1"}}})
	for _, tc := range []struct {
		name  string
		in    service.CreateGrantInput
		allow bool
	}{
		{"subset, same constraint", service.CreateGrantInput{Operations: []string{"Decrypt"},
			Constraints: &service.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "t1"}}}, true},
		{"subset, stricter constraint", service.CreateGrantInput{Operations: []string{"Encrypt"},
			Constraints: &service.GrantConstraints{EncryptionContextEquals: map[string]string{"Tenant": "t1", "x": "y"}}}, true},
		{"dropping the constraint", service.CreateGrantInput{Operations: []string{"Decrypt"}}, false},
		{"another constraint value", service.CreateGrantInput{Operations: []string{"Decrypt"},
			Constraints: &service.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "t2"}}}, false},
		{"an operation beyond", service.CreateGrantInput{Operations: []string{"GenerateDataKey"},
			Constraints: &service.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "t1"}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.KeyID, tc.in.GranteePrincipal = arn, "arn:aws:iam::111122223333:user/child"
			_, err := f.svc.CreateGrant(f.ctx, delegate, &tc.in)
			if tc.allow && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.allow {
				wantErr(t, err, service.CodeAccessDenied, deniedMsg(delegate, "kms:CreateGrant", arn, noIdentityPolicy("kms:CreateGrant")))
			}
		})
	}
}

func TestRetireAndRevokeGrant(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(service.CreateKeyInput{})
	arn := keyARN(acctA, id)
	grantee := iamUser(t, acctA, "grantee")
	mk := func(ops ...string) *service.CreateGrantOutput {
		return f.grant(rootA, service.CreateGrantInput{KeyID: id, GranteePrincipal: grantee.ARN, Operations: ops})
	}
	// A grantee whose grant lists RetireGrant may retire it by key and id.
	g := mk("Encrypt", "RetireGrant")
	f.must2(f.svc.RetireGrant(f.ctx, grantee, &service.RetireGrantInput{KeyID: arn, GrantID: g.GrantID}))
	// The issuing account's root may retire any of its grants.
	g = mk("Encrypt")
	f.must2(f.svc.RetireGrant(f.ctx, rootA, &service.RetireGrantInput{KeyID: arn, GrantID: g.GrantID}))
	// Another account's root may not.
	g = mk("Encrypt")
	_, err := f.svc.RetireGrant(f.ctx, accountRoot(acctB), &service.RetireGrantInput{GrantToken: g.GrantToken})
	wantErr(t, err, service.CodeAccessDenied, deniedMsg(accountRoot(acctB), "kms:RetireGrant", arn,
		"because the caller is neither the retiring principal nor a grantee allowed to retire this grant"))
	for _, tc := range []struct {
		name string
		in   service.RetireGrantInput
		code service.Code
		msg  string
	}{
		{"nothing named", service.RetireGrantInput{}, service.CodeValidation, "Either GrantToken, or both KeyId and GrantId, must be specified."},
		{"grant id without key", service.RetireGrantInput{GrantID: g.GrantID}, service.CodeValidation, "Either GrantToken, or both KeyId and GrantId, must be specified."},
		{"malformed grant id", service.RetireGrantInput{KeyID: arn, GrantID: "1234"}, service.CodeInvalidGrantID, "Invalid grant ID 1234"},
		{"malformed token", service.RetireGrantInput{GrantToken: "bm90IGEgdG9rZW4"}, service.CodeInvalidGrantToken, "The grant token is not valid."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.RetireGrant(f.ctx, rootA, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}

	// RevokeGrant needs kms:RevokeGrant on the key, which the grantee lacks.
	_, err = f.svc.RevokeGrant(f.ctx, grantee, &service.RevokeGrantInput{KeyID: id, GrantID: g.GrantID})
	wantErr(t, err, service.CodeAccessDenied, deniedMsg(grantee, "kms:RevokeGrant", arn, noIdentityPolicy("kms:RevokeGrant")))
	_, err = f.svc.RevokeGrant(f.ctx, rootA, &service.RevokeGrantInput{KeyID: id, GrantID: g.GrantID, DryRun: true})
	wantErr(t, err, service.CodeDryRun, dryRunMsg)
	if ids := f.grantIDs(id); !slices.Equal(ids, []string{g.GrantID}) {
		t.Fatalf("grants after refused revocations: %v", ids)
	}
	f.must2(f.svc.RevokeGrant(f.ctx, rootA, &service.RevokeGrantInput{KeyID: id, GrantID: g.GrantID}))
	if ids := f.grantIDs(id); len(ids) != 0 {
		t.Fatalf("grants after RevokeGrant: %v", ids)
	}
	_, err = f.svc.RevokeGrant(f.ctx, rootA, &service.RevokeGrantInput{KeyID: id, GrantID: g.GrantID})
	wantErr(t, err, service.CodeNotFound, "Grant ID "+g.GrantID+" not found")
	_, err = f.svc.RevokeGrant(f.ctx, rootA, &service.RevokeGrantInput{KeyID: id, GrantID: "zz"})
	wantErr(t, err, service.CodeInvalidGrantID, "Invalid grant ID zz")
	_, err = f.svc.RevokeGrant(f.ctx, rootA, &service.RevokeGrantInput{KeyID: id})
	wantErr(t, err, service.CodeValidation, "1 validation error detected: Value null at 'grantId' failed to satisfy constraint: Member must not be null")
}

func TestListGrantsFiltersAndPages(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(service.CreateKeyInput{})
	var all []string
	for _, who := range []string{"a", "b", "a", "c", "a"} {
		g := f.grant(rootA, service.CreateGrantInput{KeyID: id, GranteePrincipal: "arn:aws:iam::111122223333:user/" + who, Operations: []string{"Encrypt"}})
		all = append(all, g.GrantID)
	}
	slices.Sort(all)
	var paged []string
	var marker *string
	for {
		out, err := f.svc.ListGrants(f.ctx, rootA, &service.ListGrantsInput{KeyID: id, Limit: int32p(2), Marker: marker})
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
	out, err := f.svc.ListGrants(f.ctx, rootA, &service.ListGrantsInput{KeyID: id, GranteePrincipal: "arn:aws:iam::111122223333:user/a", Limit: int32p(2)})
	if err != nil || len(out.Grants) != 2 || !out.Truncated {
		t.Fatalf("first page of grantee a's grants: %+v, %v", out, err)
	}
	out, err = f.svc.ListGrants(f.ctx, rootA, &service.ListGrantsInput{KeyID: id, GranteePrincipal: "arn:aws:iam::111122223333:user/a", Marker: strp(out.NextMarker)})
	if err != nil || len(out.Grants) != 1 || out.Truncated || out.Grants[0].GranteePrincipal != "arn:aws:iam::111122223333:user/a" {
		t.Fatalf("second page of grantee a's grants: %+v, %v", out, err)
	}
	out, err = f.svc.ListGrants(f.ctx, rootA, &service.ListGrantsInput{KeyID: id, GrantID: all[3]})
	if err != nil || len(out.Grants) != 1 || out.Grants[0].GrantID != all[3] {
		t.Fatalf("ListGrants by id: %+v, %v", out, err)
	}
	_, err = f.svc.ListGrants(f.ctx, rootA, &service.ListGrantsInput{KeyID: id, GrantID: "nope"})
	wantErr(t, err, service.CodeInvalidGrantID, "Invalid grant ID nope")
	_, err = f.svc.ListGrants(f.ctx, rootA, &service.ListGrantsInput{KeyID: id, Marker: strp("bogus")})
	wantErr(t, err, service.CodeInvalidMarker, "The marker is not valid. Pass the NextMarker of a previous response unchanged.")
	_, err = f.svc.ListGrants(f.ctx, rootA, &service.ListGrantsInput{KeyID: id, Limit: int32p(1001)})
	wantErr(t, err, service.CodeValidation, "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000")
	user := iamUser(t, acctA, "u")
	_, err = f.svc.ListGrants(f.ctx, user, &service.ListGrantsInput{KeyID: id})
	wantErr(t, err, service.CodeAccessDenied, deniedMsg(user, "kms:ListGrants", keyARN(acctA, id), noIdentityPolicy("kms:ListGrants")))
}

func TestListRetirableGrants(t *testing.T) {
	f := newFixture(t)
	k1, k2 := f.createKey(service.CreateKeyInput{}), f.createKey(service.CreateKeyInput{})
	retirer := "arn:aws:iam::111122223333:user/retirer"
	want := map[string]bool{}
	for _, k := range []string{k1, k2, k1} {
		g := f.grant(rootA, service.CreateGrantInput{KeyID: k, GranteePrincipal: "arn:aws:iam::111122223333:user/g", RetiringPrincipal: retirer, Operations: []string{"Encrypt"}})
		want[g.GrantID] = true
	}
	f.grant(rootA, service.CreateGrantInput{KeyID: k1, GranteePrincipal: "arn:aws:iam::111122223333:user/g", RetiringPrincipal: "arn:aws:iam::111122223333:user/other", Operations: []string{"Encrypt"}})
	got := map[string]bool{}
	var marker *string
	for {
		out, err := f.svc.ListRetirableGrants(f.ctx, rootA, &service.ListRetirableGrantsInput{RetiringPrincipal: retirer, Limit: int32p(2), Marker: marker})
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
	out, err := f.svc.ListRetirableGrants(f.ctx, accountRoot(acctB), &service.ListRetirableGrantsInput{RetiringPrincipal: retirer})
	if err != nil || len(out.Grants) != 0 {
		t.Fatalf("account B listed %+v, %v", out, err)
	}
	out, err = f.svc.ListRetirableGrants(f.ctx, rootA, &service.ListRetirableGrantsInput{RetiringServicePrincipal: "s3.amazonaws.com"})
	if err != nil || out.Grants == nil || len(out.Grants) != 0 {
		t.Fatalf("by service principal: %+v, %v", out, err)
	}
	_, err = f.svc.ListRetirableGrants(f.ctx, rootA, &service.ListRetirableGrantsInput{})
	wantErr(t, err, service.CodeValidation, "1 validation error detected: Value null at 'retiringPrincipal' failed to satisfy constraint: Member must not be null")
	user := iamUser(t, acctA, "u")
	_, err = f.svc.ListRetirableGrants(f.ctx, user, &service.ListRetirableGrantsInput{RetiringPrincipal: retirer})
	wantErr(t, err, service.CodeAccessDenied, deniedMsg(user, "kms:ListRetirableGrants", "*", noIdentityPolicy("kms:ListRetirableGrants")))

	// When the key is deleted, its grants go with it.
	f.must2(f.svc.ScheduleKeyDeletion(f.ctx, rootA, &service.ScheduleKeyDeletionInput{KeyID: k1, PendingWindowInDays: int32p(7)}))
	f.advance(7 * day)
	if n, err := f.svc.DeleteExpiredKeys(f.ctx); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredKeys = %d, %v", n, err)
	}
	out, err = f.svc.ListRetirableGrants(f.ctx, rootA, &service.ListRetirableGrantsInput{RetiringPrincipal: retirer})
	if err != nil || len(out.Grants) != 1 || out.Grants[0].KeyID != keyARN(acctA, k2) {
		t.Fatalf("after k1 was deleted: %+v, %v", out, err)
	}
}

// A grant reaches across accounts: the grantee names the key by its ARN.
func TestCrossAccountGrant(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(service.CreateKeyInput{})
	arn := keyARN(acctA, id)
	userB := iamUser(t, acctB, "partner")
	enc := func() error {
		_, err := f.svc.Encrypt(f.ctx, userB, &service.EncryptInput{KeyID: arn, Plaintext: []byte("p")})
		return err
	}
	wantErr(t, enc(), service.CodeAccessDenied, deniedMsg(userB, "kms:Encrypt", arn, noResourcePolicy("kms:Encrypt")))
	g := f.grant(rootA, service.CreateGrantInput{KeyID: id, GranteePrincipal: userB.ARN, Operations: []string{"Encrypt", "DescribeKey"}})
	if err := enc(); err != nil {
		t.Fatalf("Encrypt by the grantee in another account: %v", err)
	}
	if _, err := f.svc.DescribeKey(f.ctx, userB, &service.DescribeKeyInput{KeyID: arn}); err != nil {
		t.Fatalf("DescribeKey by the grantee: %v", err)
	}
	// Its bare id names a key of account B, which does not exist.
	_, err := f.svc.Encrypt(f.ctx, userB, &service.EncryptInput{KeyID: id, Plaintext: []byte("p")})
	wantErr(t, err, service.CodeNotFound, "Key '"+keyARN(acctB, id)+"' does not exist")
	// Management operations do not reach across accounts.
	_, err = f.svc.DisableKey(f.ctx, userB, &service.KeyIDInput{KeyID: arn})
	wantErr(t, err, service.CodeNotFound, "Key '"+arn+"' does not exist")
	f.must2(f.svc.RevokeGrant(f.ctx, rootA, &service.RevokeGrantInput{KeyID: id, GrantID: g.GrantID}))
	wantErr(t, enc(), service.CodeAccessDenied, deniedMsg(userB, "kms:Encrypt", arn, noResourcePolicy("kms:Encrypt")))
}
