package authz_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/kmsapi"
)

// Every condition key the Authorizer supplies, as the policy engine asks
// for it (lower-cased), once Key has added the caller and the key.
func TestConditionValues(t *testing.T) {
	a, clock, src := newAuthorizer()
	clock.Set(time.Date(2026, 3, 1, 13, 4, 5, 0, time.FixedZone("CET", 3600)))
	caller := root(acctA)
	caller.SourceIP = "192.0.2.7"
	k := newKey(t, acctA, delegate(acctA))
	src.names[k.Rec.ID] = []string{"alias/app", "alias/other"}
	cond := &authz.Conditions{
		EC:    map[string]string{"Purpose": "test", "app": "a"},
		Alias: "alias/app",
		Extra: map[string]string{"kms:encryptionalgorithm": "SYMMETRIC_DEFAULT", "kms:keyspec": "overridden"},
		Multi: map[string][]string{"kms:grantoperations": {"Encrypt", "Decrypt"}, "kms:grantconstrainttype": {}},
		Tags:  []kmsapi.Tag{{TagKey: "Team", TagValue: "blue"}, {TagKey: "env", TagValue: "prod"}},
	}
	if err := a.Key(context.Background(), caller, "kms:Encrypt", k, cond); err != nil {
		t.Fatal(err)
	}
	if src.reads != 0 {
		t.Fatalf("aliases were read %d times for a policy that does not ask for them", src.reads)
	}
	for _, tc := range []struct {
		key  string
		want []string // nil: absent
	}{
		{"kms:encryptionalgorithm", []string{"SYMMETRIC_DEFAULT"}},
		{"kms:keyspec", []string{"overridden"}}, // the operation's own value comes first
		{"kms:grantoperations", []string{"Decrypt", "Encrypt"}},
		{"kms:grantconstrainttype", nil},
		{"kms:encryptioncontext:purpose", []string{"test"}},
		{"kms:encryptioncontext:app", []string{"a"}},
		{"kms:encryptioncontext:missing", nil},
		{"kms:encryptioncontextkeys", []string{"Purpose", "app"}},
		{"kms:requestalias", []string{"alias/app"}},
		{"aws:sourceip", []string{"192.0.2.7"}},
		{"aws:currenttime", []string{"2026-03-01T12:04:05Z"}},
		{"aws:epochtime", []string{strconv.FormatInt(time.Date(2026, 3, 1, 12, 4, 5, 0, time.UTC).Unix(), 10)}},
		{"aws:securetransport", []string{"false"}},
		{"aws:tagkeys", []string{"Team", "env"}},
		{"aws:requesttag/team", []string{"blue"}},
		{"aws:requesttag/env", []string{"prod"}},
		{"aws:requesttag/missing", nil},
		{"kms:keyusage", []string{"ENCRYPT_DECRYPT"}},
		{"kms:keyorigin", []string{"AWS_KMS"}},
		{"kms:multiregion", []string{"false"}},
		{"aws:resourcetag/team", []string{"blue"}},
		{"aws:resourcetag/missing", nil},
		{"kms:resourcealiases", []string{"alias/app", "alias/other"}},
		{"kms:viaservice", nil},
		{"aws:principaltag/x", nil},
	} {
		got, ok := cond.Values(tc.key)
		sorted := slices.Clone(got)
		slices.Sort(sorted)
		if ok != (tc.want != nil) || !slices.Equal(sorted, tc.want) {
			t.Errorf("Values(%q) = %q, %v; want %q", tc.key, got, ok, tc.want)
		}
	}
	cond.Values("kms:resourcealiases")
	if src.reads != 1 {
		t.Errorf("aliases read %d times, want once however often asked", src.reads)
	}
}

