package service_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/store"

	"github.com/openkms/kms/internal/service"
)

func TestCreateKeyDefaults(t *testing.T) {
	f := newFixture(t)
	out, err := f.svc.CreateKey(f.ctx, rootA, &kmsapi.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	m := out.KeyMetadata
	want := kmsapi.KeyMetadata{
		AWSAccountID: acctA, KeyID: m.KeyID, Arn: keyARN(acctA, m.KeyID), CreationDate: kmsapi.Time(f.now),
		Enabled: true, KeyUsage: "ENCRYPT_DECRYPT", KeyState: "Enabled", Origin: "AWS_KMS", KeyManager: "CUSTOMER",
		CustomerMasterKeySpec: "SYMMETRIC_DEFAULT", KeySpec: "SYMMETRIC_DEFAULT", EncryptionAlgorithms: []string{"SYMMETRIC_DEFAULT"},
		CurrentKeyMaterialID: m.CurrentKeyMaterialID,
	}
	if fmt.Sprint(*m) != fmt.Sprint(want) {
		t.Fatalf("metadata\n got %+v\nwant %+v", *m, want)
	}
	if len(m.CurrentKeyMaterialID) != 64 {
		t.Fatalf("CurrentKeyMaterialId %q, want 64 hex digits", m.CurrentKeyMaterialID)
	}
	if got := f.describe(m.KeyID); fmt.Sprint(*got) != fmt.Sprint(*m) {
		t.Fatalf("DescribeKey differs from CreateKey:\n%+v\n%+v", *got, *m)
	}
	pol, err := f.svc.GetKeyPolicy(f.ctx, rootA, &kmsapi.GetKeyPolicyInput{KeyID: m.KeyID})
	if err != nil {
		t.Fatal(err)
	}
	if pol.PolicyName != "default" || !strings.Contains(pol.Policy, `"AWS" : "arn:aws:iam::111122223333:root"`) || !strings.Contains(pol.Policy, `"Action" : "kms:*"`) {
		t.Fatalf("default policy: %+v", pol)
	}
}

func TestCreateKeySpecsAndUsages(t *testing.T) {
	for _, tc := range []struct {
		spec, cmkSpec, usage          string
		enc, sig, mac, agree          []string
		symmetricMaterialIDAdvertised bool
	}{
		{spec: "SYMMETRIC_DEFAULT", enc: []string{"SYMMETRIC_DEFAULT"}, symmetricMaterialIDAdvertised: true},
		{spec: "RSA_2048", usage: "ENCRYPT_DECRYPT", enc: []string{"RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"}},
		{spec: "RSA_2048", usage: "SIGN_VERIFY", sig: []string{"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512", "RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512"}},
		{spec: "ECC_NIST_P256", usage: "SIGN_VERIFY", sig: []string{"ECDSA_SHA_256"}},
		{spec: "ECC_NIST_P384", usage: "KEY_AGREEMENT", agree: []string{"ECDH"}},
		{cmkSpec: "ECC_SECG_P256K1", usage: "SIGN_VERIFY", sig: []string{"ECDSA_SHA_256"}},
		{spec: "ECC_NIST_EDWARDS25519", usage: "SIGN_VERIFY", sig: []string{"ED25519_SHA_512", "ED25519_PH_SHA_512"}},
		{spec: "HMAC_224", usage: "GENERATE_VERIFY_MAC", mac: []string{"HMAC_SHA_224"}},
		{spec: "HMAC_512", usage: "GENERATE_VERIFY_MAC", mac: []string{"HMAC_SHA_512"}},
	} {
		name := tc.spec + tc.cmkSpec + "/" + tc.usage
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			out, err := f.svc.CreateKey(f.ctx, rootA, &kmsapi.CreateKeyInput{KeySpec: tc.spec, CustomerMasterKeySpec: tc.cmkSpec, KeyUsage: tc.usage})
			if err != nil {
				t.Fatal(err)
			}
			m := out.KeyMetadata
			spec := tc.spec + tc.cmkSpec
			usage := tc.usage
			if usage == "" {
				usage = "ENCRYPT_DECRYPT"
			}
			if m.KeySpec != spec || m.CustomerMasterKeySpec != spec || m.KeyUsage != usage || m.KeyState != "Enabled" {
				t.Fatalf("metadata %+v", m)
			}
			if !slices.Equal(m.EncryptionAlgorithms, tc.enc) || !slices.Equal(m.SigningAlgorithms, tc.sig) ||
				!slices.Equal(m.MacAlgorithms, tc.mac) || !slices.Equal(m.KeyAgreementAlgorithms, tc.agree) {
				t.Fatalf("algorithms: enc %v sig %v mac %v agree %v", m.EncryptionAlgorithms, m.SigningAlgorithms, m.MacAlgorithms, m.KeyAgreementAlgorithms)
			}
			if (m.CurrentKeyMaterialID != "") != tc.symmetricMaterialIDAdvertised {
				t.Fatalf("CurrentKeyMaterialId %q", m.CurrentKeyMaterialID)
			}
		})
	}
}

