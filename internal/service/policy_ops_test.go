package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/service"
)

// consolePolicy is the console's default policy (reference §6.2) with the
// account statement left out, so that the key policy alone decides.
const consolePolicy = `{
  "Version": "2012-10-17",
  "Id": "key-consolepolicy-3",
  "Statement": [
    {"Sid": "Allow access for Key Administrators", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/admin"},
     "Action": ["kms:Create*","kms:Describe*","kms:Enable*","kms:List*","kms:Put*","kms:Update*","kms:Revoke*","kms:Disable*","kms:Get*","kms:Delete*","kms:TagResource","kms:UntagResource","kms:ScheduleKeyDeletion","kms:CancelKeyDeletion"],
     "Resource": "*"},
    {"Sid": "Allow use of the key", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/app"},
     "Action": ["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"], "Resource": "*"}
  ]
}`

// The key policy separates key administrators, who manage the key but
// cannot use it, from key users, who use it but cannot manage it.
func TestPolicySeparatesAdministratorsFromUsers(t *testing.T) {
	f := newFixture(t)
	admin := iamUser(t, acctA, "admin", identityAllow("kms:CreateKey", "kms:CreateAlias"))
	app := iamUser(t, acctA, "app", identityAllow("kms:CreateAlias"))
	id := f.createKeyAs(admin, kmsapi.CreateKeyInput{Policy: strp(consolePolicy)})
	arn := keyARN(acctA, id)
	enc, err := f.svc.Encrypt(f.ctx, app, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")})
	if err != nil {
		t.Fatalf("the key user cannot encrypt: %v", err)
	}
	type call func(c service.Caller) error
	undo := func(calls ...call) call {
		return func(c service.Caller) error {
			for _, fn := range calls {
				if err := fn(admin); err != nil {
					return err
				}
			}
			return nil
		}
	}
	enable := func(c service.Caller) error {
		_, err := f.svc.EnableKey(f.ctx, c, &kmsapi.KeyIDInput{KeyID: id})
		return err
	}
	cancel := func(c service.Caller) error {
		_, err := f.svc.CancelKeyDeletion(f.ctx, c, &kmsapi.KeyIDInput{KeyID: id})
		return err
	}
	for _, tc := range []struct {
		action     string
		admin      bool // allowed to the administrator; else to the user
		both       bool
		call       call
		afterwards call
	}{
		{action: "kms:DescribeKey", both: true, call: func(c service.Caller) error {
			_, err := f.svc.DescribeKey(f.ctx, c, &kmsapi.DescribeKeyInput{KeyID: id})
			return err
		}},
		{action: "kms:Encrypt", call: func(c service.Caller) error {
			_, err := f.svc.Encrypt(f.ctx, c, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")})
			return err
		}},
		{action: "kms:Decrypt", call: func(c service.Caller) error {
			_, err := f.svc.Decrypt(f.ctx, c, &kmsapi.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyID: id})
			return err
		}},
		{action: "kms:GenerateDataKey", call: func(c service.Caller) error {
			_, err := f.svc.GenerateDataKey(f.ctx, c, &kmsapi.GenerateDataKeyInput{KeyID: id, KeySpec: "AES_256"})
			return err
		}},
		{action: "kms:DisableKey", admin: true, afterwards: undo(enable), call: func(c service.Caller) error {
			_, err := f.svc.DisableKey(f.ctx, c, &kmsapi.KeyIDInput{KeyID: id})
			return err
		}},
		{action: "kms:ScheduleKeyDeletion", admin: true, afterwards: undo(cancel, enable), call: func(c service.Caller) error {
			_, err := f.svc.ScheduleKeyDeletion(f.ctx, c, &kmsapi.ScheduleKeyDeletionInput{KeyID: id})
			return err
		}},
		{action: "kms:TagResource", admin: true, call: func(c service.Caller) error {
			_, err := f.svc.TagResource(f.ctx, c, &kmsapi.TagResourceInput{KeyID: id, Tags: []kmsapi.Tag{{TagKey: "k", TagValue: "v"}}})
			return err
		}},
		{action: "kms:UpdateKeyDescription", admin: true, call: func(c service.Caller) error {
			_, err := f.svc.UpdateKeyDescription(f.ctx, c, &kmsapi.UpdateKeyDescriptionInput{KeyID: id, Description: strp("d")})
			return err
		}},
		{action: "kms:GetKeyPolicy", admin: true, call: func(c service.Caller) error {
			_, err := f.svc.GetKeyPolicy(f.ctx, c, &kmsapi.GetKeyPolicyInput{KeyID: id})
			return err
		}},
		{action: "kms:PutKeyPolicy", admin: true, call: func(c service.Caller) error {
			_, err := f.svc.PutKeyPolicy(f.ctx, c, &kmsapi.PutKeyPolicyInput{KeyID: id, Policy: strp(consolePolicy)})
			return err
		}},
		{action: "kms:EnableKeyRotation", admin: true, call: func(c service.Caller) error {
			_, err := f.svc.EnableKeyRotation(f.ctx, c, &kmsapi.EnableKeyRotationInput{KeyID: id})
			return err
		}},
		{action: "kms:ListGrants", admin: true, call: func(c service.Caller) error {
			_, err := f.svc.ListGrants(f.ctx, c, &kmsapi.ListGrantsInput{KeyID: id})
			return err
		}},
		{action: "kms:CreateAlias", admin: true, call: func(c service.Caller) error {
			_, err := f.svc.CreateAlias(f.ctx, c, &kmsapi.AliasInput{AliasName: "alias/" + c.Principal.Username, TargetKeyID: id})
			return err
		}},
	} {
		t.Run(tc.action, func(t *testing.T) {
			for _, c := range []service.Caller{admin, app} {
				allowed := tc.both || tc.admin == (c.ARN == admin.ARN)
				before := f.snapshot()
				err := tc.call(c)
				if allowed {
					if err != nil {
						t.Fatalf("%s refused to %s: %v", tc.action, c.ARN, err)
					}
					if tc.afterwards != nil {
						f.must(tc.afterwards(c))
					}
					continue
				}
				wantErr(t, err, fault.AccessDenied, deniedMsg(c, tc.action, arn, noResourcePolicy(tc.action)))
				if !sameRecords(before, f.snapshot()) {
					t.Fatalf("a refused %s changed the store", tc.action)
				}
			}
		})
	}
}

func TestPutKeyPolicy(t *testing.T) {
	f := newFixture(t)
	exists := map[string]string{"arn:aws:iam::111122223333:user/real": "AIDAreal", "arn:aws:iam::111122223333:role/real": "AROAREAL"}
	f.svc = f.newService(service.Config{PrincipalID: func(_ context.Context, arn string) (string, error) { return exists[arn], nil }})
	id := f.createKey(kmsapi.CreateKeyInput{})
	arn := keyARN(acctA, id)
	get := func() string {
		out, err := f.svc.GetKeyPolicy(f.ctx, rootA, &kmsapi.GetKeyPolicyInput{KeyID: arn, PolicyName: "default"})
		if err != nil {
			t.Fatal(err)
		}
		return out.Policy
	}
	original := get()
	withAccount := func(extra string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}` + extra + `]}`
	}
	user := iamUser(t, acctA, "u")
	denier := iamUser(t, acctA, "denier", allowAll, `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:PutKeyPolicy","Resource":"*"}]}`)
	for _, tc := range []struct {
		name   string
		caller service.Caller
		in     kmsapi.PutKeyPolicyInput
		code   fault.Code
		msg    string
	}{
		{"lockout", rootA, kmsapi.PutKeyPolicyInput{Policy: strp(policyFor("arn:aws:iam::111122223333:user/real", "kms:*"))}, fault.MalformedPolicyDocument,
			"The new key policy will not allow you to update the key policy in the future."},
		{"lockout by an explicit deny", rootA, kmsapi.PutKeyPolicyInput{Policy: strp(withAccount(`,{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:PutKeyPolicy","Resource":"*"}`))},
			fault.MalformedPolicyDocument, "The new key policy will not allow you to update the key policy in the future."},
		{"user that does not exist", rootA, kmsapi.PutKeyPolicyInput{Policy: strp(withAccount(`,{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/ghost"},"Action":"kms:Encrypt","Resource":"*"}`))},
			fault.MalformedPolicyDocument, "Policy contains a statement with one or more invalid principals."},
		{"a group is no principal", rootA, kmsapi.PutKeyPolicyInput{Policy: strp(withAccount(`,{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:group/admins"},"Action":"kms:Encrypt","Resource":"*"}`))},
			fault.MalformedPolicyDocument, "Policy contains a statement with one or more invalid principals."},
		{"not an ARN", rootA, kmsapi.PutKeyPolicyInput{Policy: strp(withAccount(`,{"Effect":"Allow","Principal":{"AWS":"somebody"},"Action":"kms:Encrypt","Resource":"*"}`))},
			fault.MalformedPolicyDocument, "Policy contains a statement with one or more invalid principals."},
		{"no policy", rootA, kmsapi.PutKeyPolicyInput{}, fault.Validation,
			"1 validation error detected: Value null at 'policy' failed to satisfy constraint: Member must not be null"},
		{"another policy name", rootA, kmsapi.PutKeyPolicyInput{PolicyName: "other", Policy: strp(withAccount(""))}, fault.NotFound, "No such policy exists"},
		{"malformed policy name", rootA, kmsapi.PutKeyPolicyInput{PolicyName: "bad-name", Policy: strp(withAccount(""))}, fault.Validation,
			"1 validation error detected: Value 'bad-name' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]+"},
		{"user without permission", user, kmsapi.PutKeyPolicyInput{Policy: strp(withAccount(""))}, fault.AccessDenied,
			deniedMsg(user, "kms:PutKeyPolicy", arn, noIdentityPolicy("kms:PutKeyPolicy"))},
		{"explicit deny in an identity policy", denier, kmsapi.PutKeyPolicyInput{Policy: strp(withAccount(""))}, fault.AccessDenied,
			deniedMsg(denier, "kms:PutKeyPolicy", arn, "with an explicit deny in an identity-based policy")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.KeyID = id
			before := f.snapshot()
			_, err := f.svc.PutKeyPolicy(f.ctx, tc.caller, &tc.in)
			wantErr(t, err, tc.code, tc.msg)
			if !sameRecords(before, f.snapshot()) || get() != original {
				t.Fatal("a refused PutKeyPolicy changed the key")
			}
		})
	}
	// Principals that exist, an assumed role and another account are
	// accepted, and the document is kept as given, and shown in AWS's
	// layout.
	valid := withAccount(`,{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/real","arn:aws:iam::111122223333:role/real",` +
		`"arn:aws:sts::111122223333:assumed-role/real/session","arn:aws:iam::444455556666:root"]},"Action":"kms:Encrypt","Resource":"*"}`)
	f.must2(f.svc.PutKeyPolicy(f.ctx, rootA, &kmsapi.PutKeyPolicyInput{KeyID: id, Policy: strp(valid)}))
	if got := get(); got != policy.Pretty(valid) {
		t.Fatalf("GetKeyPolicy = %s, want what was put in AWS's layout", got)
	}
	var rec keyrepo.KeyRecord
	if err := json.Unmarshal([]byte(f.snapshot()[string(keyrepo.KeyKey(region, id))]), &rec); err != nil || rec.Policy != valid {
		t.Fatalf("the key record holds the policy %q (%v), want it as put", rec.Policy, err)
	}
	// With the check bypassed the caller can lock itself out, and is.
	f.must2(f.svc.PutKeyPolicy(f.ctx, rootA, &kmsapi.PutKeyPolicyInput{KeyID: id, BypassPolicyLockoutSafetyCheck: true,
		Policy: strp(policyFor("arn:aws:iam::111122223333:user/real", "kms:*"))}))
	_, err := f.svc.GetKeyPolicy(f.ctx, rootA, &kmsapi.GetKeyPolicyInput{KeyID: id})
	wantErr(t, err, fault.AccessDenied, deniedMsg(rootA, "kms:GetKeyPolicy", arn, noResourcePolicy("kms:GetKeyPolicy")))
	real := iamUser(t, acctA, "real")
	if _, err := f.svc.GetKeyPolicy(f.ctx, real, &kmsapi.GetKeyPolicyInput{KeyID: id}); err != nil {
		t.Fatalf("the principal the policy names: %v", err)
	}
	// A user of the same name made after the policy was put is another
	// principal: the policy does not name it.
	again := iamUser(t, acctA, "real")
	again.Principal.UserID = "AIDAREMADE"
	_, err = f.svc.GetKeyPolicy(f.ctx, again, &kmsapi.GetKeyPolicyInput{KeyID: id})
	wantErr(t, err, fault.AccessDenied, deniedMsg(again, "kms:GetKeyPolicy", arn, noResourcePolicy("kms:GetKeyPolicy")))
}

