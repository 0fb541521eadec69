package policy

import "testing"

func TestPolicyVariablesInResource(t *testing.T) {
	const doc = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*",
		"Resource":"arn:aws:kms:us-east-1:${aws:PrincipalAccount}:key/${aws:username}-*"}}`
	p := mustParse(t, ParseIdentity, doc)
	tests := []struct {
		who      Principal
		resource string
		want     bool
	}{
		{keyUser, "arn:aws:kms:us-east-1:111122223333:key/ExampleUser-1", true},
		{keyUser, "arn:aws:kms:us-east-1:111122223333:key/Mallory-1", false},
		{stranger, "arn:aws:kms:us-east-1:111122223333:key/Mallory-1", true},
		{outsider, "arn:aws:kms:us-east-1:111122223333:key/Bob-1", false},
		{outsider, "arn:aws:kms:us-east-1:444455556666:key/Bob-1", true},
		// A session has no aws:username: the resource matches nothing.
		{userSession, "arn:aws:kms:us-east-1:111122223333:key/-1", false},
		{userSession, "arn:aws:kms:us-east-1:111122223333:key/${aws:username}-1", false},
	}
	for _, tt := range tests {
		r := &Request{Principal: tt.who, Action: "kms:Encrypt", Resource: tt.resource}
		if got := p.EvaluateIdentity(r).Allow; got != tt.want {
			t.Errorf("%s on %s: %v, want %v", tt.who.ARN, tt.resource, got, tt.want)
		}
	}
}

// Before 2012-10-17, and without a Version, ${...} is literal text.
func TestPolicyVariablesNeedVersion(t *testing.T) {
	for _, version := range []string{`"Version":"2008-10-17",`, ``} {
		doc := `{` + version + `"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:us-east-1:111122223333:key/${aws:username}"}}`
		p := mustParse(t, ParseIdentity, doc)
		literal := &Request{Principal: keyUser, Action: "kms:Encrypt", Resource: "arn:aws:kms:us-east-1:111122223333:key/${aws:username}"}
		named := &Request{Principal: keyUser, Action: "kms:Encrypt", Resource: "arn:aws:kms:us-east-1:111122223333:key/ExampleUser"}
		if !p.EvaluateIdentity(literal).Allow || p.EvaluateIdentity(named).Allow {
			t.Errorf("%s: variable substituted", version)
		}
	}
}

func TestPolicyVariablesInConditions(t *testing.T) {
	tag := func(v string) MapContext { return MapContext{"aws:principaltag/team": {v}} }
	tests := []struct {
		name      string
		condition string
		who       Principal
		ctx       MapContext
		want      bool
	}{
		{"username", `{"StringEquals":{"kms:EncryptionContext:Owner":"${aws:username}"}}`, keyUser, MapContext{"kms:encryptioncontext:owner": {"ExampleUser"}}, true},
		{"username differs", `{"StringEquals":{"kms:EncryptionContext:Owner":"${aws:username}"}}`, stranger, MapContext{"kms:encryptioncontext:owner": {"ExampleUser"}}, false},
		{"variable key ignores case", `{"StringEquals":{"kms:EncryptionContext:Owner":"${AWS:UserName}"}}`, keyUser, MapContext{"kms:encryptioncontext:owner": {"ExampleUser"}}, true},
		{"userid in a pattern", `{"StringLike":{"kms:EncryptionContext:Owner":"${aws:userid}/*"}}`, keyUser, MapContext{"kms:encryptioncontext:owner": {"AIDAUSER/docs"}}, true},
		{"account", `{"StringEquals":{"kms:EncryptionContext:Account":"${kms:CallerAccount}"}}`, outsider, MapContext{"kms:encryptioncontext:account": {"444455556666"}}, true},
		{"from the context", `{"StringEquals":{"kms:EncryptionContext:Team":"${aws:PrincipalTag/team}"}}`, keyUser, MapContext{"aws:principaltag/team": {"blue"}, "kms:encryptioncontext:team": {"blue"}}, true},
		{"ARN operator", `{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:${aws:PrincipalAccount}:*"}}`, keyUser, MapContext{"aws:sourcearn": {"arn:aws:sns:us-east-1:111122223333:topic"}}, true},
		{"ARN operator other account", `{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:${aws:PrincipalAccount}:*"}}`, outsider, MapContext{"aws:sourcearn": {"arn:aws:sns:us-east-1:111122223333:topic"}}, false},
		{"Bool operator", `{"Bool":{"aws:SecureTransport":"${k:expected}"}}`, keyUser, MapContext{"aws:securetransport": {"true"}, "k:expected": {"true"}}, true},
		// Defaults, for keys without a value.
		{"default used", `{"StringEquals":{"kms:EncryptionContext:Owner":"${aws:username, 'anonymous'}"}}`, userSession, MapContext{"kms:encryptioncontext:owner": {"anonymous"}}, true},
		{"default not used", `{"StringEquals":{"kms:EncryptionContext:Owner":"${aws:username, 'anonymous'}"}}`, keyUser, MapContext{"kms:encryptioncontext:owner": {"anonymous"}}, false},
		{"default with quote", `{"StringEquals":{"kms:EncryptionContext:Owner":"${aws:username,'o''brien'}"}}`, userSession, MapContext{"kms:encryptioncontext:owner": {"o'brien"}}, true},
		// A variable without a value matches nothing...
		{"unresolved", `{"StringEquals":{"kms:EncryptionContext:Owner":"${aws:username}"}}`, userSession, MapContext{"kms:encryptioncontext:owner": {""}}, false},
		{"unresolved among values", `{"StringEquals":{"kms:EncryptionContext:Owner":["${aws:username}","app"]}}`, userSession, MapContext{"kms:encryptioncontext:owner": {"app"}}, true},
		// ...so a negated operator holds.
		{"unresolved negated", `{"StringNotEquals":{"kms:EncryptionContext:Owner":"${aws:username}"}}`, userSession, MapContext{"kms:encryptioncontext:owner": {"x"}}, true},
		{"multi-valued key does not resolve", `{"StringEquals":{"k:s":"${aws:TagKeys}"}}`, keyUser, MapContext{"aws:tagkeys": {"a", "b"}, "k:s": {"a"}}, false},
		// Substituted values are literal, never wildcards.
		{"value is literal", `{"StringLike":{"k:s":"${aws:PrincipalTag/team}"}}`, keyUser, MapContext{"aws:principaltag/team": {"*"}, "k:s": {"anything"}}, false},
		{"value is literal, matching", `{"StringLike":{"k:s":"${aws:PrincipalTag/team}"}}`, keyUser, MapContext{"aws:principaltag/team": {"*"}, "k:s": {"*"}}, true},
		// Escapes.
		{"escaped star", `{"StringLike":{"k:s":"a${*}b"}}`, keyUser, MapContext{"k:s": {"a*b"}}, true},
		{"escaped star is not a wildcard", `{"StringLike":{"k:s":"a${*}b"}}`, keyUser, MapContext{"k:s": {"axb"}}, false},
		{"escaped question mark", `{"StringLike":{"k:s":"why${?}"}}`, keyUser, MapContext{"k:s": {"why?"}}, true},
		{"escaped question mark is literal", `{"StringLike":{"k:s":"why${?}"}}`, keyUser, MapContext{"k:s": {"why!"}}, false},
		{"escaped dollar", `{"StringEquals":{"k:s":"${$}{aws:username}"}}`, keyUser, MapContext{"k:s": {"${aws:username}"}}, true},
		{"unterminated is literal", `{"StringEquals":{"k:s":"${aws:username"}}`, keyUser, MapContext{"k:s": {"${aws:username"}}, true},
		{"tag variable", `{"StringEquals":{"k:s":"team-${aws:PrincipalTag/team}"}}`, keyUser, tag("blue").with("k:s", "team-blue"), true},
	}
	for _, tt := range tests {
		if got := holds(t, tt.condition, tt.who, tt.ctx); got != tt.want {
			t.Errorf("%s: %s = %v, want %v", tt.name, tt.condition, got, tt.want)
		}
	}
}

func (m MapContext) with(key string, vals ...string) MapContext {
	out := MapContext{key: vals}
	for k, v := range m {
		out[k] = v
	}
	return out
}