func TestCreateKeyRefusals(t *testing.T) {
	f := newFixture(t)
	manyTags := make([]kmsapi.Tag, 51)
	for i := range manyTags {
		manyTags[i] = kmsapi.Tag{TagKey: fmt.Sprintf("k%d", i)}
	}
	creator := iamUser(t, acctA, "creator", identityAllow("kms:CreateKey"))
	for _, tc := range []struct {
		name   string
		caller service.Caller
		in     kmsapi.CreateKeyInput
		code   fault.Code
		msg    string
	}{
		{"both specs", rootA, kmsapi.CreateKeyInput{KeySpec: "RSA_2048", CustomerMasterKeySpec: "RSA_2048", KeyUsage: "SIGN_VERIFY"}, fault.Validation,
			"You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated."},
		{"no usage for HMAC", rootA, kmsapi.CreateKeyInput{KeySpec: "HMAC_256"}, fault.Validation,
			"You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."},
		{"usage not of spec", rootA, kmsapi.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "KEY_AGREEMENT"}, fault.Validation,
			"KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048"},
		{"symmetric for signing", rootA, kmsapi.CreateKeyInput{KeyUsage: "SIGN_VERIFY"}, fault.Validation,
			"KeyUsage SIGN_VERIFY is not compatible with KeySpec SYMMETRIC_DEFAULT"},
		{"SM2", rootA, kmsapi.CreateKeyInput{KeySpec: "SM2", KeyUsage: "SIGN_VERIFY"}, fault.UnsupportedOperation,
			"KeySpec SM2 is only available in AWS China Regions."},
		{"CloudHSM origin", rootA, kmsapi.CreateKeyInput{Origin: "AWS_CLOUDHSM"}, fault.UnsupportedOperation,
			"Origin AWS_CLOUDHSM is not supported by this server: custom key stores do not exist here."},
		{"custom key store", rootA, kmsapi.CreateKeyInput{CustomKeyStoreID: strp("cks-1234567890abcdef0")}, fault.CustomKeyStoreNotFound,
			"Custom key store cks-1234567890abcdef0 does not exist in this account: this server does not support custom key stores."},
		{"reserved tag", rootA, kmsapi.CreateKeyInput{Tags: []kmsapi.Tag{{TagKey: "AWS:owner", TagValue: "x"}}}, fault.Tag,
			"Tags beginning with aws: are reserved"},
		{"duplicate tag", rootA, kmsapi.CreateKeyInput{Tags: []kmsapi.Tag{{TagKey: "a"}, {TagKey: "a"}}}, fault.Tag, "Duplicate tag keys"},
		{"51 tags", rootA, kmsapi.CreateKeyInput{Tags: manyTags}, fault.Tag, "Too many tags"},
		{"policy not JSON", rootA, kmsapi.CreateKeyInput{Policy: strp("{")}, fault.MalformedPolicyDocument, "The key policy is not a valid JSON object."},
		{"policy without statements", rootA, kmsapi.CreateKeyInput{Policy: strp(`{"Version":"2012-10-17"}`)}, fault.MalformedPolicyDocument,
			"The key policy has no Statement."},
		{"policy with a control character", rootA, kmsapi.CreateKeyInput{Policy: strp("{\x01}")}, fault.Validation,
			"1 validation error detected: Value '{\x01}' at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"},
		{"policy over 32 KB", rootA, kmsapi.CreateKeyInput{Policy: strp(`{"Statement":[],"Sid":"` + strings.Repeat("x", 32768) + `"}`)}, fault.LimitExceeded,
			"The key policy document exceeds the maximum size of 32768 bytes."},
		{"policy that locks the caller out", rootA, kmsapi.CreateKeyInput{Policy: strp(policyFor("arn:aws:iam::111122223333:user/someone-else", "kms:*"))},
			fault.MalformedPolicyDocument, "The new key policy will not allow you to update the key policy in the future."},
		{"description too long", rootA, kmsapi.CreateKeyInput{Description: strp(strings.Repeat("d", 8193))}, fault.Validation,
			"1 validation error detected: Value '" + strings.Repeat("d", 8193) + "' at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192"},
		{"user without CreateKey", iamUser(t, acctA, "nobody"), kmsapi.CreateKeyInput{}, fault.AccessDenied,
			deniedMsg(iamUser(t, acctA, "nobody"), "kms:CreateKey", "*", noIdentityPolicy("kms:CreateKey"))},
		{"user with CreateKey, tags without TagResource", creator, kmsapi.CreateKeyInput{Tags: []kmsapi.Tag{{TagKey: "team", TagValue: "x"}}}, fault.AccessDenied,
			deniedMsg(creator, "kms:TagResource", "*", noIdentityPolicy("kms:TagResource"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.snapshot()
			_, err := f.svc.CreateKey(f.ctx, tc.caller, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
			if !sameRecords(before, f.snapshot()) {
				t.Fatal("a refused CreateKey changed the store")
			}
		})
	}
	// The same user may create a key without tags, and the bypass lets a
	// policy that would lock the caller out through.
	if _, err := f.svc.CreateKey(f.ctx, creator, &kmsapi.CreateKeyInput{}); err != nil {
		t.Fatalf("CreateKey as a user allowed kms:CreateKey: %v", err)
	}
	if _, err := f.svc.CreateKey(f.ctx, rootA, &kmsapi.CreateKeyInput{BypassPolicyLockoutSafetyCheck: true,
		Policy: strp(policyFor("arn:aws:iam::111122223333:user/someone-else", "kms:*"))}); err != nil {
		t.Fatalf("CreateKey with the lockout check bypassed: %v", err)
	}
}

// policyFor is a key policy that allows principal the actions.
func policyFor(principal string, actions ...string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":%q},"Action":%s,"Resource":"*"}]}`, principal, jsonList(actions))
}

func TestDescribeKeyIdentifierForms(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{Description: strp("described")})
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/app", TargetKeyID: id}))
	arn := keyARN(acctA, id)
	for _, ident := range []string{id, arn, "alias/app", "arn:aws:kms:us-east-1:111122223333:alias/app"} {
		out, err := f.svc.DescribeKey(f.ctx, rootA, &kmsapi.DescribeKeyInput{KeyID: ident})
		if err != nil {
			t.Fatalf("DescribeKey(%s): %v", ident, err)
		}
		if out.KeyMetadata.Arn != arn || out.KeyMetadata.Description != "described" {
			t.Fatalf("DescribeKey(%s) = %+v", ident, out.KeyMetadata)
		}
	}
	unknown := "0b9a2ef4-1c1d-4a84-9c3f-6a3c4b7e1d2f"
	for _, tc := range []struct {
		ident string
		code  fault.Code
		msg   string
	}{
		{unknown, fault.NotFound, "Key '" + keyARN(acctA, unknown) + "' does not exist"},
		{keyARN(acctA, unknown), fault.NotFound, "Key '" + keyARN(acctA, unknown) + "' does not exist"},
		{"mrk-0123456789abcdef0123456789abcdef", fault.NotFound, "Key '" + keyARN(acctA, "mrk-0123456789abcdef0123456789abcdef") + "' does not exist"},
		{"mrk-fake-key-id", fault.NotFound, "Invalid keyId 'mrk-fake-key-id'"},
		{"fake-key-id", fault.NotFound, "Invalid keyId 'fake-key-id'"},
		{"arn:aws:kms:us-west-2:111122223333:key/" + id, fault.NotFound, "Invalid arn us-west-2"},
		{"arn:aws:kms:us-east-1:111122223333:key/nope", fault.NotFound, "Invalid keyId 'arn:aws:kms:us-east-1:111122223333:key/nope'"},
		{"arn:aws:s3:us-east-1:111122223333:key/" + id, fault.NotFound, "Invalid keyId 'arn:aws:s3:us-east-1:111122223333:key/" + id + "'"},
		{"arn:aws:kms:us-east-1:111122223333:grant/x", fault.NotFound, "Invalid keyId 'arn:aws:kms:us-east-1:111122223333:grant/x'"},
		{"alias/none", fault.NotFound, "Alias arn:aws:kms:us-east-1:111122223333:alias/none is not found."},
		// The key exists, but in account A: named under account B's ARN it does not.
		{keyARN(acctB, id), fault.NotFound, "Key '" + keyARN(acctB, id) + "' does not exist"},
	} {
		_, err := f.svc.DescribeKey(f.ctx, rootA, &kmsapi.DescribeKeyInput{KeyID: tc.ident})
		t.Run(tc.ident, func(t *testing.T) { wantErr(t, err, tc.code, tc.msg) })
	}
	// Another account's root does not see the key by its bare id.
	_, err := f.svc.DescribeKey(f.ctx, accountRoot(acctB), &kmsapi.DescribeKeyInput{KeyID: id})
	wantErr(t, err, fault.NotFound, "Key '"+keyARN(acctB, id)+"' does not exist")
	// Nor through its ARN, while the key policy names only account A.
	_, err = f.svc.DescribeKey(f.ctx, accountRoot(acctB), &kmsapi.DescribeKeyInput{KeyID: arn})
	wantErr(t, err, fault.AccessDenied, deniedMsg(accountRoot(acctB), "kms:DescribeKey", arn, noResourcePolicy("kms:DescribeKey")))
}

