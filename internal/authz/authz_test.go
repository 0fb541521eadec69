package authz_test

import (
	"context"
	"testing"

	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
)

func TestKeyPolicies(t *testing.T) {
	a, _, _ := newAuthorizer()
	allowEncrypt := identityDoc("Allow", "kms:Encrypt")
	allowAll := identityDoc("Allow", "kms:*")
	denyDecrypt := identityDoc("Deny", "kms:Decrypt")
	aliceA := `"` + userARN(acctA, "alice") + `"`
	for _, tc := range []struct {
		name   string
		caller *authz.Caller
		doc    string // key policy of a key of account A
		action string
		why    string // "" allows
	}{
		// The account delegates to IAM: its root may, its users need an
		// identity policy.
		{"root of the key's account", root(acctA), delegate(acctA), "kms:Encrypt", ""},
		{"user without identity policies", user(t, acctA, "alice"), delegate(acctA), "kms:Encrypt", noIdentity("kms:Encrypt")},
		{"user whose identity policy allows", user(t, acctA, "alice", allowEncrypt), delegate(acctA), "kms:Encrypt", ""},
		{"user whose identity policy allows another action", user(t, acctA, "alice", allowEncrypt), delegate(acctA), "kms:Decrypt", noIdentity("kms:Decrypt")},
		{"user, one of several identity policies allows", user(t, acctA, "alice", identityDoc("Allow", "kms:Sign"), allowEncrypt), delegate(acctA), "kms:Encrypt", ""},
		{"identity policy for another resource", user(t, acctA, "alice",
			`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:us-east-1:111122223333:key/other"}]}`),
			delegate(acctA), "kms:Encrypt", noIdentity("kms:Encrypt")},
		{"role session whose identity policy allows", session(t, acctA, "app", allowAll), delegate(acctA), "kms:Encrypt", ""},
		{"role session without identity policies", session(t, acctA, "app"), delegate(acctA), "kms:Encrypt", noIdentity("kms:Encrypt")},

		// Explicit denies win over every allow.
		{"identity deny beats delegation", user(t, acctA, "alice", allowAll, denyDecrypt), delegate(acctA), "kms:Decrypt", explicitIdentityDeny},
		{"identity deny beats a direct key policy allow", user(t, acctA, "alice", denyDecrypt),
			policyDoc(statement("Allow", aliceA, []string{"kms:*"}, "")), "kms:Decrypt", explicitIdentityDeny},
		{"identity deny of another action", user(t, acctA, "alice", allowAll, denyDecrypt), delegate(acctA), "kms:Encrypt", ""},
		{"key policy deny beats identity allow", user(t, acctA, "alice", allowAll),
			policyDoc(statement("Allow", `"arn:aws:iam::111122223333:root"`, []string{"kms:*"}, ""), statement("Deny", aliceA, []string{"kms:Decrypt"}, "")),
			"kms:Decrypt", explicitKeyDeny},
		{"key policy deny binds the root", root(acctA),
			policyDoc(statement("Allow", `"arn:aws:iam::111122223333:root"`, []string{"kms:*"}, ""), statement("Deny", `"*"`, []string{"kms:ScheduleKeyDeletion"}, "")),
			"kms:ScheduleKeyDeletion", explicitKeyDeny},
		{"key policy deny of another user", user(t, acctA, "alice", allowAll),
			policyDoc(statement("Allow", `"arn:aws:iam::111122223333:root"`, []string{"kms:*"}, ""), statement("Deny", `"`+userARN(acctA, "bob")+`"`, []string{"kms:*"}, "")),
			"kms:Decrypt", ""},

		// A key policy that names the caller itself needs no identity policy.
		{"user named in the key policy", user(t, acctA, "alice"), policyDoc(statement("Allow", aliceA, []string{"kms:Encrypt"}, "")), "kms:Encrypt", ""},
		{"user named for another action", user(t, acctA, "alice"), policyDoc(statement("Allow", aliceA, []string{"kms:Encrypt"}, "")), "kms:Decrypt", noResource("kms:Decrypt")},
		{"role named in the key policy, caller its session", session(t, acctA, "app"),
			policyDoc(statement("Allow", `"`+roleARN(acctA, "app")+`"`, []string{"kms:Encrypt"}, "")), "kms:Encrypt", ""},
		{"another role named", session(t, acctA, "app"),
			policyDoc(statement("Allow", `"`+roleARN(acctA, "other")+`"`, []string{"kms:Encrypt"}, "")), "kms:Encrypt", noResource("kms:Encrypt")},
		{"everyone named", user(t, acctA, "alice"), policyDoc(statement("Allow", `"*"`, []string{"kms:DescribeKey"}, "")), "kms:DescribeKey", ""},
		{"another user named", user(t, acctA, "alice", allowAll),
			policyDoc(statement("Allow", `"`+userARN(acctA, "bob")+`"`, []string{"kms:*"}, "")), "kms:Encrypt", noResource("kms:Encrypt")},
		{"no key policy at all", root(acctA), "", "kms:Encrypt", noResource("kms:Encrypt")},
		{"no key policy, identity policy allows", user(t, acctA, "alice", allowAll), "", "kms:Encrypt", noResource("kms:Encrypt")},

		// Across accounts: the key policy must name the other account or
		// principal, and the other account's IAM must allow too.
		{"other account's root, not named", root(acctB), delegate(acctA), "kms:Encrypt", noResource("kms:Encrypt")},
		{"other account's user, not named", user(t, acctB, "carol", allowAll), delegate(acctA), "kms:Encrypt", noResource("kms:Encrypt")},
		{"other account's root, account named", root(acctB), policyDoc(statement("Allow", `"`+acctB+`"`, []string{"kms:Encrypt"}, "")), "kms:Encrypt", ""},
		{"other account's user, account named, IAM allows", user(t, acctB, "carol", allowEncrypt),
			policyDoc(statement("Allow", `"arn:aws:iam::444455556666:root"`, []string{"kms:Encrypt"}, "")), "kms:Encrypt", ""},
		{"other account's user, account named, IAM silent", user(t, acctB, "carol"),
			policyDoc(statement("Allow", `"arn:aws:iam::444455556666:root"`, []string{"kms:Encrypt"}, "")), "kms:Encrypt", noIdentity("kms:Encrypt")},
		{"other account's user named directly, IAM allows", user(t, acctB, "carol", allowEncrypt),
			policyDoc(statement("Allow", `"`+userARN(acctB, "carol")+`"`, []string{"kms:Encrypt"}, "")), "kms:Encrypt", ""},
		{"other account's user named directly, IAM silent", user(t, acctB, "carol"),
			policyDoc(statement("Allow", `"`+userARN(acctB, "carol")+`"`, []string{"kms:Encrypt"}, "")), "kms:Encrypt", noIdentity("kms:Encrypt")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(t, acctA, tc.doc)
			checkDecision(t, a.Key(context.Background(), tc.caller, tc.action, k, nil), tc.caller, tc.action, k.ARN, tc.why)
		})
	}
}