func TestListKeyPolicies(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	out, err := f.svc.ListKeyPolicies(f.ctx, rootA, &kmsapi.ListKeyPoliciesInput{KeyID: id})
	if err != nil || len(out.PolicyNames) != 1 || out.PolicyNames[0] != "default" || out.Truncated || out.NextMarker != "" {
		t.Fatalf("ListKeyPolicies = %+v, %v", out, err)
	}
	_, err = f.svc.ListKeyPolicies(f.ctx, rootA, &kmsapi.ListKeyPoliciesInput{KeyID: id, Marker: strp("x")})
	wantErr(t, err, fault.InvalidMarker, "The marker is not valid. Pass the NextMarker of a previous response unchanged.")
	user := iamUser(t, acctA, "u")
	_, err = f.svc.ListKeyPolicies(f.ctx, user, &kmsapi.ListKeyPoliciesInput{KeyID: id})
	wantErr(t, err, fault.AccessDenied, deniedMsg(user, "kms:ListKeyPolicies", keyARN(acctA, id), noIdentityPolicy("kms:ListKeyPolicies")))
	_, err = f.svc.GetKeyPolicy(f.ctx, rootA, &kmsapi.GetKeyPolicyInput{KeyID: id, PolicyName: "other"})
	wantErr(t, err, fault.NotFound, "No such policy exists")
}

