package policy

import (
	"strings"
	"testing"
)

func TestActionWildcards(t *testing.T) {
	tests := []struct {
		action string // in the policy
		asked  string
		want   bool
	}{
		{"kms:*", "kms:Encrypt", true},
		{"kms:*", "kms:ScheduleKeyDeletion", true},
		{"*", "kms:Encrypt", true},
		{"kms:Get*", "kms:GetKeyPolicy", true},
		{"kms:Get*", "kms:GetPublicKey", true},
		{"kms:Get*", "kms:GenerateDataKey", false},
		{"kms:ReEncrypt*", "kms:ReEncryptFrom", true},
		{"kms:ReEncrypt*", "kms:ReEncryptTo", true},
		{"kms:ReEncrypt*", "kms:Encrypt", false},
		{"kms:GenerateDataKey*", "kms:GenerateDataKeyPairWithoutPlaintext", true},
		{"kms:Delete*", "kms:ScheduleKeyDeletion", false},
		{"kms:*Key", "kms:DescribeKey", true},
		{"kms:*Key*", "kms:EnableKeyRotation", true},
		{"kms:?ncrypt", "kms:Encrypt", true},
		{"kms:?ncrypt", "kms:Decrypt", false},
		{"kms:Encrypt", "kms:Encrypt", true},
		{"kms:Encrypt", "kms:EncryptX", false},
		// Action names ignore case, service prefix included.
		{"KMS:encrypt", "kms:Encrypt", true},
		{"kms:get*", "kms:GetKeyPolicy", true},
		{"kms:Encrypt", "KMS:ENCRYPT", true},
		{"s3:*", "kms:Encrypt", false},
		{"kms-x:*", "kms:Encrypt", false},
	}
	for _, tt := range tests {
		p := mustParse(t, ParseResource, keyPolicy(stmt(`"Principal":"*"`, `"Action":"`+tt.action+`"`)))
		if got := p.EvaluateResource(req(keyUser, tt.asked, nil)).Allow; got != tt.want {
			t.Errorf("Action %q, asked %q: %v, want %v", tt.action, tt.asked, got, tt.want)
		}
	}
}