func TestKeyGrants(t *testing.T) {
	a, _, _ := newAuthorizer()
	alice := user(t, acctA, "alice")
	app := session(t, acctA, "app")
	carol := user(t, acctB, "carol")
	subset := &kmsapi.GrantConstraints{EncryptionContextSubset: map[string]string{"purpose": "test"}}
	equals := &kmsapi.GrantConstraints{EncryptionContextEquals: map[string]string{"purpose": "test"}}
	for _, tc := range []struct {
		name   string
		caller *authz.Caller
		doc    string // key policy; the default delegation when ""
		g      *keyrepo.GrantRecord
		action string
		cond   *authz.Conditions
		why    string
	}{
		{"grantee user, listed operation", alice, "", grant(alice.ARN, nil, "Encrypt", "Decrypt"), "kms:Decrypt", nil, ""},
		{"grantee user, unlisted operation", alice, "", grant(alice.ARN, nil, "Encrypt"), "kms:Decrypt", nil, noIdentity("kms:Decrypt")},
		{"another grantee", alice, "", grant(userARN(acctA, "bob"), nil, "Decrypt"), "kms:Decrypt", nil, noIdentity("kms:Decrypt")},
		{"grant to the role, caller its session", app, "", grant(roleARN(acctA, "app"), nil, "Decrypt"), "kms:Decrypt", nil, ""},
		{"grant to the session itself", app, "", grant(app.ARN, nil, "Decrypt"), "kms:Decrypt", nil, ""},
		{"grant to another role", app, "", grant(roleARN(acctA, "other"), nil, "Decrypt"), "kms:Decrypt", nil, noIdentity("kms:Decrypt")},
		{"grant with no grantee does not match a user", alice, "", grant("", nil, "Decrypt"), "kms:Decrypt", nil, noIdentity("kms:Decrypt")},
		{"grant to another account's user", carol, "", grant(carol.ARN, nil, "Decrypt"), "kms:Decrypt", nil, ""},
		{"grant on a key without a policy", alice, "none", grant(alice.ARN, nil, "Decrypt"), "kms:Decrypt", nil, ""},
		{"grant does not beat a key policy deny", alice,
			policyDoc(statement("Allow", `"arn:aws:iam::111122223333:root"`, []string{"kms:*"}, ""), statement("Deny", `"*"`, []string{"kms:Decrypt"}, "")),
			grant(alice.ARN, nil, "Decrypt"), "kms:Decrypt", nil, explicitKeyDeny},
		{"grant does not beat an identity deny", user(t, acctA, "alice", identityDoc("Deny", "kms:Decrypt")), "",
			grant(alice.ARN, nil, "Decrypt"), "kms:Decrypt", nil, explicitIdentityDeny},

		{"subset constraint met", alice, "", grant(alice.ARN, subset, "Decrypt"), "kms:Decrypt",
			&authz.Conditions{EC: map[string]string{"Purpose": "test", "other": "x"}}, ""},
		{"subset constraint, value differs", alice, "", grant(alice.ARN, subset, "Decrypt"), "kms:Decrypt",
			&authz.Conditions{EC: map[string]string{"purpose": "TEST"}}, noIdentity("kms:Decrypt")},
		{"subset constraint, no context", alice, "", grant(alice.ARN, subset, "Decrypt"), "kms:Decrypt", nil, noIdentity("kms:Decrypt")},
		{"equals constraint met", alice, "", grant(alice.ARN, equals, "Encrypt"), "kms:Encrypt",
			&authz.Conditions{EC: map[string]string{"purpose": "test"}}, ""},
		{"equals constraint, extra pair", alice, "", grant(alice.ARN, equals, "Encrypt"), "kms:Encrypt",
			&authz.Conditions{EC: map[string]string{"purpose": "test", "x": "y"}}, noIdentity("kms:Encrypt")},
		{"constraints bind GenerateDataKey", alice, "", grant(alice.ARN, equals, "GenerateDataKey"), "kms:GenerateDataKey", nil, noIdentity("kms:GenerateDataKey")},
		{"constraints do not bind DescribeKey", alice, "", grant(alice.ARN, equals, "DescribeKey"), "kms:DescribeKey", nil, ""},
		{"constraints do not bind Sign", alice, "", grant(alice.ARN, equals, "Sign"), "kms:Sign", nil, ""},

		{"CreateGrant of a subset", alice, "", grant(alice.ARN, nil, "CreateGrant", "Decrypt", "Encrypt"), "kms:CreateGrant",
			&authz.Conditions{Child: &authz.ChildGrant{Operations: []string{"Decrypt"}}}, ""},
		{"CreateGrant beyond the grant", alice, "", grant(alice.ARN, nil, "CreateGrant", "Decrypt"), "kms:CreateGrant",
			&authz.Conditions{Child: &authz.ChildGrant{Operations: []string{"Decrypt", "Encrypt"}}}, noIdentity("kms:CreateGrant")},
		{"CreateGrant dropping the constraint", alice, "", grant(alice.ARN, subset, "CreateGrant", "Decrypt"), "kms:CreateGrant",
			&authz.Conditions{Child: &authz.ChildGrant{Operations: []string{"Decrypt"}}}, noIdentity("kms:CreateGrant")},
		{"CreateGrant keeping the constraint", alice, "", grant(alice.ARN, subset, "CreateGrant", "Decrypt"), "kms:CreateGrant",
			&authz.Conditions{Child: &authz.ChildGrant{Operations: []string{"Decrypt"}, Constraints: equals}}, ""},
		{"CreateGrant without the child", alice, "", grant(alice.ARN, nil, "CreateGrant", "Decrypt"), "kms:CreateGrant", nil, noIdentity("kms:CreateGrant")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc
			switch doc {
			case "":
				doc = delegate(acctA)
			case "none":
				doc = ""
			}
			k := newKey(t, acctA, doc, tc.g)
			checkDecision(t, a.Key(context.Background(), tc.caller, tc.action, k, tc.cond), tc.caller, tc.action, k.ARN, tc.why)
		})
	}
}