// With the default key policy, the account's identity policies decide for
// its users: what they allow, under their conditions.
func TestIdentityPolicyConditions(t *testing.T) {
	f := newFixture(t)
	tagged := f.createKey(kmsapi.CreateKeyInput{Tags: []kmsapi.Tag{{TagKey: "team", TagValue: "blue"}}})
	plain := f.createKey(kmsapi.CreateKeyInput{})
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/good", TargetKeyID: tagged}))
	epoch := f.now.Unix()
	type req struct {
		ident string
		ec    map[string]string
		ip    string
	}
	for _, tc := range []struct {
		name      string
		condition string
		allow     []req
		deny      []req
	}{
		{"encryption context value", `{"StringEquals":{"kms:EncryptionContext:app":"a"}}`,
			[]req{{ident: tagged, ec: map[string]string{"App": "a"}}}, []req{{ident: tagged, ec: map[string]string{"app": "b"}}, {ident: tagged}}},
		{"encryption context keys", `{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":["app"]}}`,
			[]req{{ident: tagged, ec: map[string]string{"app": "x", "y": "z"}}}, []req{{ident: tagged}, {ident: tagged, ec: map[string]string{"other": "x"}}}},
		{"request alias", `{"StringEquals":{"kms:RequestAlias":"alias/good"}}`,
			[]req{{ident: "alias/good"}, {ident: "arn:aws:kms:us-east-1:111122223333:alias/good"}}, []req{{ident: tagged}}},
		{"resource aliases", `{"ForAnyValue:StringEquals":{"kms:ResourceAliases":"alias/good"}}`,
			[]req{{ident: tagged}}, []req{{ident: plain}}},
		{"source IP", `{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`,
			[]req{{ident: plain, ip: "10.1.2.3"}}, []req{{ident: plain, ip: "192.168.0.1"}, {ident: plain}}},
		{"resource tag", `{"StringEquals":{"aws:ResourceTag/Team":"blue"}}`,
			[]req{{ident: tagged}}, []req{{ident: plain}}},
		{"key properties", `{"StringEquals":{"kms:KeySpec":"SYMMETRIC_DEFAULT","kms:KeyUsage":"ENCRYPT_DECRYPT","kms:KeyOrigin":"AWS_KMS"},"Bool":{"kms:MultiRegion":"false"}}`,
			[]req{{ident: plain}}, nil},
		{"another origin", `{"StringEquals":{"kms:KeyOrigin":"EXTERNAL"}}`, nil, []req{{ident: plain}}},
		{"secure transport", `{"Bool":{"aws:SecureTransport":"false"}}`, []req{{ident: plain}}, nil},
		{"current time after", `{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}`, []req{{ident: plain}}, nil},
		{"current time before", `{"DateLessThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}`, nil, []req{{ident: plain}}},
		{"epoch time", `{"NumericLessThanEquals":{"aws:EpochTime":"` + strconv.FormatInt(epoch, 10) + `"}}`, []req{{ident: plain}}, nil},
		{"epoch time passed", `{"NumericLessThan":{"aws:EpochTime":"` + strconv.FormatInt(epoch, 10) + `"}}`, nil, []req{{ident: plain}}},
		{"encryption algorithm", `{"StringEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}`, []req{{ident: plain}}, nil},
		{"caller account", `{"StringEquals":{"kms:CallerAccount":"111122223333"}}`, []req{{ident: plain}}, nil},
		{"another caller account", `{"StringEquals":{"kms:CallerAccount":"444455556666"}}`, nil, []req{{ident: plain}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*","Condition":` + tc.condition + `}]}`
			c := iamUser(t, acctA, "c", doc)
			encrypt := func(r req) error {
				c.SourceIP = r.ip
				_, err := f.svc.Encrypt(f.ctx, c, &kmsapi.EncryptInput{KeyID: r.ident, Plaintext: []byte("p"), EncryptionContext: r.ec})
				return err
			}
			for _, r := range tc.allow {
				if err := encrypt(r); err != nil {
					t.Fatalf("%+v refused: %v", r, err)
				}
			}
			for _, r := range tc.deny { // each names its key by id
				wantErr(t, encrypt(r), fault.AccessDenied, deniedMsg(c, "kms:Encrypt", keyARN(acctA, r.ident), noIdentityPolicy("kms:Encrypt")))
			}
		})
	}
}