// Without an operation's values, a key or a caller's address, those
// condition keys are absent, not empty strings.
func TestConditionValuesAbsent(t *testing.T) {
	a, _, src := newAuthorizer()
	k := newKey(t, acctA, delegate(acctA))
	k.Rec.KeySpec, k.Rec.Origin = "", ""
	cond := &authz.Conditions{}
	if err := a.Key(context.Background(), root(acctA), "kms:Encrypt", k, cond); err != nil {
		t.Fatal(err)
	}
	acct := &authz.Conditions{}
	if err := a.Account(root(acctA), "kms:CreateKey", "*", acct); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cond *authz.Conditions
		key  string
	}{
		{cond, "kms:encryptioncontextkeys"},
		{cond, "kms:encryptioncontext:purpose"},
		{cond, "kms:requestalias"},
		{cond, "aws:sourceip"},
		{cond, "aws:tagkeys"},
		{cond, "kms:keyspec"},
		{cond, "kms:keyorigin"},
		{cond, "kms:resourcealiases"},
		// Decisions not about a key have no key's values.
		{acct, "kms:keyusage"},
		{acct, "kms:multiregion"},
		{acct, "aws:resourcetag/team"},
		{acct, "kms:resourcealiases"},
	} {
		if got, ok := tc.cond.Values(tc.key); ok || got != nil {
			t.Errorf("Values(%q) = %q, %v; want absent", tc.key, got, ok)
		}
	}
	if src.reads != 1 {
		t.Errorf("aliases read %d times, want once (for the key decision only)", src.reads)
	}
	if got, ok := acct.Values("aws:securetransport"); !ok || len(got) != 1 {
		t.Errorf("an account decision has no request-wide keys: %q, %v", got, ok)
	}
}

// The conditions reach the policy engine: a key policy that conditions
// its allow on each kind of key decides by the request's values.
func TestConditionsInKeyPolicies(t *testing.T) {
	a, clock, src := newAuthorizer()
	alice := user(t, acctA, "alice")
	aliceP := `"` + alice.ARN + `"`
	allowIf := func(condition string) string {
		return policyDoc(statement("Allow", aliceP, []string{"kms:Encrypt"}, condition))
	}
	for _, tc := range []struct {
		name      string
		condition string
		cond      *authz.Conditions
		sourceIP  string
		advance   time.Duration
		aliases   []string
		allow     bool
	}{
		{"context value matches", `{"StringEquals":{"kms:EncryptionContext:purpose":"test"}}`,
			&authz.Conditions{EC: map[string]string{"purpose": "test"}}, "", 0, nil, true},
		{"context value differs", `{"StringEquals":{"kms:EncryptionContext:purpose":"test"}}`,
			&authz.Conditions{EC: map[string]string{"purpose": "prod"}}, "", 0, nil, false},
		{"context keys all allowed", `{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["purpose","app"]}}`,
			&authz.Conditions{EC: map[string]string{"purpose": "test"}}, "", 0, nil, true},
		{"context key not allowed", `{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["purpose","app"]}}`,
			&authz.Conditions{EC: map[string]string{"user": "x"}}, "", 0, nil, false},
		{"request alias", `{"StringEquals":{"kms:RequestAlias":"alias/app"}}`, &authz.Conditions{Alias: "alias/app"}, "", 0, nil, true},
		{"request by key id, alias required", `{"StringEquals":{"kms:RequestAlias":"alias/app"}}`, nil, "", 0, nil, false},
		{"source address inside", `{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, nil, "10.9.8.7", 0, nil, true},
		{"source address outside", `{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, nil, "192.0.2.1", 0, nil, false},
		{"before a date", `{"DateLessThan":{"aws:CurrentTime":"2026-03-02T00:00:00Z"}}`, nil, "", 0, nil, true},
		{"after that date", `{"DateLessThan":{"aws:CurrentTime":"2026-03-02T00:00:00Z"}}`, nil, "", 12 * time.Hour, nil, false},
		{"resource alias matches", `{"ForAnyValue:StringLike":{"kms:ResourceAliases":"alias/app*"}}`, nil, "", 0, []string{"alias/x", "alias/app-1"}, true},
		{"no resource alias matches", `{"ForAnyValue:StringLike":{"kms:ResourceAliases":"alias/app*"}}`, nil, "", 0, []string{"alias/x"}, false},
		{"key spec", `{"StringEquals":{"kms:KeySpec":"SYMMETRIC_DEFAULT"}}`, nil, "", 0, nil, true},
		{"another key spec", `{"StringEquals":{"kms:KeySpec":"RSA_2048"}}`, nil, "", 0, nil, false},
		{"resource tag", `{"StringEquals":{"aws:ResourceTag/Team":"blue"}}`, nil, "", 0, nil, true},
		{"algorithm of the operation", `{"StringEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}`,
			&authz.Conditions{Extra: map[string]string{"kms:encryptionalgorithm": "SYMMETRIC_DEFAULT"}}, "", 0, nil, true},
		{"algorithm absent", `{"StringEquals":{"kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}`, nil, "", 0, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock.Set(start.Add(tc.advance))
			k := newKey(t, acctA, allowIf(tc.condition))
			src.names[k.Rec.ID] = tc.aliases
			c := *alice
			c.SourceIP = tc.sourceIP
			why := ""
			if !tc.allow {
				why = noResource("kms:Encrypt")
			}
			checkDecision(t, a.Key(context.Background(), &c, "kms:Encrypt", k, tc.cond), &c, "kms:Encrypt", k.ARN, why)
		})
	}
}

