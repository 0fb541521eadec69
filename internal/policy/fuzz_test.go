package policy

import (
	"errors"
	"testing"
)

// FuzzParse checks that no document makes Parse panic or return both a
// policy and an error, and that whatever parses evaluates without panic.
func FuzzParse(f *testing.F) {
	for _, doc := range []string{
		defaultKeyPolicy,
		consoleKeyPolicy,
		keyPolicy(stmt(`"Condition":{"ForAnyValue:StringLike":{"kms:EncryptionContextKeys":["App*","${aws:username}"]},"NumericLessThanIfExists":{"k:n":3}}`)),
		keyPolicy(stmt(`"Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]},"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}`)),
		keyPolicy(stmt(`"Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:${aws:PrincipalAccount}:*"},"Null":{"kms:ViaService":true},"BinaryEquals":{"k:b":"AAAA"}}`)),
		`{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["111122223333","arn:aws:iam::111122223333:user/a"]},"NotAction":"kms:Get*","NotResource":"arn:aws:kms:*:111122223333:key/${aws:userid, 'x'}*"}}`,
		`{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:us-*-1:*"}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"${$}${*}${?}${"}]}`,
	} {
		f.Add(doc)
	}
	ctx := MapContext{
		"kms:encryptioncontextkeys":  {"AppName", "Project"},
		"kms:encryptioncontext:app":  {"x"},
		"aws:sourceip":               {"10.1.2.3"},
		"aws:currenttime":            {"2026-08-01T00:00:00Z"},
		"aws:sourcearn":              {"arn:aws:sns:us-east-1:111122223333:topic"},
		"kms:grantisforawsresource":  {"true"},
		"k:n":                        {"2"},
		"k:b":                        {"AAAA"},
		"aws:tagkeys":                {},
		"kms:viaservice":             {"ec2.us-east-1.amazonaws.com"},
		"kms:encryptioncontext:dept": {"IT"},
	}
	requests := []*Request{
		req(keyUser, "kms:Encrypt", ctx),
		req(userSession, "kms:CreateGrant", ctx),
		req(root, "kms:PutKeyPolicy", nil),
		{Principal: Principal{}, Action: "", Resource: ""},
	}
	f.Fuzz(func(t *testing.T, doc string) {
		for _, parse := range []func(string) (*Policy, error){Parse, ParseResource, ParseIdentity} {
			p, err := parse(doc)
			if err != nil {
				var pe *Error
				if p != nil || !errors.As(err, &pe) || pe.Message == "" {
					t.Fatalf("policy %v, error %#v", p, err)
				}
				continue
			}
			for _, r := range requests {
				p.EvaluateResource(r)
				p.EvaluateIdentity(r)
				p.Allows(r)
			}
		}
	})
}