// CreateKey is decided by identity policies alone, on the request's
// properties, and with tags also needs kms:TagResource.
func TestCreateKeyConditions(t *testing.T) {
	f := newFixture(t)
	blue := []kmsapi.Tag{{TagKey: "team", TagValue: "blue"}}
	for _, tc := range []struct {
		name      string
		condition string
		in        kmsapi.CreateKeyInput
		allow     bool
	}{
		{"request tag", `{"StringEquals":{"aws:RequestTag/team":"blue"}}`, kmsapi.CreateKeyInput{Tags: blue}, true},
		{"request tag of another value", `{"StringEquals":{"aws:RequestTag/team":"blue"}}`, kmsapi.CreateKeyInput{Tags: []kmsapi.Tag{{TagKey: "team", TagValue: "red"}}}, false},
		{"tag keys", `{"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}`, kmsapi.CreateKeyInput{Tags: blue}, true},
		{"tag keys beyond", `{"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}`, kmsapi.CreateKeyInput{Tags: append(blue, kmsapi.Tag{TagKey: "cost"})}, false},
		{"effective key spec", `{"StringEquals":{"kms:KeySpec":"SYMMETRIC_DEFAULT","kms:KeyUsage":"ENCRYPT_DECRYPT","kms:KeyOrigin":"AWS_KMS"}}`, kmsapi.CreateKeyInput{}, true},
		{"another key spec", `{"StringEquals":{"kms:KeySpec":"SYMMETRIC_DEFAULT"}}`, kmsapi.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"}, false},
		{"no bypass", `{"Bool":{"kms:BypassPolicyLockoutSafetyCheck":"false"}}`, kmsapi.CreateKeyInput{}, true},
		{"bypass", `{"Bool":{"kms:BypassPolicyLockoutSafetyCheck":"false"}}`, kmsapi.CreateKeyInput{BypassPolicyLockoutSafetyCheck: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := iamUser(t, acctA, "creator", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:CreateKey","kms:TagResource"],"Resource":"*","Condition":`+tc.condition+`}]}`)
			_, err := f.svc.CreateKey(f.ctx, c, &tc.in)
			if tc.allow && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.allow {
				wantErr(t, err, fault.AccessDenied, deniedMsg(c, "kms:CreateKey", "*", noIdentityPolicy("kms:CreateKey")))
			}
		})
	}
}

func TestExplicitDenyWins(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{Policy: strp(`{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
	  {"Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*","Condition":{"Null":{"kms:EncryptionContext:tenant":"true"}}}]}`)})
	arn := keyARN(acctA, id)
	blob := func(ec map[string]string) []byte {
		out, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p"), EncryptionContext: ec})
		if err != nil {
			t.Fatal(err)
		}
		return out.CiphertextBlob
	}
	_, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: blob(nil), KeyID: id})
	wantErr(t, err, fault.AccessDenied, deniedMsg(rootA, "kms:Decrypt", arn, "with an explicit deny in a resource-based policy"))
	// Without KeyId, the key is the blob's: a caller of its account is
	// told why too.
	_, err = f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: blob(nil)})
	wantErr(t, err, fault.AccessDenied, deniedMsg(rootA, "kms:Decrypt", arn, "with an explicit deny in a resource-based policy"))
	ec := map[string]string{"tenant": "t"}
	if _, err := f.svc.Decrypt(f.ctx, rootA, &kmsapi.DecryptInput{CiphertextBlob: blob(ec), EncryptionContext: ec}); err != nil {
		t.Fatalf("Decrypt with the context the deny asks for: %v", err)
	}
	// A grant cannot override a deny either.
	user := iamUser(t, acctA, "granted", allowAll, `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:Encrypt","Resource":"`+arn+`"}]}`)
	f.grant(rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: user.ARN, Operations: []string{"Encrypt"}})
	_, err = f.svc.Encrypt(f.ctx, user, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")})
	wantErr(t, err, fault.AccessDenied, deniedMsg(user, "kms:Encrypt", arn, "with an explicit deny in an identity-based policy"))
}