// One request's Conditions may serve the decisions on several keys (as
// ReEncrypt decides on two): each key's own aliases are its
// kms:ResourceAliases.
func TestConditionsAcrossKeys(t *testing.T) {
	a, _, src := newAuthorizer()
	alice := user(t, acctA, "alice")
	onlyAlias := func(name string) string {
		return policyDoc(statement("Allow", `"`+alice.ARN+`"`, []string{"kms:ReEncrypt*"},
			`{"ForAnyValue:StringEquals":{"kms:ResourceAliases":"`+name+`"}}`))
	}
	k1 := newKey(t, acctA, onlyAlias("alias/one"))
	k2 := newKey(t, acctA, onlyAlias("alias/two"))
	src.names[k1.Rec.ID] = []string{"alias/one"}
	src.names[k2.Rec.ID] = []string{"alias/two"}
	cond := &authz.Conditions{}
	checkDecision(t, a.Key(context.Background(), alice, "kms:ReEncryptFrom", k1, cond), alice, "kms:ReEncryptFrom", k1.ARN, "")
	checkDecision(t, a.Key(context.Background(), alice, "kms:ReEncryptTo", k2, cond), alice, "kms:ReEncryptTo", k2.ARN, "")
	if got, _ := cond.Values("kms:resourcealiases"); !slices.Equal(got, []string{"alias/two"}) {
		t.Fatalf("kms:ResourceAliases = %q after deciding on the second key, want its own", got)
	}
	checkDecision(t, a.Key(context.Background(), alice, "kms:ReEncryptTo", k2, cond), alice, "kms:ReEncryptTo", k2.ARN, "")
	if src.reads != 2 {
		t.Fatalf("aliases read %d times, want once per key", src.reads)
	}
}

// kms:MultiRegion and kms:MultiRegionKeyType describe the key decided on:
// a primary, a replica, or a single-Region key (which has no key type).
func TestConditionValuesMultiRegion(t *testing.T) {
	a, _, _ := newAuthorizer()
	for _, tc := range []struct {
		name            string
		multi           bool
		region, primary string
		wantMulti       string
		wantType        []string
	}{
		{"single-Region", false, "us-east-1", "", "false", nil},
		{"primary", true, "us-east-1", "us-east-1", "true", []string{"PRIMARY"}},
		{"replica", true, "eu-west-1", "us-east-1", "true", []string{"REPLICA"}},
	} {
		k := newKey(t, acctA, delegate(acctA))
		k.Rec.MultiRegion, k.Rec.Region, k.Rec.PrimaryRegion = tc.multi, tc.region, tc.primary
		cond := &authz.Conditions{}
		if err := a.Key(context.Background(), root(acctA), "kms:DescribeKey", k, cond); err != nil {
			t.Fatal(err)
		}
		if got, ok := cond.Values("kms:multiregion"); !ok || !slices.Equal(got, []string{tc.wantMulti}) {
			t.Errorf("%s: kms:MultiRegion = %q, %v", tc.name, got, ok)
		}
		if got, ok := cond.Values("kms:multiregionkeytype"); ok != (tc.wantType != nil) || !slices.Equal(got, tc.wantType) {
			t.Errorf("%s: kms:MultiRegionKeyType = %q, %v; want %q", tc.name, got, ok, tc.wantType)
		}
	}
}