// keyInState makes a key of account A in one of the four states.
func (f *fixture) keyInState(state string) string {
	f.t.Helper()
	switch state {
	case "Enabled":
		return f.createKey(kmsapi.CreateKeyInput{})
	case "Disabled":
		id := f.createKey(kmsapi.CreateKeyInput{})
		f.must2(f.svc.DisableKey(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id}))
		return id
	case "PendingDeletion":
		id := f.createKey(kmsapi.CreateKeyInput{})
		f.must2(f.svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: int32p(7)}))
		return id
	case "PendingImport":
		return f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL"})
	}
	f.t.Fatalf("no state %s", state)
	return ""
}

// The key state machine (reference §4.4): what each operation does to, or
// refuses in, each state.
func TestKeyStateMachine(t *testing.T) {
	type op func(f *fixture, id string) error
	ops := map[string]op{
		"EnableKey": func(f *fixture, id string) error {
			_, err := f.svc.EnableKey(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
			return err
		},
		"DisableKey": func(f *fixture, id string) error {
			_, err := f.svc.DisableKey(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
			return err
		},
		"ScheduleKeyDeletion": func(f *fixture, id string) error {
			_, err := f.svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: id})
			return err
		},
		"CancelKeyDeletion": func(f *fixture, id string) error {
			_, err := f.svc.CancelKeyDeletion(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
			return err
		},
		"UpdateKeyDescription": func(f *fixture, id string) error {
			_, err := f.svc.UpdateKeyDescription(f.ctx, rootA, &kmsapi.UpdateKeyDescriptionInput{KeyID: id, Description: strp("new")})
			return err
		},
		"TagResource": func(f *fixture, id string) error {
			_, err := f.svc.TagResource(f.ctx, rootA, &kmsapi.TagResourceInput{KeyID: id, Tags: []kmsapi.Tag{{TagKey: "k", TagValue: "v"}}})
			return err
		},
		"UntagResource": func(f *fixture, id string) error {
			_, err := f.svc.UntagResource(f.ctx, rootA, &kmsapi.UntagResourceInput{KeyID: id, TagKeys: []string{"k"}})
			return err
		},
		"CreateAlias": func(f *fixture, id string) error {
			_, err := f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/state", TargetKeyID: id})
			return err
		},
		"Encrypt": func(f *fixture, id string) error {
			_, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")})
			return err
		},
		"GenerateDataKey": func(f *fixture, id string) error {
			_, err := f.svc.GenerateDataKey(f.ctx, rootA, &kmsapi.GenerateDataKeyInput{KeyID: id, KeySpec: "AES_128"})
			return err
		},
		"CreateGrant": func(f *fixture, id string) error {
			_, err := f.svc.CreateGrant(f.ctx, rootA, &kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: "arn:aws:iam::111122223333:user/g", Operations: []string{"Encrypt"}})
			return err
		},
		"EnableKeyRotation": func(f *fixture, id string) error {
			_, err := f.svc.EnableKeyRotation(f.ctx, rootA, &kmsapi.EnableKeyRotationInput{KeyID: id})
			return err
		},
		"DescribeKey": func(f *fixture, id string) error {
			_, err := f.svc.DescribeKey(f.ctx, rootA, &kmsapi.DescribeKeyInput{KeyID: id})
			return err
		},
		"GetKeyPolicy": func(f *fixture, id string) error {
			_, err := f.svc.GetKeyPolicy(f.ctx, rootA, &kmsapi.GetKeyPolicyInput{KeyID: id})
			return err
		},
	}
	const (
		disabled = "%s is disabled."
		pendDel  = "%s is pending deletion."
		pendImp  = "%s is pending import."
		notPend  = "%s is not pending deletion."
		external = "%s origin is EXTERNAL which is not valid for this operation."
	)
	type outcome struct {
		code  fault.Code // CodeInternal: succeeds
		msg   string     // with %s for the key ARN
		after string     // the state afterwards ("" unchanged)
	}
	ok := func(after string) outcome { return outcome{after: after} }
	fail := func(code fault.Code, msg string) outcome { return outcome{code: code, msg: msg} }
	states := []string{"Enabled", "Disabled", "PendingDeletion", "PendingImport"}
	table := map[string][4]outcome{
		"EnableKey":            {ok("Enabled"), ok("Enabled"), fail(fault.InvalidState, pendDel), fail(fault.InvalidState, pendImp)},
		"DisableKey":           {ok("Disabled"), ok("Disabled"), fail(fault.InvalidState, pendDel), fail(fault.InvalidState, pendImp)},
		"ScheduleKeyDeletion":  {ok("PendingDeletion"), ok("PendingDeletion"), fail(fault.InvalidState, pendDel), ok("PendingDeletion")},
		"CancelKeyDeletion":    {fail(fault.InvalidState, notPend), fail(fault.InvalidState, notPend), ok("Disabled"), fail(fault.InvalidState, notPend)},
		"UpdateKeyDescription": {ok(""), ok(""), fail(fault.InvalidState, pendDel), ok("")},
		"TagResource":          {ok(""), ok(""), fail(fault.InvalidState, pendDel), ok("")},
		"UntagResource":        {ok(""), ok(""), fail(fault.InvalidState, pendDel), ok("")},
		"CreateAlias":          {ok(""), ok(""), fail(fault.InvalidState, pendDel), ok("")},
		"Encrypt":              {ok(""), fail(fault.Disabled, disabled), fail(fault.InvalidState, pendDel), fail(fault.InvalidState, pendImp)},
		"GenerateDataKey":      {ok(""), fail(fault.Disabled, disabled), fail(fault.InvalidState, pendDel), fail(fault.InvalidState, pendImp)},
		"CreateGrant":          {ok(""), fail(fault.Disabled, disabled), fail(fault.InvalidState, pendDel), fail(fault.InvalidState, pendImp)},
		"EnableKeyRotation":    {ok(""), fail(fault.Disabled, disabled), fail(fault.InvalidState, pendDel), fail(fault.UnsupportedOperation, external)},
		"DescribeKey":          {ok(""), ok(""), ok(""), ok("")},
		"GetKeyPolicy":         {ok(""), ok(""), ok(""), ok("")},
	}
	f := newFixture(t)
	for name, row := range table {
		for i, state := range states {
			t.Run(name+"/"+state, func(t *testing.T) {
				f.t = t // the fixture is shared: its helpers fail this subtest
				id := f.keyInState(state)
				arn := keyARN(acctA, id)
				before := f.snapshot()
				err := ops[name](f, id)
				want := row[i]
				if want.code == fault.Internal {
					if err != nil {
						t.Fatalf("%s on a %s key: %v", name, state, err)
					}
				} else {
					wantErr(t, err, want.code, fmt.Sprintf(want.msg, arn))
					if !sameRecords(before, f.snapshot()) {
						t.Fatalf("refused %s changed the store", name)
					}
				}
				after := want.after
				if after == "" {
					after = state
				}
				m := f.describe(id)
				if m.KeyState != after || m.Enabled != (after == "Enabled") {
					t.Fatalf("after %s: state %s enabled %v, want %s", name, m.KeyState, m.Enabled, after)
				}
				f.svc.DeleteAlias(f.ctx, rootA, &kmsapi.DeleteAliasInput{AliasName: "alias/state"})
			})
		}
	}
}