// A key policy that names another account lets that account's root, and
// those of its users its identity policies allow, use the key by its ARN.
func TestCrossAccountKeyPolicy(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{Policy: strp(`{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":["kms:Encrypt","kms:DescribeKey","kms:CreateGrant"],"Resource":"*"}]}`)})
	arn := keyARN(acctA, id)
	rootB := accountRoot(acctB)
	allowedB := iamUser(t, acctB, "allowed", allowAll)
	plainB := iamUser(t, acctB, "plain")
	encrypt := func(c service.Caller, ident string) error {
		_, err := f.svc.Encrypt(f.ctx, c, &kmsapi.EncryptInput{KeyID: ident, Plaintext: []byte("p")})
		return err
	}
	for _, c := range []service.Caller{rootB, allowedB} {
		if err := encrypt(c, arn); err != nil {
			t.Fatalf("%s: %v", c.ARN, err)
		}
	}
	wantErr(t, encrypt(plainB, arn), fault.AccessDenied, deniedMsg(plainB, "kms:Encrypt", arn, noIdentityPolicy("kms:Encrypt")))
	_, err := f.svc.GenerateDataKey(f.ctx, rootB, &kmsapi.GenerateDataKeyInput{KeyID: arn, KeySpec: "AES_256"})
	wantErr(t, err, fault.AccessDenied, deniedMsg(rootB, "kms:GenerateDataKey", arn, noResourcePolicy("kms:GenerateDataKey")))
	if _, err := f.svc.CreateGrant(f.ctx, rootB, &kmsapi.CreateGrantInput{KeyID: arn, GranteePrincipal: allowedB.ARN, Operations: []string{"Encrypt"}}); err != nil {
		t.Fatalf("CreateGrant across accounts: %v", err)
	}
	// Management operations are not among those AWS allows across accounts.
	_, err = f.svc.ScheduleKeyDeletion(f.ctx, rootB, &kmsapi.ScheduleKeyDeletionInput{KeyID: arn})
	wantErr(t, err, fault.NotFound, "Key '"+arn+"' does not exist")
	_, err = f.svc.GetKeyPolicy(f.ctx, rootB, &kmsapi.GetKeyPolicyInput{KeyID: arn})
	wantErr(t, err, fault.NotFound, "Key '"+arn+"' does not exist")
	// As on AWS, the other account may name the key by its alias ARN, but
	// not by its alias name, which names an alias of its own.
	f.must2(f.svc.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/shared", TargetKeyID: id}))
	if err := encrypt(rootB, "arn:aws:kms:us-east-1:111122223333:alias/shared"); err != nil {
		t.Fatalf("Encrypt by alias ARN across accounts: %v", err)
	}
	wantErr(t, encrypt(rootB, "alias/shared"), fault.NotFound, "Alias arn:aws:kms:us-east-1:444455556666:alias/shared is not found.")
	_, err = f.svc.DisableKey(f.ctx, rootB, &kmsapi.KeyIDInput{KeyID: "arn:aws:kms:us-east-1:111122223333:alias/shared"})
	wantErr(t, err, fault.NotFound, "Invalid keyId 'arn:aws:kms:us-east-1:111122223333:alias/shared'")
}