func TestAccount(t *testing.T) {
	a, _, _ := newAuthorizer()
	const resource = "arn:aws:kms:us-east-1:111122223333:alias/app"
	teamOnly := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:CreateKey","Resource":"*",` +
		`"Condition":{"StringEquals":{"aws:RequestTag/team":"blue"}}}]}`
	for _, tc := range []struct {
		name   string
		caller *authz.Caller
		action string
		cond   *authz.Conditions
		why    string
	}{
		{"root", root(acctA), "kms:CreateAlias", nil, ""},
		{"user without identity policies", user(t, acctA, "alice"), "kms:CreateAlias", nil, noIdentity("kms:CreateAlias")},
		{"user allowed", user(t, acctA, "alice", identityDoc("Allow", "kms:CreateAlias")), "kms:CreateAlias", nil, ""},
		{"user allowed another action", user(t, acctA, "alice", identityDoc("Allow", "kms:CreateKey")), "kms:CreateAlias", nil, noIdentity("kms:CreateAlias")},
		{"user denied", user(t, acctA, "alice", identityDoc("Allow", "kms:*"), identityDoc("Deny", "kms:CreateAlias")), "kms:CreateAlias", nil, explicitIdentityDeny},
		{"root denied by its own policies", &authz.Caller{AccountID: acctA, ARN: root(acctA).ARN, Root: true, Principal: root(acctA).Principal,
			Policies: identityPolicies(t, []string{identityDoc("Deny", "kms:*")})}, "kms:CreateAlias", nil, explicitIdentityDeny},
		{"session allowed", session(t, acctA, "app", identityDoc("Allow", "kms:CreateAlias")), "kms:CreateAlias", nil, ""},
		{"condition on a request tag met", user(t, acctA, "alice", teamOnly), "kms:CreateKey",
			&authz.Conditions{Tags: []kmsapi.Tag{{TagKey: "Team", TagValue: "blue"}}}, ""},
		{"condition on a request tag not met", user(t, acctA, "alice", teamOnly), "kms:CreateKey",
			&authz.Conditions{Tags: []kmsapi.Tag{{TagKey: "Team", TagValue: "red"}}}, noIdentity("kms:CreateKey")},
		{"condition on a request tag, no tags", user(t, acctA, "alice", teamOnly), "kms:CreateKey", nil, noIdentity("kms:CreateKey")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkDecision(t, a.Account(tc.caller, tc.action, resource, tc.cond), tc.caller, tc.action, resource, tc.why)
		})
	}
}

