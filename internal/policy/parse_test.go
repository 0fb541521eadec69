package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// stmt is a valid key policy statement with one element replaced or added:
// stmt(`"Effect":"Deny"`) and so on.
func stmt(fields ...string) string {
	base := map[string]string{
		"Effect":    `"Allow"`,
		"Principal": `{"AWS":"arn:aws:iam::111122223333:root"}`,
		"Action":    `"kms:*"`,
		"Resource":  `"*"`,
	}
	var extra []string
	for _, f := range fields {
		name, val, _ := strings.Cut(f, ":")
		name = strings.Trim(name, `"`)
		if _, ok := base[name]; ok {
			base[name] = val
			continue
		}
		extra = append(extra, f)
	}
	var parts []string
	for _, name := range []string{"Effect", "Principal", "Action", "Resource"} {
		if base[name] != "-" {
			parts = append(parts, `"`+name+`":`+base[name])
		}
	}
	return "{" + strings.Join(append(parts, extra...), ",") + "}"
}

func TestParseErrors(t *testing.T) {
	deep := `{"Statement":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `}`
	tests := []struct {
		name string
		doc  string
		want string // a substring of the message
	}{
		{"not JSON", `{"Statement": [`, "not valid JSON"},
		{"garbage", `Version: 2012-10-17`, "not valid JSON"},
		{"trailing data", keyPolicy(stmt()) + `{}`, "not valid JSON"},
		{"empty", ``, "not valid JSON"},
		{"array document", `[` + keyPolicy(stmt()) + `]`, "must be a JSON object"},
		{"string document", `"policy"`, "must be a JSON object"},
		{"null document", `null`, "must be a JSON object"},
		{"too deep", deep, "nested too deeply"},
		{"duplicate member", `{"Statement":[` + stmt() + `],"Statement":[]}`, "duplicate member"},
		{"duplicate Effect", keyPolicy(`{"Effect":"Allow","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*"}`), "duplicate member"},
		{"unknown element", `{"Version":"2012-10-17","Statment":[` + stmt() + `]}`, `unknown element "Statment"`},
		{"element names are case-sensitive", `{"statement":[` + stmt() + `]}`, "unknown element"},
		{"bad version", `{"Version":"2012-10-18","Statement":[` + stmt() + `]}`, "Version"},
		{"numeric version", `{"Version":2012,"Statement":[` + stmt() + `]}`, "Version"},
		{"numeric id", `{"Id":1,"Statement":[` + stmt() + `]}`, "Id must be a string"},
		{"no statement", `{"Version":"2012-10-17"}`, "no Statement"},
		{"empty statement list", `{"Statement":[]}`, "must not be empty"},
		{"statement string", `{"Statement":"allow all"}`, "Statement must be"},
		{"statement list of strings", `{"Statement":["allow"]}`, "Statement[0] must be an object"},
		{"no effect", keyPolicy(stmt(`"Effect":-`)), "Statement[0] has no Effect"},
		{"lower-case effect", keyPolicy(stmt(`"Effect":"allow"`)), `Effect must be "Allow" or "Deny"`},
		{"numeric effect", keyPolicy(stmt(`"Effect":1`)), "Effect must be"},
		{"second statement named", keyPolicy(stmt(), stmt(`"Effect":"Maybe"`)), "Statement[1].Effect"},
		{"numeric sid", keyPolicy(stmt(`"Sid":7`)), "Sid must be a string"},
		{"unknown statement element", keyPolicy(stmt(`"Actions":"kms:*"`)), `unknown element "Actions"`},
		{"principal and not principal", keyPolicy(stmt(`"NotPrincipal":{"AWS":"*"}`)), "both Principal and NotPrincipal"},
		{"no action", keyPolicy(stmt(`"Action":-`)), "neither Action nor NotAction"},
		{"action and not action", keyPolicy(stmt(`"NotAction":"kms:Encrypt"`)), "both Action and NotAction"},
		{"numeric action", keyPolicy(stmt(`"Action":5`)), "Action must be a string or a non-empty array"},
		{"empty action list", keyPolicy(stmt(`"Action":[]`)), "non-empty array"},
		{"action list with number", keyPolicy(stmt(`"Action":["kms:Encrypt",5]`)), "non-empty array"},
		{"action list with null", keyPolicy(stmt(`"Action":[null]`)), "non-empty array"},
		{"action without service", keyPolicy(stmt(`"Action":"Encrypt"`)), `invalid action "Encrypt"`},
		{"action without name", keyPolicy(stmt(`"Action":"kms:"`)), "invalid action"},
		{"action with space", keyPolicy(stmt(`"Action":"kms:Encrypt Decrypt"`)), "invalid action"},
		{"action with two colons", keyPolicy(stmt(`"Action":"kms:Encrypt:x"`)), "invalid action"},
		{"empty action", keyPolicy(stmt(`"NotAction":[""]`, `"Action":-`)), "NotAction has an invalid action"},
		{"resource and not resource", keyPolicy(stmt(`"NotResource":"*"`)), "both Resource and NotResource"},
		{"empty resource", keyPolicy(stmt(`"Resource":""`)), "empty resource"},
		{"object resource", keyPolicy(stmt(`"Resource":{"arn":"*"}`)), "Resource must be"},

		{"principal string", keyPolicy(stmt(`"Principal":"arn:aws:iam::111122223333:root"`)), invalidPrincipals},
		{"principal empty object", keyPolicy(stmt(`"Principal":{}`)), invalidPrincipals},
		{"principal number", keyPolicy(stmt(`"Principal":5`)), invalidPrincipals},
		{"principal wildcard ARN", keyPolicy(stmt(`"Principal":{"AWS":"arn:aws:iam::111122223333:user/*"}`)), invalidPrincipals},
		{"principal not an ARN", keyPolicy(stmt(`"Principal":{"AWS":"alice"}`)), invalidPrincipals},
		{"principal short account", keyPolicy(stmt(`"Principal":{"AWS":"11112222333"}`)), invalidPrincipals},
		{"principal of another service", keyPolicy(stmt(`"Principal":{"AWS":"arn:aws:s3:::bucket"}`)), invalidPrincipals},
		{"principal numeric value", keyPolicy(stmt(`"Principal":{"AWS":111122223333}`)), invalidPrincipals},
		{"principal empty list", keyPolicy(stmt(`"Principal":{"AWS":[]}`)), invalidPrincipals},
		{"principal unknown kind", keyPolicy(stmt(`"Principal":{"Group":"admins"}`)), invalidPrincipals},
		{"principal kind case", keyPolicy(stmt(`"Principal":{"aws":"*"}`)), invalidPrincipals},

		{"condition string", keyPolicy(stmt(`"Condition":"none"`)), "Condition must be an object"},
		{"condition operator not object", keyPolicy(stmt(`"Condition":{"StringEquals":"x"}`)), `Condition["StringEquals"] must be an object`},
		{"unknown operator", keyPolicy(stmt(`"Condition":{"StringEqual":{"aws:username":"a"}}`)), `unknown condition operator "StringEqual"`},
		{"NullIfExists", keyPolicy(stmt(`"Condition":{"NullIfExists":{"aws:username":"true"}}`)), "unknown condition operator"},
		{"unknown set operator", keyPolicy(stmt(`"Condition":{"ForSomeValues:StringEquals":{"aws:TagKeys":"a"}}`)), "unknown condition operator"},
		{"IfExists alone", keyPolicy(stmt(`"Condition":{"IfExists":{"aws:username":"a"}}`)), "unknown condition operator"},
		{"null value", keyPolicy(stmt(`"Condition":{"StringEquals":{"aws:username":null}}`)), `Condition["StringEquals"]["aws:username"] must be a string`},
		{"nested array value", keyPolicy(stmt(`"Condition":{"StringEquals":{"aws:username":[["a"]]}}`)), "must be a string, number or boolean"},
		{"object value", keyPolicy(stmt(`"Condition":{"StringEquals":{"aws:username":{"a":"b"}}}`)), "must be a string, number or boolean"},
		{"empty key", keyPolicy(stmt(`"Condition":{"StringEquals":{"":"a"}}`)), "empty condition key"},
		{"bad number", keyPolicy(stmt(`"Condition":{"NumericLessThan":{"kms:ScheduleKeyDeletionPendingWindowInDays":"seven"}}`)), `"seven" is not a number`},
		{"NaN", keyPolicy(stmt(`"Condition":{"NumericEquals":{"k:n":"NaN"}}`)), "is not a number"},
		{"bad date", keyPolicy(stmt(`"Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}`)), "is not an ISO 8601 date"},
		{"bad IP", keyPolicy(stmt(`"Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.300/8"}}`)), "is not an IP address"},
		{"bad CIDR length", keyPolicy(stmt(`"Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/33"}}`)), "is not an IP address"},
		{"bad base64", keyPolicy(stmt(`"Condition":{"BinaryEquals":{"k:b":"not base64!"}}`)), "is not base64"},
		{"bad bool", keyPolicy(stmt(`"Condition":{"Bool":{"kms:GrantIsForAWSResource":"yes"}}`)), "is not a boolean"},
		{"bad null", keyPolicy(stmt(`"Condition":{"Null":{"kms:EncryptionContextKeys":"maybe"}}`)), `is not "true" or "false"`},
		{"error names the place", keyPolicy(stmt(), stmt(`"Condition":{"StringEquals":{"aws:username":"a"},"Bool":{"aws:SecureTransport":"1"}}`)),
			`Statement[1].Condition["Bool"]["aws:SecureTransport"]: "1" is not a boolean.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.doc)
			if p != nil {
				t.Errorf("returned a policy along with the error")
			}
			pe := wantPolicyError(t, err)
			if !strings.Contains(pe.Message, tt.want) {
				t.Errorf("message %q does not contain %q", pe.Message, tt.want)
			}
			if pe.Error() != pe.Message {
				t.Errorf("Error() = %q, Message = %q", pe.Error(), pe.Message)
			}
		})
	}
}

func TestOverlyPermissiveCondition(t *testing.T) {
	ec := "OverlyPermissiveCondition:EncryptionContext: Using the ForAllValues set operator with a single-valued condition key matches requests without the specified encryption context or with an unspecified encryption context. To fix, remove ForAllValues."
	tag := "OverlyPermissiveCondition:RequestTag: Using the ForAllValues set operator with a single-valued condition key matches requests without the specified tag or with an unspecified tag. To fix, remove ForAllValues."
	tests := []struct {
		condition string
		want      string // "" for accepted
	}{
		{`{"ForAllValues:StringEquals":{"kms:EncryptionContext:Purpose":"test"}}`, ec},
		{`{"forallvalues:StringLikeIfExists":{"KMS:encryptioncontext:purpose":"t*"}}`, ec},
		{`{"ForAllValues:StringEquals":{"aws:RequestTag/Project":"alpha"}}`, tag},
		// Set operators on multi-valued keys, and ForAnyValue anywhere, are fine.
		{`{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["AppName"]}}`, ""},
		{`{"ForAllValues:StringEquals":{"aws:TagKeys":["Project"]}}`, ""},
		{`{"ForAnyValue:StringEquals":{"kms:EncryptionContext:Purpose":"test"}}`, ""},
		{`{"StringEquals":{"kms:EncryptionContext:Purpose":"test"}}`, ""},
	}
	for _, tt := range tests {
		_, err := ParseResource(keyPolicy(stmt(`"Condition":` + tt.condition)))
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.condition, err)
			}
			continue
		}
		if pe := wantPolicyError(t, err); pe.Message != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.condition, pe.Message, tt.want)
		}
	}
}

func TestParseKinds(t *testing.T) {
	noPrincipal := keyPolicy(`{"Effect":"Allow","Action":"kms:*","Resource":"*"}`)
	noResource := keyPolicy(`{"Effect":"Allow","Principal":"*","Action":"kms:*"}`)
	identityNoResource := keyPolicy(`{"Effect":"Allow","Action":"kms:*"}`)
	tests := []struct {
		doc              string
		any, res, ident  bool // parses as Parse, ParseResource, ParseIdentity
		wantMessageIdent string
	}{
		{defaultKeyPolicy, true, true, false, "Policy document should not specify a principal."},
		{noPrincipal, true, false, true, ""},
		{noResource, true, false, false, ""},
		{identityNoResource, true, false, false, "neither Resource nor NotResource"},
	}
	for i, tt := range tests {
		for _, c := range []struct {
			parse func(string) (*Policy, error)
			want  bool
			name  string
		}{{Parse, tt.any, "Parse"}, {ParseResource, tt.res, "ParseResource"}, {ParseIdentity, tt.ident, "ParseIdentity"}} {
			p, err := c.parse(tt.doc)
			if (err == nil) != c.want || (p != nil) != c.want {
				t.Errorf("case %d %s: policy %v, error %v", i, c.name, p != nil, err)
			}
		}
		if tt.wantMessageIdent != "" {
			_, err := ParseIdentity(tt.doc)
			if pe := wantPolicyError(t, err); !strings.Contains(pe.Message, tt.wantMessageIdent) {
				t.Errorf("case %d: %q", i, pe.Message)
			}
		}
	}
	_, err := ParseResource(noPrincipal)
	if pe := wantPolicyError(t, err); !strings.Contains(pe.Message, "Statement[0] has neither Principal nor NotPrincipal") {
		t.Errorf("ParseResource: %q", pe.Message)
	}
}

func TestParseRecordsDocument(t *testing.T) {
	doc := `{
	  "Statement": {
	    "Sid": "With spaces, as key policies allow",
	    "Effect": "Deny",
	    "NotPrincipal": {"AWS": ["111122223333", "arn:aws:iam::111122223333:user/ExampleUser"], "Service": "ec2.amazonaws.com"},
	    "NotAction": ["kms:Decrypt", "kms:Describe*"],
	    "NotResource": "arn:aws:kms:*:111122223333:key/*",
	    "Condition": {
	      "NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": 7},
	      "Bool": {"aws:SecureTransport": [false]},
	      "ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["A", "B"]}
	    }
	  }
	}`
	p := mustParse(t, ParseResource, doc)
	if p.Version != "" || p.ID != "" || len(p.Statements) != 1 {
		t.Fatalf("policy %+v", p)
	}
	st := p.Statements[0]
	want := Statement{
		Sid:          "With spaces, as key policies allow",
		Effect:       Deny,
		NotPrincipal: &Principals{AWS: []string{"111122223333", "arn:aws:iam::111122223333:user/ExampleUser"}, Service: []string{"ec2.amazonaws.com"}},
		NotAction:    []string{"kms:Decrypt", "kms:Describe*"},
		NotResource:  []string{"arn:aws:kms:*:111122223333:key/*"},
		Conditions: []Condition{
			{Operator: "NumericLessThan", Key: "kms:ScheduleKeyDeletionPendingWindowInDays", Values: []string{"7"}},
			{Operator: "Bool", Key: "aws:SecureTransport", Values: []string{"false"}},
			{Operator: "ForAnyValue:StringEquals", Key: "kms:EncryptionContextKeys", Values: []string{"A", "B"}},
		},
	}
	st.c = compiled{}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("statement\n got %+v\nwant %+v", st, want)
	}

	star := mustParse(t, ParseResource, keyPolicy(stmt(`"Principal":"*"`)))
	if got := star.Statements[0].Principal; got == nil || !got.All || got.AWS != nil {
		t.Errorf(`"Principal":"*" recorded as %+v`, got)
	}
}

// A key policy statement without Resource is refused; one stored before
// that never applies.
func TestStatementWithoutResourceNeverApplies(t *testing.T) {
	_, err := ParseResource(keyPolicy(`{"Effect":"Deny","Principal":"*","Action":"kms:*"}`))
	if err == nil || !strings.Contains(err.Error(), "Statement[0] has neither Resource nor NotResource.") {
		t.Fatalf("a key policy statement without Resource: %v", err)
	}
	p := mustParse(t, ParseStoredResource, keyPolicy(
		`{"Effect":"Allow","Principal":"*","Action":"kms:*"}`,
		`{"Effect":"Deny","Principal":"*","Action":"kms:*"}`))
	if got := p.EvaluateResource(req(root, "kms:Encrypt", nil)); got != (Decision{}) {
		t.Errorf("got %+v", got)
	}
}

func TestVersions(t *testing.T) {
	for _, v := range []string{`"Version":"2012-10-17",`, `"Version":"2008-10-17",`, ``} {
		doc := `{` + v + `"Statement":` + stmt() + `}`
		p := mustParse(t, ParseResource, doc)
		if !p.Allows(req(keyUser, "kms:PutKeyPolicy", nil)) {
			t.Errorf("%s: does not allow through the account", v)
		}
	}
}

// hostileDocuments are documents at the 32 KB limit built to be slow to
// match, each with a request that matches it at its full length and one
// that does not: a matcher that backtracks takes exponential time on them.
func hostileDocuments() []hostileDocument {
	const size = 32 << 10
	stars := strings.Repeat("*a", size/4)
	dollars := strings.Repeat("${", size/4)
	as, fewAs := strings.Repeat("a", size/4), strings.Repeat("a", 2000)
	many := make([]string, 0, 300)
	for range cap(many) {
		many = append(many, stmt(`"Principal":"*"`, `"Action":["kms:*x*y*z"]`))
	}
	return []hostileDocument{
		{"stars in Resource", keyPolicy(`{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"` + stars + `"}`),
			&Request{Principal: keyUser, Action: "kms:Encrypt", Resource: as},
			&Request{Principal: keyUser, Action: "kms:Encrypt", Resource: fewAs}},
		{"stars in StringLike", keyPolicy(stmt(`"Principal":"*"`, `"Condition":{"StringLike":{"k:s":"`+stars+`"}}`)),
			&Request{Principal: keyUser, Action: "kms:Encrypt", Resource: keyARN, Context: MapContext{"k:s": {as}}},
			&Request{Principal: keyUser, Action: "kms:Encrypt", Resource: keyARN, Context: MapContext{"k:s": {fewAs}}}},
		{"unclosed variables", keyPolicy(stmt(`"Principal":"*"`, `"Condition":{"StringLike":{"k:s":"`+dollars+`"}}`)),
			&Request{Principal: keyUser, Action: "kms:Encrypt", Resource: keyARN, Context: MapContext{"k:s": {dollars}}},
			&Request{Principal: keyUser, Action: "kms:Encrypt", Resource: keyARN, Context: MapContext{"k:s": {dollars[:len(dollars)-1]}}}},
		{"many statements", keyPolicy(many...),
			&Request{Principal: keyUser, Action: "kms:" + fewAs + "x" + fewAs + "y" + fewAs + "z", Resource: keyARN},
			&Request{Principal: keyUser, Action: "kms:" + fewAs + "x" + fewAs + "y" + fewAs, Resource: keyARN}},
	}
}

type hostileDocument struct {
	name, doc string
	match     *Request
	miss      *Request
}

// Documents at the 32 KB limit built to be slow still parse and decide
// right at their full length: the matcher runs as an automaton with no
// backtracking (BenchmarkHostileDocuments measures how fast), and ${
// scanning is linear.
func TestHostileDocuments(t *testing.T) {
	for _, h := range hostileDocuments() {
		p := mustParse(t, ParseResource, h.doc)
		if !p.EvaluateResource(h.match).Allow {
			t.Errorf("%s (%d bytes): a request that matches is not allowed", h.name, len(h.doc))
		}
		if d := p.EvaluateResource(h.miss); d.Allow || d.AccountAllow {
			t.Errorf("%s (%d bytes): a request that does not match is allowed: %+v", h.name, len(h.doc), d)
		}
	}
}

func BenchmarkHostileDocuments(b *testing.B) {
	for _, h := range hostileDocuments() {
		b.Run(strings.ReplaceAll(h.name, " ", "_"), func(b *testing.B) {
			for b.Loop() {
				p, err := ParseResource(h.doc)
				if err != nil {
					b.Fatal(err)
				}
				p.EvaluateResource(h.match)
				p.EvaluateResource(h.miss)
			}
		})
	}
}

func TestParseTrust(t *testing.T) {
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"sts:AssumeRole"}]}`
	p, err := ParseTrust(doc)
	if err != nil {
		t.Fatal(err)
	}
	bob := Principal{ARN: "arn:aws:iam::111122223333:user/bob", Account: "111122223333"}
	d := p.EvaluateResource(&Request{Principal: bob, Action: "sts:AssumeRole", Resource: "arn:aws:iam::111122223333:role/r"})
	if !d.Allow {
		t.Fatalf("a trust policy without Resource did not apply to its role: %+v", d)
	}
	if rp, _ := ParseStoredResource(doc); rp.EvaluateResource(&Request{Principal: bob, Action: "sts:AssumeRole", Resource: "arn:aws:iam::111122223333:role/r"}).Allow {
		t.Fatal("a key policy statement without Resource applied")
	}
	// A Resource has no place in a trust policy, which applies to its
	// role; one stored before is still read, and matched as it was.
	withResource := `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"sts:AssumeRole","Resource":"arn:aws:iam::111122223333:role/r"}]}`
	for field, want := range map[string]string{"Resource": "Has prohibited field Resource", "NotResource": "Has prohibited field NotResource"} {
		if _, err := ParseTrust(strings.Replace(withResource, `"Resource"`, `"`+field+`"`, 1)); err == nil || err.Error() != want {
			t.Fatalf("a trust policy with %s: %v", field, err)
		}
	}
	stored, err := ParseStoredTrust(withResource)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.EvaluateResource(&Request{Principal: bob, Action: "sts:AssumeRole", Resource: "arn:aws:iam::111122223333:role/r"}).Allow ||
		stored.EvaluateResource(&Request{Principal: bob, Action: "sts:AssumeRole", Resource: "arn:aws:iam::111122223333:role/other"}).Allow {
		t.Fatal("a stored trust policy's Resource is not matched as it was")
	}
	if _, err := ParseTrust(`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`); err == nil {
		t.Fatal("a trust policy without Principal parsed")
	}
	// NotPrincipal, which in an Allow would trust every principal of every
	// account but those named, has no place in a trust policy.
	for _, effect := range []string{"Allow", "Deny"} {
		_, err := ParseTrust(`{"Statement":[{"Effect":"` + effect + `","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"sts:AssumeRole"}]}`)
		if err == nil || !strings.Contains(err.Error(), "prohibited field NotPrincipal") {
			t.Fatalf("a trust policy with NotPrincipal (%s): %v", effect, err)
		}
	}
}