// An assumed-role session is allowed what the key policy or a grant gives
// its role.
func TestAssumedRoleSession(t *testing.T) {
	f := newFixture(t)
	role := "arn:aws:iam::111122223333:role/deployer"
	id := f.createKey(kmsapi.CreateKeyInput{Policy: strp(`{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
	  {"Effect":"Allow","Principal":{"AWS":"` + role + `"},"Action":"kms:DescribeKey","Resource":"*"}]}`)})
	session := iamUser(t, acctA, "x")
	session.ARN = "arn:aws:sts::111122223333:assumed-role/deployer/s1"
	session.Principal.ARN, session.Principal.RoleARN, session.Principal.Username = session.ARN, role, ""
	if _, err := f.svc.DescribeKey(f.ctx, session, &kmsapi.DescribeKeyInput{KeyID: id}); err != nil {
		t.Fatalf("DescribeKey allowed to the role: %v", err)
	}
	_, err := f.svc.Encrypt(f.ctx, session, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")})
	wantErr(t, err, fault.AccessDenied, deniedMsg(session, "kms:Encrypt", keyARN(acctA, id), noIdentityPolicy("kms:Encrypt")))
	g := f.grant(rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: role, RetiringPrincipal: role, Operations: []string{"Encrypt"}})
	if _, err := f.svc.Encrypt(f.ctx, session, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")}); err != nil {
		t.Fatalf("Encrypt granted to the role: %v", err)
	}
	f.must2(f.svc.RetireGrant(f.ctx, session, &kmsapi.RetireGrantInput{GrantToken: g.GrantToken}))
	if ids := f.grantIDs(id); len(ids) != 0 {
		t.Fatalf("the role's session did not retire the grant: %v", ids)
	}
}