func TestScheduleAndCancelKeyDeletion(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	arn := keyARN(acctA, id)
	out, err := f.svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: arn})
	if err != nil {
		t.Fatal(err)
	}
	date := kmsapi.Time(f.now.Add(30 * 24 * time.Hour))
	if out.KeyID != arn || out.DeletionDate == nil || *out.DeletionDate != date || out.KeyState != "PendingDeletion" || out.PendingWindowInDays != 30 {
		t.Fatalf("ScheduleKeyDeletion = %+v, want a deletion on %v in state PendingDeletion (the default window is 30 days)", *out, date)
	}
	if m := f.describe(id); m.DeletionDate == nil || *m.DeletionDate != date {
		t.Fatalf("DescribeKey DeletionDate %v", m.DeletionDate)
	}
	c, err := f.svc.CancelKeyDeletion(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
	if err != nil || c.KeyID != arn {
		t.Fatalf("CancelKeyDeletion = %+v, %v", c, err)
	}
	if m := f.describe(id); m.KeyState != "Disabled" || m.DeletionDate != nil {
		t.Fatalf("after cancel: %+v", m)
	}
	for _, tc := range []struct {
		days int32
		msg  string
	}{
		{6, "PendingWindowInDays must be between 7 and 30"},
		{31, "PendingWindowInDays must be between 7 and 30"},
		{0, "1 validation error detected: Value '0' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{366, "1 validation error detected: Value '366' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value less than or equal to 365"},
	} {
		_, err := f.svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: int32p(tc.days)})
		wantErr(t, err, fault.Validation, tc.msg)
	}
	// A key past its deletion date is gone for every operation, before
	// the sweeper has removed it.
	f.must2(f.svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: int32p(7)}))
	f.advance(7 * 24 * time.Hour)
	gone := "Key '" + arn + "' does not exist"
	_, err = f.svc.CancelKeyDeletion(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
	wantErr(t, err, fault.NotFound, gone)
	_, err = f.svc.GetKeyPolicy(f.ctx, rootA, &kmsapi.GetKeyPolicyInput{KeyID: id})
	wantErr(t, err, fault.NotFound, gone)
	keys, err := f.svc.ListKeys(f.ctx, rootA, &kmsapi.ListKeysInput{})
	if err != nil || len(keys.Keys) != 0 {
		t.Fatalf("ListKeys after the deletion date: %+v, %v", keys, err)
	}
}