func TestDenyBeatsAllow(t *testing.T) {
	p := mustParse(t, ParseResource, keyPolicy(
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/ExampleUser"},"Action":"kms:*","Resource":"*"}`,
		`{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/ExampleUser"},"Action":"kms:ScheduleKeyDeletion","Resource":"*"}`))
	got := p.EvaluateResource(req(keyUser, "kms:ScheduleKeyDeletion", nil))
	if want := (Decision{Deny: true, Allow: true, AccountAllow: true}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if p.Allows(req(keyUser, "kms:ScheduleKeyDeletion", nil)) {
		t.Error("Allows despite the Deny")
	}
	if got := p.EvaluateResource(req(keyUser, "kms:Encrypt", nil)); got.Deny || !got.Allow {
		t.Errorf("Encrypt: %+v", got)
	}
}

// A Deny naming an account applies to every principal of that account.
func TestDenyNamingAccount(t *testing.T) {
	for _, name := range []string{`"111122223333"`, `"arn:aws:iam::111122223333:root"`} {
		p := mustParse(t, ParseResource, keyPolicy(
			`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}`,
			`{"Effect":"Deny","Principal":{"AWS":`+name+`},"Action":"kms:Decrypt","Resource":"*"}`))
		for _, who := range []Principal{root, keyUser, userSession} {
			if d := p.EvaluateResource(req(who, "kms:Decrypt", nil)); !d.Deny {
				t.Errorf("%s: %s not denied", name, who.ARN)
			}
		}
		if d := p.EvaluateResource(req(outsider, "kms:Decrypt", nil)); d.Deny || !d.Allow {
			t.Errorf("%s: outsider %+v", name, d)
		}
	}
}

func TestNotActionNotResource(t *testing.T) {
	p := mustParse(t, ParseResource, keyPolicy(
		`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/ExampleUser"},"NotAction":["kms:ScheduleKeyDeletion","kms:Put*"],"Resource":"*"}`,
		`{"Effect":"Deny","Principal":"*","Action":"kms:*","NotResource":"arn:aws:kms:us-east-1:111122223333:key/*"}`))
	tests := []struct {
		action, resource string
		want             Decision
	}{
		{"kms:Encrypt", keyARN, Decision{Allow: true}},
		{"kms:PutKeyPolicy", keyARN, Decision{}},
		{"kms:ScheduleKeyDeletion", keyARN, Decision{}},
		{"kms:Encrypt", "arn:aws:kms:eu-west-1:111122223333:key/other", Decision{Allow: true, Deny: true}},
		{"kms:Encrypt", "arn:aws:kms:us-east-1:111122223333:alias/app", Decision{Allow: true, Deny: true}},
	}
	for _, tt := range tests {
		r := &Request{Principal: keyUser, Action: tt.action, Resource: tt.resource}
		if got := p.EvaluateResource(r); got != tt.want {
			t.Errorf("%s on %s: got %+v, want %+v", tt.action, tt.resource, got, tt.want)
		}
	}
}

func TestNotPrincipal(t *testing.T) {
	allowAccount := `{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}`
	deny := func(notPrincipal string) *Policy {
		return mustParse(t, ParseResource, keyPolicy(allowAccount,
			`{"Effect":"Deny","NotPrincipal":`+notPrincipal+`,"Action":"kms:*","Resource":"*"}`))
	}
	userAndAccount := deny(`{"AWS":["arn:aws:iam::111122223333:user/ExampleUser","arn:aws:iam::111122223333:root"]}`)
	userOnly := deny(`{"AWS":"arn:aws:iam::111122223333:user/ExampleUser"}`)
	sessionChain := deny(`{"AWS":["arn:aws:sts::111122223333:assumed-role/ExampleRole/app","arn:aws:iam::111122223333:role/ExampleRole","111122223333"]}`)
	roleAndAccount := deny(`{"AWS":["arn:aws:iam::111122223333:role/ExampleRole","111122223333"]}`)
	accountOnly := deny(`{"AWS":"111122223333"}`)
	everyone := deny(`{"AWS":"*"}`)
	serviceOnly := deny(`{"Service":"ec2.amazonaws.com"}`)

	tests := []struct {
		name   string
		p      *Policy
		who    Principal
		denied bool
	}{
		{"listed with its account", userAndAccount, keyUser, false},
		{"other user of the account", userAndAccount, stranger, true},
		{"root of a listed account", userAndAccount, root, false},
		{"outsider", userAndAccount, outsider, true},
		// Without the account, the account link of the chain is not exempt.
		{"listed without its account", userOnly, keyUser, true},
		{"session with its whole chain", sessionChain, userSession, false},
		{"another session of the role", sessionChain, Principal{ARN: "arn:aws:sts::111122223333:assumed-role/ExampleRole/other", Account: account, RoleARN: userSession.RoleARN}, true},
		{"session without its session ARN", roleAndAccount, userSession, true},
		{"account only, user", accountOnly, keyUser, true},
		{"account only, root", accountOnly, root, false},
		{"star", everyone, outsider, false},
		{"service principals exempt no one", serviceOnly, keyUser, true},
	}
	for _, tt := range tests {
		if got := tt.p.EvaluateResource(req(tt.who, "kms:Encrypt", nil)).Deny; got != tt.denied {
			t.Errorf("%s: denied %v, want %v", tt.name, got, tt.denied)
		}
	}

	// NotPrincipal with Allow is refused as a key policy (IAM allows it
	// only with Deny). One stored before that, read back, lets no one in:
	// not the outsider, not the user it names without its account.
	doc := keyPolicy(
		`{"Effect":"Allow","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/Mallory"]},"Action":"kms:Encrypt","Resource":"*"}`)
	if _, err := ParseResource(doc); err == nil || !strings.Contains(err.Error(), "NotPrincipal may be used only with Deny") {
		t.Errorf("ParseResource of an Allow with NotPrincipal: %v", err)
	}
	p := mustParse(t, ParseStoredResource, doc)
	mallory := Principal{ARN: "arn:aws:iam::111122223333:user/Mallory", Account: account}
	for _, who := range []Principal{outsider, keyUser, mallory} {
		if d := p.EvaluateResource(req(who, "kms:Encrypt", nil)); d.Deny || d.Allow || d.AccountAllow {
			t.Errorf("%s: %+v", who.ARN, d)
		}
	}
}

func TestPrincipalForms(t *testing.T) {
	tests := []struct {
		principal string
		who       Principal
		want      Decision
	}{
		{`"*"`, outsider, Decision{Allow: true}},
		{`{"AWS":"*"}`, keyUser, Decision{Allow: true}},
		{`{"AWS":"arn:aws:iam::111122223333:user/ExampleUser"}`, keyUser, Decision{Allow: true}},
		// ARNs are compared exactly.
		{`{"AWS":"arn:aws:iam::111122223333:user/exampleuser"}`, keyUser, Decision{}},
		{`{"AWS":"arn:aws:iam::111122223333:user/ExampleUser"}`, stranger, Decision{}},
		{`{"AWS":"arn:aws:iam::111122223333:role/ExampleRole"}`, userSession, Decision{Allow: true}},
		{`{"AWS":"arn:aws:sts::111122223333:assumed-role/ExampleRole/app"}`, userSession, Decision{Allow: true}},
		{`{"AWS":"arn:aws:sts::111122223333:assumed-role/ExampleRole/other"}`, userSession, Decision{}},
		{`{"AWS":"111122223333"}`, keyUser, Decision{AccountAllow: true}},
		{`{"AWS":"111122223333"}`, root, Decision{Allow: true, AccountAllow: true}},
		{`{"AWS":"arn:aws-cn:iam::111122223333:root"}`, userSession, Decision{AccountAllow: true}},
		{`{"AWS":"arn:aws:iam::444455556666:root"}`, outsider, Decision{AccountAllow: true}},
		{`{"AWS":"arn:aws:iam::444455556666:root"}`, keyUser, Decision{}},
		{`{"AWS":["arn:aws:iam::111122223333:user/ExampleUser","111122223333"]}`, keyUser, Decision{Allow: true, AccountAllow: true}},
		// Only IAM principals call here.
		{`{"Service":"ec2.amazonaws.com"}`, keyUser, Decision{}},
		{`{"Service":"*"}`, keyUser, Decision{}},
		{`{"Federated":"cognito-identity.amazonaws.com"}`, keyUser, Decision{}},
		{`{"CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}`, keyUser, Decision{}},
		{`{"Service":"ec2.amazonaws.com","AWS":"arn:aws:iam::111122223333:user/ExampleUser"}`, keyUser, Decision{Allow: true}},
	}
	for _, tt := range tests {
		p := mustParse(t, ParseResource, keyPolicy(stmt(`"Principal":`+tt.principal)))
		if got := p.EvaluateResource(req(tt.who, "kms:Encrypt", nil)); got != tt.want {
			t.Errorf("Principal %s, %s: got %+v, want %+v", tt.principal, tt.who.ARN, got, tt.want)
		}
	}
}

func TestEvaluateIdentity(t *testing.T) {
	p := mustParse(t, ParseIdentity, keyPolicy(
		`{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"arn:aws:kms:us-east-1:111122223333:key/*"}`,
		`{"Effect":"Allow","Action":"kms:DescribeKey","Resource":"*"}`,
		`{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}`))
	secure := MapContext{"aws:securetransport": {"true"}}
	insecure := MapContext{"aws:securetransport": {"false"}}
	tests := []struct {
		action, resource string
		ctx              Context
		want             Decision
	}{
		{"kms:Encrypt", keyARN, secure, Decision{Allow: true}},
		{"kms:Decrypt", keyARN, secure, Decision{Allow: true}},
		{"kms:Decrypt", keyARN, insecure, Decision{Allow: true, Deny: true}},
		{"kms:Encrypt", "arn:aws:kms:eu-west-1:111122223333:key/x", secure, Decision{}},
		{"kms:Encrypt", "arn:aws:kms:us-east-1:444455556666:key/x", secure, Decision{}},
		{"kms:DescribeKey", "arn:aws:kms:eu-west-1:444455556666:key/x", nil, Decision{Allow: true}},
		{"kms:PutKeyPolicy", keyARN, nil, Decision{}},
	}
	for _, tt := range tests {
		r := &Request{Principal: keyUser, Action: tt.action, Resource: tt.resource, Context: tt.ctx}
		if got := p.EvaluateIdentity(r); got != tt.want {
			t.Errorf("%s on %s: got %+v, want %+v", tt.action, tt.resource, got, tt.want)
		}
	}

	// Parse lets a Principal through; EvaluateIdentity still honours it.
	named := mustParse(t, Parse, keyPolicy(stmt(`"Principal":{"AWS":"arn:aws:iam::111122223333:user/ExampleUser"}`)))
	if !named.EvaluateIdentity(req(keyUser, "kms:Encrypt", nil)).Allow || named.EvaluateIdentity(req(stranger, "kms:Encrypt", nil)).Allow {
		t.Error("Principal not honoured in EvaluateIdentity")
	}
	// A statement without a principal applies to no one in a key policy.
	if d := p.EvaluateResource(req(keyUser, "kms:Encrypt", nil)); d != (Decision{}) {
		t.Errorf("identity policy evaluated as a key policy: %+v", d)
	}
}

func TestResourcePatterns(t *testing.T) {
	tests := []struct {
		resource string // in the policy
		asked    string
		want     bool
	}{
		{"*", keyARN, true},
		{keyARN, keyARN, true},
		{"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890AB", keyARN, false},
		{"arn:aws:kms:*:111122223333:key/*", keyARN, true},
		{"arn:aws:kms:*:111122223333:key/*", "arn:aws:kms:us-east-1:444455556666:key/x", false},
		{"arn:aws:kms:*:111122223333:alias/*", keyARN, false},
		{"arn:aws:kms:us-east-1:111122223333:key/1234abcd-????-*", keyARN, true},
		// A * ending a segment may run past colons...
		{"arn:aws:kms:*", keyARN, true},
		{"arn:aws:*:111122223333:key/*", keyARN, true},
		// ...one inside a segment may not.
		{"arn:aws:kms:us-*1:111122223333:key/*", keyARN, true},
		{"arn:aws:kms:us-*3333:key/*", keyARN, false},
		{"arn:aws:kms:us-east-1:111122223333:*", keyARN, true},
		{"arn:aws:kms:us-east-1:111122223333:key", keyARN, false},
	}
	for _, tt := range tests {
		p := mustParse(t, ParseIdentity, keyPolicy(`{"Effect":"Allow","Action":"kms:*","Resource":"`+tt.resource+`"}`))
		r := &Request{Principal: keyUser, Action: "kms:Encrypt", Resource: tt.asked}
		if got := p.EvaluateIdentity(r).Allow; got != tt.want {
			t.Errorf("Resource %q, asked %q: %v, want %v", tt.resource, tt.asked, got, tt.want)
		}
	}
}

// A set of identity policies allows when any allows and none denies; one
// Deny wins whatever its place in the set.
func TestEvaluateIdentities(t *testing.T) {
	doc := func(effect, action string) *Policy {
		p, err := ParseIdentity(`{"Version":"2012-10-17","Statement":[{"Effect":"` + effect + `","Action":"` + action + `","Resource":"*"}]}`)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	allowAll, allowEncrypt, denyEncrypt := doc("Allow", "kms:*"), doc("Allow", "kms:Encrypt"), doc("Deny", "kms:Encrypt")
	req := func(action string) *Request {
		return &Request{Principal: Principal{Account: "111122223333", ARN: "arn:aws:iam::111122223333:user/u"}, Action: action, Resource: "*"}
	}
	for _, tc := range []struct {
		name   string
		set    []*Policy
		action string
		allow  bool
		deny   bool
	}{
		{"none", nil, "kms:Encrypt", false, false},
		{"one allows", []*Policy{allowEncrypt}, "kms:Encrypt", true, false},
		{"other action", []*Policy{allowEncrypt}, "kms:Decrypt", false, false},
		{"deny first", []*Policy{denyEncrypt, allowAll}, "kms:Encrypt", false, true},
		{"deny last", []*Policy{allowAll, denyEncrypt}, "kms:Encrypt", false, true},
		{"deny of another action", []*Policy{allowAll, denyEncrypt}, "kms:Decrypt", true, false},
	} {
		d := EvaluateIdentities(tc.set, req(tc.action))
		if d.Allow != tc.allow || d.Deny != tc.deny || d.AccountAllow {
			t.Errorf("%s: %+v, want allow %v deny %v", tc.name, d, tc.allow, tc.deny)
		}
	}
}

// TestBind: a bound policy names a user or role with the unique id it had
// when the policy was stored; one made again under the same name (another
// id) is not named, in Principal or in NotPrincipal. Unbound policies and
// other kinds of principal match by ARN.
func TestBind(t *testing.T) {
	doc := keyPolicy(
		`{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/ExampleUser","arn:aws:iam::111122223333:role/ExampleRole"]},"Action":"kms:Encrypt","Resource":"*"}`,
		`{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/ExampleUser","111122223333"]},"Action":"kms:Decrypt","Resource":"*"}`)
	session := userSession
	session.UserID = "AROAROLE:app"
	roleID := RoleID(session.UserID)
	remade := keyUser
	remade.UserID = "AIDAREMADE"
	remadeSession := session
	remadeSession.UserID = "AROAREMADE:app"
	unknown := keyUser
	unknown.UserID = ""

	bound := mustParse(t, ParseResource, doc)
	bound.Bind(map[string]string{"arn:aws:iam::111122223333:user/ExampleUser": keyUser.UserID, "arn:aws:iam::111122223333:role/ExampleRole": roleID})
	unbound := mustParse(t, ParseResource, doc)
	half := mustParse(t, ParseResource, doc)
	half.Bind(map[string]string{"arn:aws:iam::111122223333:user/ExampleUser": keyUser.UserID})

	tests := []struct {
		name          string
		p             *Policy
		who           Principal
		allow, denied bool // Encrypt allowed; Decrypt denied
	}{
		{"bound, the user", bound, keyUser, true, false},
		{"bound, the user made again", bound, remade, false, true},
		{"bound, a caller without an id", bound, unknown, false, true},
		{"bound, a session of the role", bound, session, true, true},
		{"bound, a session of the role made again", bound, remadeSession, false, true},
		{"unbound, the user made again", unbound, remade, true, false},
		{"unbound, a session of the role made again", unbound, remadeSession, true, true},
		{"bound without the role, a session of it", half, session, false, true},
	}
	for _, tt := range tests {
		if got := tt.p.EvaluateResource(req(tt.who, "kms:Encrypt", nil)).Allow; got != tt.allow {
			t.Errorf("%s: Encrypt allowed %v, want %v", tt.name, got, tt.allow)
		}
		if got := tt.p.EvaluateResource(req(tt.who, "kms:Decrypt", nil)).Deny; got != tt.denied {
			t.Errorf("%s: Decrypt denied %v, want %v", tt.name, got, tt.denied)
		}
	}
}