// Each operation gives the policy engine its own condition keys: a policy
// that tests one allows the request that meets it and not the one that
// does not.
func TestOperationConditionKeys(t *testing.T) {
	f := newFixture(t)
	sym := f.createKey(kmsapi.CreateKeyInput{})
	ecc := f.createKey(kmsapi.CreateKeyInput{KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY"})
	mac := f.createKey(kmsapi.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "GENERATE_VERIFY_MAC"})
	external := f.createKey(kmsapi.CreateKeyInput{Origin: "EXTERNAL"})
	type call func(c service.Caller, meets bool) error
	pick := func(meets bool, yes, no string) string {
		if meets {
			return yes
		}
		return no
	}
	for _, tc := range []struct {
		action, condition string
		key               string
		call              call
	}{
		{"kms:CreateGrant", `{"ForAllValues:StringEquals":{"kms:GrantOperations":["Encrypt","Decrypt"]},"StringLike":{"kms:GranteePrincipal":"arn:aws:iam::111122223333:user/app-*"}}`, sym,
			func(c service.Caller, meets bool) error {
				_, err := f.svc.CreateGrant(f.ctx, c, &kmsapi.CreateGrantInput{KeyID: sym, GranteePrincipal: pick(meets, "arn:aws:iam::111122223333:user/app-1", "arn:aws:iam::111122223333:user/other"),
					Operations: []string{"Encrypt"}})
				return err
			}},
		{"kms:CreateGrant", `{"ForAllValues:StringEquals":{"kms:GrantOperations":["Encrypt","Decrypt"]}}`, sym,
			func(c service.Caller, meets bool) error {
				_, err := f.svc.CreateGrant(f.ctx, c, &kmsapi.CreateGrantInput{KeyID: sym, GranteePrincipal: "arn:aws:iam::111122223333:user/g",
					Operations: []string{"Encrypt", pick(meets, "Decrypt", "GenerateDataKey")}})
				return err
			}},
		{"kms:CreateGrant", `{"StringEquals":{"kms:GrantConstraintType":"EncryptionContextEquals","kms:RetiringPrincipal":"arn:aws:iam::111122223333:user/r"}}`, sym,
			func(c service.Caller, meets bool) error {
				in := &kmsapi.CreateGrantInput{KeyID: sym, GranteePrincipal: "arn:aws:iam::111122223333:user/g", RetiringPrincipal: "arn:aws:iam::111122223333:user/r",
					Operations: []string{"Decrypt"}, Constraints: &kmsapi.GrantConstraints{EncryptionContextSubset: map[string]string{"a": "b"}}}
				if meets {
					in.Constraints = &kmsapi.GrantConstraints{EncryptionContextEquals: map[string]string{"a": "b"}}
				}
				_, err := f.svc.CreateGrant(f.ctx, c, in)
				return err
			}},
		{"kms:ScheduleKeyDeletion", `{"NumericGreaterThanEquals":{"kms:ScheduleKeyDeletionPendingWindowInDays":"14"}}`, sym,
			func(c service.Caller, meets bool) error {
				days := int32(7)
				if meets {
					days = 14
				}
				_, err := f.svc.ScheduleKeyDeletion(f.ctx, c, &kmsapi.ScheduleKeyDeletionInput{KeyID: sym, PendingWindowInDays: &days})
				if err == nil {
					f.must2(f.svc.CancelKeyDeletion(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: sym}))
					f.must2(f.svc.EnableKey(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: sym}))
				}
				return err
			}},
		{"kms:EnableKeyRotation", `{"NumericLessThanEquals":{"kms:RotationPeriodInDays":"180"}}`, sym,
			func(c service.Caller, meets bool) error {
				days := int32(365)
				if meets {
					days = 90
				}
				_, err := f.svc.EnableKeyRotation(f.ctx, c, &kmsapi.EnableKeyRotationInput{KeyID: sym, RotationPeriodInDays: &days})
				return err
			}},
		{"kms:Sign", `{"StringEquals":{"kms:SigningAlgorithm":"ECDSA_SHA_256","kms:MessageType":"DIGEST"}}`, ecc,
			func(c service.Caller, meets bool) error {
				in := &kmsapi.SignInput{KeyID: ecc, Message: []byte("raw message"), SigningAlgorithm: "ECDSA_SHA_256"}
				if meets {
					in.Message, in.MessageType = make([]byte, 32), "DIGEST"
				}
				_, err := f.svc.Sign(f.ctx, c, in)
				return err
			}},
		{"kms:GenerateMac", `{"StringEquals":{"kms:MacAlgorithm":"HMAC_SHA_256"}}`, mac,
			func(c service.Caller, meets bool) error {
				alg := pick(meets, "HMAC_SHA_256", "HMAC_SHA_512")
				_, err := f.svc.GenerateMac(f.ctx, c, &kmsapi.GenerateMacInput{KeyID: mac, Message: []byte("m"), MacAlgorithm: alg})
				return err
			}},
		{"kms:GenerateDataKeyPair", `{"StringEquals":{"kms:DataKeyPairSpec":"ECC_NIST_P256"}}`, sym,
			func(c service.Caller, meets bool) error {
				_, err := f.svc.GenerateDataKeyPair(f.ctx, c, &kmsapi.GenerateDataKeyPairInput{KeyID: sym, KeyPairSpec: pick(meets, "ECC_NIST_P256", "ECC_NIST_P384")})
				return err
			}},
		{"kms:GetParametersForImport", `{"StringEquals":{"kms:WrappingAlgorithm":"RSA_AES_KEY_WRAP_SHA_256","kms:WrappingKeySpec":"RSA_2048"}}`, external,
			func(c service.Caller, meets bool) error {
				_, err := f.svc.GetParametersForImport(f.ctx, c, &kmsapi.GetParametersForImportInput{KeyID: external,
					WrappingAlgorithm: pick(meets, "RSA_AES_KEY_WRAP_SHA_256", "RSAES_OAEP_SHA_1"), WrappingKeySpec: "RSA_2048"})
				return err
			}},
	} {
		t.Run(tc.action+" "+tc.condition, func(t *testing.T) {
			doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"` + tc.action + `","Resource":"*","Condition":` + tc.condition + `}]}`
			c := iamUser(t, acctA, "conditional", doc)
			if err := tc.call(c, true); err != nil {
				t.Fatalf("the request that meets the condition: %v", err)
			}
			wantErr(t, tc.call(c, false), fault.AccessDenied, deniedMsg(c, tc.action, keyARN(acctA, tc.key), noIdentityPolicy(tc.action)))
		})
	}
}

// AWS's recommended guard on the lockout bypass: an identity policy that
// denies PutKeyPolicy when the bypass is asked for.
func TestBypassLockoutGuard(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	c := iamUser(t, acctA, "guarded", allowAll, `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["kms:CreateKey","kms:PutKeyPolicy"],"Resource":"*",
	  "Condition":{"Bool":{"kms:BypassPolicyLockoutSafetyCheck":"true"}}}]}`)
	doc := strp(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}]}`)
	f.must2(f.svc.PutKeyPolicy(f.ctx, c, &kmsapi.PutKeyPolicyInput{KeyID: id, Policy: doc}))
	_, err := f.svc.PutKeyPolicy(f.ctx, c, &kmsapi.PutKeyPolicyInput{KeyID: id, Policy: doc, BypassPolicyLockoutSafetyCheck: true})
	wantErr(t, err, fault.AccessDenied, deniedMsg(c, "kms:PutKeyPolicy", keyARN(acctA, id), "with an explicit deny in an identity-based policy"))
	f.must2(f.svc.CreateKey(f.ctx, c, &kmsapi.CreateKeyInput{Policy: doc}))
	_, err = f.svc.CreateKey(f.ctx, c, &kmsapi.CreateKeyInput{Policy: doc, BypassPolicyLockoutSafetyCheck: true})
	wantErr(t, err, fault.AccessDenied, deniedMsg(c, "kms:CreateKey", "*", "with an explicit deny in an identity-based policy"))
}