func TestUpdateKeyDescription(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{Description: strp("old")})
	f.must2(f.svc.UpdateKeyDescription(f.ctx, rootA, &kmsapi.UpdateKeyDescriptionInput{KeyID: id, Description: strp("")}))
	if d := f.describe(id).Description; d != "" {
		t.Fatalf("description %q after setting it empty", d)
	}
	_, err := f.svc.UpdateKeyDescription(f.ctx, rootA, &kmsapi.UpdateKeyDescriptionInput{KeyID: id})
	wantErr(t, err, fault.Validation, "1 validation error detected: Value null at 'description' failed to satisfy constraint: Member must not be null")
	_, err = f.svc.UpdateKeyDescription(f.ctx, rootA, &kmsapi.UpdateKeyDescriptionInput{KeyID: "alias/x", Description: strp("d")})
	wantErr(t, err, fault.NotFound, "Invalid keyId 'alias/x'")
}

func TestListKeysPages(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for range 5 {
		ids = append(ids, f.createKey(kmsapi.CreateKeyInput{}))
	}
	f.createKeyAs(accountRoot(acctB), kmsapi.CreateKeyInput{}) // another account's
	slices.Sort(ids)
	var got []string
	var marker *string
	pages := 0
	for {
		out, err := f.svc.ListKeys(f.ctx, rootA, &kmsapi.ListKeysInput{Limit: int32p(2), Marker: marker})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, k := range out.Keys {
			if k.KeyArn != keyARN(acctA, k.KeyID) {
				t.Fatalf("entry %+v", k)
			}
			got = append(got, k.KeyID)
		}
		if out.Truncated != (out.NextMarker != "") {
			t.Fatalf("Truncated %v with NextMarker %q", out.Truncated, out.NextMarker)
		}
		if !out.Truncated {
			break
		}
		marker = strp(out.NextMarker)
	}
	if !slices.Equal(got, ids) || pages != 3 {
		t.Fatalf("listed %v in %d pages, want %v in 3", got, pages, ids)
	}
	for _, tc := range []struct {
		in   kmsapi.ListKeysInput
		code fault.Code
		msg  string
	}{
		{kmsapi.ListKeysInput{Marker: strp("not a marker")}, fault.InvalidMarker, "The marker is not valid. Pass the NextMarker of a previous response unchanged."},
		{kmsapi.ListKeysInput{Limit: int32p(0)}, fault.Validation, "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{kmsapi.ListKeysInput{Limit: int32p(1001)}, fault.Validation, "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000"},
		// The model's Marker pattern: a tab, or a character past U+00FF,
		// is refused before the marker is decoded.
		{kmsapi.ListKeysInput{Marker: strp("a\tb")}, fault.Validation, "1 validation error detected: Value 'a\tb' at 'marker' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0020-\\u00FF]*"},
		{kmsapi.ListKeysInput{Marker: strp("caf\u0113")}, fault.Validation, "1 validation error detected: Value 'caf\u0113' at 'marker' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0020-\\u00FF]*"},
		{kmsapi.ListKeysInput{Marker: strp("caf\u00e9")}, fault.InvalidMarker, "The marker is not valid. Pass the NextMarker of a previous response unchanged."},
	} {
		_, err := f.svc.ListKeys(f.ctx, rootA, &tc.in)
		wantErr(t, err, tc.code, tc.msg)
	}
	user := iamUser(t, acctA, "lister")
	_, err := f.svc.ListKeys(f.ctx, user, &kmsapi.ListKeysInput{})
	wantErr(t, err, fault.AccessDenied, deniedMsg(user, "kms:ListKeys", "*", noIdentityPolicy("kms:ListKeys")))
}

// One key the sweeper cannot delete (here a damaged grant record) does
// not keep the others, and their material, past their deletion date: the
// others are deleted, and the error names the key that was not.
func TestDeleteExpiredKeysGoesPastABadKey(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for range 4 {
		id := f.createKey(kmsapi.CreateKeyInput{})
		f.must2(f.svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: int32p(7)}))
		ids = append(ids, id)
	}
	bad := ids[1]
	if err := f.st.Update(f.ctx, func(tx store.Tx) error {
		return tx.Put(keyrepo.GrantKey("us-east-1", bad, "damaged"), []byte("{"))
	}); err != nil {
		t.Fatal(err)
	}
	f.advance(7 * day)
	n, err := f.svc.DeleteExpiredKeys(f.ctx)
	if n != 3 || err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("DeleteExpiredKeys = %d, %v; want 3 deleted and an error naming %s", n, err, bad)
	}
	for _, id := range ids {
		err := f.st.View(f.ctx, func(tx store.Tx) error {
			_, err := tx.Get(keyrepo.KeyKey("us-east-1", id))
			return err
		})
		if deleted := errors.Is(err, store.ErrNotFound); deleted == (id == bad) {
			t.Errorf("key %s: its record read %v (the bad key is %s)", id, err, bad)
		}
	}
}