func TestMayPutKeyPolicy(t *testing.T) {
	a, _, _ := newAuthorizer()
	k := newKey(t, acctA, "") // a symmetric key tagged Team=blue
	alice := `"` + userARN(acctA, "alice") + `"`
	rootAll := statement("Allow", `"arn:aws:iam::111122223333:root"`, []string{"kms:*"}, "")
	denyPutIf := func(cond string) string {
		return policyDoc(rootAll, statement("Deny", `"*"`, []string{"kms:PutKeyPolicy"}, cond))
	}
	allowPut := identityDoc("Allow", "kms:PutKeyPolicy")
	for _, tc := range []struct {
		name   string
		caller *authz.Caller
		doc    string
		may    bool
	}{
		{"root, account delegated", root(acctA), delegate(acctA), true},
		{"user, account delegated, IAM allows", user(t, acctA, "alice", allowPut), delegate(acctA), true},
		{"user, account delegated, IAM allows everything", user(t, acctA, "alice", identityDoc("Allow", "kms:*")), delegate(acctA), true},
		{"user, account delegated, IAM silent", user(t, acctA, "alice"), delegate(acctA), false},
		{"user, account delegated, IAM allows other actions", user(t, acctA, "alice", identityDoc("Allow", "kms:Encrypt")), delegate(acctA), false},
		{"user, account delegated, IAM allows but denies PutKeyPolicy", user(t, acctA, "alice", identityDoc("Allow", "kms:*"), identityDoc("Deny", "kms:PutKeyPolicy")),
			delegate(acctA), false},
		{"user, account delegated, IAM denies another action", user(t, acctA, "alice", identityDoc("Allow", "kms:*"), identityDoc("Deny", "kms:Decrypt")),
			delegate(acctA), true},
		{"user named with PutKeyPolicy", user(t, acctA, "alice"), policyDoc(statement("Allow", alice, []string{"kms:PutKeyPolicy"}, "")), true},
		{"user named with other actions", user(t, acctA, "alice", allowPut), policyDoc(statement("Allow", alice, []string{"kms:Encrypt"}, "")), false},
		{"session, its role named", session(t, acctA, "admin"), policyDoc(statement("Allow", `"`+roleARN(acctA, "admin")+`"`, []string{"kms:*"}, "")), true},
		{"root, only a user named", root(acctA), policyDoc(statement("Allow", alice, []string{"kms:*"}, "")), false},
		{"root, another account named", root(acctA), delegate(acctB), false},
		{"deny of PutKeyPolicy to everyone", root(acctA),
			policyDoc(statement("Allow", `"arn:aws:iam::111122223333:root"`, []string{"kms:*"}, ""), statement("Deny", `"*"`, []string{"kms:PutKeyPolicy"}, "")), false},
		{"allow conditioned on the caller's address", &authz.Caller{AccountID: acctA, ARN: root(acctA).ARN, Root: true, Principal: root(acctA).Principal, SourceIP: "10.1.2.3"},
			policyDoc(statement("Allow", `"arn:aws:iam::111122223333:root"`, []string{"kms:*"}, `{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`)), true},
		{"allow conditioned on another address", &authz.Caller{AccountID: acctA, ARN: root(acctA).ARN, Root: true, Principal: root(acctA).Principal, SourceIP: "192.0.2.1"},
			policyDoc(statement("Allow", `"arn:aws:iam::111122223333:root"`, []string{"kms:*"}, `{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`)), false},
		// Conditions on the key itself are judged on the key: a deny that
		// will match its later PutKeyPolicy refuses now.
		{"deny on the key's spec", root(acctA), denyPutIf(`{"StringEquals":{"kms:KeySpec":"SYMMETRIC_DEFAULT"}}`), false},
		{"deny on another spec", root(acctA), denyPutIf(`{"StringEquals":{"kms:KeySpec":"RSA_2048"}}`), true},
		{"deny on the key's tag", root(acctA), denyPutIf(`{"StringEquals":{"aws:ResourceTag/Team":"blue"}}`), false},
		{"deny on the key's origin", root(acctA), denyPutIf(`{"StringEquals":{"kms:KeyOrigin":"AWS_KMS"}}`), false},
		{"deny on the key's usage", root(acctA), denyPutIf(`{"StringEquals":{"kms:KeyUsage":"ENCRYPT_DECRYPT"}}`), false},
		{"deny on being multi-Region", root(acctA), denyPutIf(`{"Bool":{"kms:MultiRegion":"false"}}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := a.MayPutKeyPolicy(context.Background(), tc.caller, keyPolicy(t, tc.doc), k); err != nil || got != tc.may {
				t.Fatalf("MayPutKeyPolicy = %v, %v, want %v", got, err, tc.may)
			}
		})
	}
}

func TestDenied(t *testing.T) {
	err := authz.Denied(root(acctA), "kms:ListKeys", "*", "because of testing")
	checkDecision(t, err, root(acctA), "kms:ListKeys", "*", "because of testing")
	if got, want := err.Error(), "User: arn:aws:iam::111122223333:root is not authorized to perform: kms:ListKeys on resource: * because of testing"; got != want {
		t.Fatalf("Denied = %q, want %q", got, want)
	}
}