// The lockout check judges the caller's later PutKeyPolicy as it would be
// made, without the bypass: an identity policy that allows PutKeyPolicy
// only when kms:BypassPolicyLockoutSafetyCheck is false still lets the
// caller in, so the new key policy is accepted.
func TestLockoutCheckSeesNoBypass(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	c := iamUser(t, acctA, "careful", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:PutKeyPolicy","Resource":"*",
	  "Condition":{"Bool":{"kms:BypassPolicyLockoutSafetyCheck":"false"}}}]}`)
	doc := strp(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}]}`)
	f.must2(f.svc.PutKeyPolicy(f.ctx, c, &kmsapi.PutKeyPolicyInput{KeyID: id, Policy: doc}))
}

// TestPrincipalLookupFailure: when the directory cannot be read, a key
// policy or grant that names a user is refused, not stored unbound (which
// would name no one, or anyone of that name).
func TestPrincipalLookupFailure(t *testing.T) {
	f := newFixture(t)
	user := "arn:aws:iam::111122223333:user/real"
	f.svc = f.newService(service.Config{PrincipalID: func(context.Context, string) (string, error) { return "", errors.New("directory unreadable") }})
	id := f.createKey(kmsapi.CreateKeyInput{})
	before, err := f.svc.GetKeyPolicy(f.ctx, rootA, &kmsapi.GetKeyPolicyInput{KeyID: id})
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},` +
		`{"Effect":"Allow","Principal":{"AWS":"` + user + `"},"Action":"kms:Encrypt","Resource":"*"}]}`
	if _, err := f.svc.PutKeyPolicy(f.ctx, rootA, &kmsapi.PutKeyPolicyInput{KeyID: id, Policy: strp(doc)}); err == nil {
		t.Fatal("PutKeyPolicy succeeded without reading the principal")
	}
	if after, _ := f.svc.GetKeyPolicy(f.ctx, rootA, &kmsapi.GetKeyPolicyInput{KeyID: id}); after.Policy != before.Policy {
		t.Fatal("a refused PutKeyPolicy changed the policy")
	}
	if _, err := f.svc.CreateGrant(f.ctx, rootA, &kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: user, Operations: []string{"Encrypt"}}); err == nil {
		t.Fatal("CreateGrant succeeded without reading the grantee")
	}
	out, err := f.svc.ListGrants(f.ctx, rootA, &kmsapi.ListGrantsInput{KeyID: id})
	if err != nil || len(out.Grants) != 0 {
		t.Fatalf("grants after a refused CreateGrant: %v %v", out, err)
	}
}