// A context that holds a key twice, in two cases, gives a condition on
// that key no one value: AWS matches the name without regard to case. The
// decision was whichever pair map iteration met first, so a caller could
// retry until a forbidden context passed an Allow or slipped past a Deny.
// It is now always a denial; a grant constraint on such a key never holds.
func TestAmbiguousContextKeyIsDenied(t *testing.T) {
	a, _, _ := newAuthorizer()
	alice := user(t, acctA, "alice")
	aliceP := `"` + alice.ARN + `"`
	twice := map[string]string{"tenant": "alice", "Tenant": "mallory", "TENANT": "mallory", "TEnant": "mallory", "tENANT": "mallory"}
	allow := newKey(t, acctA, policyDoc(statement("Allow", aliceP, []string{"kms:Encrypt"}, `{"StringEquals":{"kms:EncryptionContext:tenant":"mallory"}}`)))
	deny := newKey(t, acctA, policyDoc(statement("Allow", aliceP, []string{"kms:Decrypt"}, ""),
		statement("Deny", `"*"`, []string{"kms:Decrypt"}, `{"StringEquals":{"kms:EncryptionContext:tenant":"alice"}}`)))
	grantOnly := newKey(t, acctA, delegate(acctA), grant(alice.ARN,
		&kmsapi.GrantConstraints{EncryptionContextSubset: map[string]string{"tenant": "mallory"}}, "Encrypt"))
	for range 50 { // map order varies from run to run
		if err := a.Key(context.Background(), alice, "kms:Encrypt", allow, &authz.Conditions{EC: twice}); err == nil {
			t.Fatal("an Allow on tenant=mallory passed a context that also holds tenant=alice")
		}
		if err := a.Key(context.Background(), alice, "kms:Decrypt", deny, &authz.Conditions{EC: twice}); err == nil {
			t.Fatal("a Deny on tenant=alice was slipped past with a second tenant key")
		}
		if err := a.Key(context.Background(), alice, "kms:Encrypt", grantOnly, &authz.Conditions{EC: twice}); err == nil {
			t.Fatal("a grant constrained to tenant=mallory passed a context that also holds tenant=alice")
		}
	}
	// One key per name still decides as before, whatever its case.
	for _, ec := range []map[string]string{{"Tenant": "mallory"}, {"tenant": "mallory", "other": "x"}} {
		if err := a.Key(context.Background(), alice, "kms:Encrypt", allow, &authz.Conditions{EC: ec}); err != nil {
			t.Errorf("%v: %v", ec, err)
		}
		if err := a.Key(context.Background(), alice, "kms:Encrypt", grantOnly, &authz.Conditions{EC: ec}); err != nil {
			t.Errorf("grant, %v: %v", ec, err)
		}
	}
	// A policy that names no context key is not affected.
	open := newKey(t, acctA, policyDoc(statement("Allow", aliceP, []string{"kms:Encrypt"}, "")))
	if err := a.Key(context.Background(), alice, "kms:Encrypt", open, &authz.Conditions{EC: twice}); err != nil {
		t.Errorf("no condition on the context: %v", err)
	}
}

// A decision whose policy asks for kms:ResourceAliases, when the alias
// names cannot be read, is the read's error: decided as if the key had
// no alias, a Deny on its aliases would not apply. The lockout check of
// a key policy fails alike.
func TestResourceAliasesUnreadable(t *testing.T) {
	a, _, src := newAuthorizer()
	alice := user(t, acctA, "alice")
	doc := policyDoc(
		statement("Allow", `"`+alice.ARN+`"`, []string{"kms:Encrypt", "kms:PutKeyPolicy"}, ""),
		statement("Deny", `"*"`, []string{"kms:Encrypt", "kms:PutKeyPolicy"}, `{"ForAnyValue:StringEquals":{"kms:ResourceAliases":"alias/frozen"}}`))
	k := newKey(t, acctA, doc)
	src.names[k.Rec.ID] = []string{"alias/frozen"}
	readErr := errors.New("the database is not reachable")
	src.err = readErr
	cond := &authz.Conditions{}
	if err := a.Key(context.Background(), alice, "kms:Encrypt", k, cond); err != readErr {
		t.Fatalf("Key with the aliases unreadable: %v, want the read's error", err)
	}
	if may, err := a.MayPutKeyPolicy(context.Background(), alice, keyPolicy(t, doc), k); may || err != readErr {
		t.Fatalf("MayPutKeyPolicy with the aliases unreadable: %v, %v, want the read's error", may, err)
	}
	src.err = nil
	checkDecision(t, a.Key(context.Background(), alice, "kms:Encrypt", k, cond), alice, "kms:Encrypt", k.ARN, "with an explicit deny in a resource-based policy")
}