// An IAM or STS ARN with a region names no principal (IAM and STS are
// global): a policy being written that names one is refused, with the
// principal in the error for IAM's message; one stored by an earlier
// version, which took it, still parses and applies to no one.
func TestPrincipalWithARegion(t *testing.T) {
	for _, p := range []string{
		"arn:aws:iam:us-east-1:111122223333:root",
		"arn:aws:iam:us-east-1:111122223333:user/alice",
		"arn:aws:sts:us-east-1:111122223333:assumed-role/app/s1",
	} {
		resource := keyPolicy(stmt(`"Principal":{"AWS":"` + p + `"}`))
		trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + p + `"},"Action":"sts:AssumeRole"}]}`
		for name, parse := range map[string]func(string) (*Policy, error){"ParseResource": ParseResource, "ParseTrust": ParseTrust} {
			doc := resource
			if name == "ParseTrust" {
				doc = trust
			}
			_, err := parse(doc)
			var pe *Error
			if !errors.As(err, &pe) || pe.Message != invalidPrincipals || pe.Principal != p {
				t.Errorf("%s of a policy naming %s: %v (%+v)", name, p, err, pe)
			}
		}
		if _, err := ParseStoredResource(resource); err != nil {
			t.Errorf("ParseStoredResource of a policy naming %s: %v", p, err)
		}
		if _, err := ParseStoredTrust(trust); err != nil {
			t.Errorf("ParseStoredTrust of a policy naming %s: %v", p, err)
		}
	}
}
