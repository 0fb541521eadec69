package policy

import "testing"

func BenchmarkEvaluateConsolePolicy(b *testing.B) {
	p := mustParse(b, ParseResource, consoleKeyPolicy)
	ctx := MapContext{"kms:grantisforawsresource": {"true"}, "aws:sourceip": {"192.0.2.1"}}
	cases := []struct {
		name string
		r    *Request
	}{
		{"user-Encrypt", req(keyUser, "kms:Encrypt", ctx)},
		{"admin-Encrypt", req(keyAdmin, "kms:Encrypt", ctx)},
		{"session-CreateGrant", req(userSession, "kms:CreateGrant", ctx)},
		{"outsider-Decrypt", req(outsider, "kms:Decrypt", ctx)},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.EvaluateResource(c.r)
			}
		})
	}
}

func BenchmarkEvaluateConditions(b *testing.B) {
	p := mustParse(b, ParseResource, keyPolicy(
		`{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*",
		  "Condition":{"StringEquals":{"kms:CallerAccount":"111122223333","kms:ViaService":"ec2.us-east-1.amazonaws.com"},
		               "ForAnyValue:StringLike":{"kms:EncryptionContextKeys":"aws:ebs:*"},
		               "IpAddress":{"aws:SourceIp":["192.0.2.0/24","2001:db8::/32"]}}}`,
		`{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}`))
	r := req(keyUser, "kms:Decrypt", MapContext{
		"kms:viaservice":            {"ec2.us-east-1.amazonaws.com"},
		"kms:encryptioncontextkeys": {"aws:ebs:id"},
		"aws:sourceip":              {"192.0.2.1"},
		"aws:securetransport":       {"true"},
	})
	if !p.EvaluateResource(r).Allow {
		b.Fatal("not allowed")
	}
	b.ReportAllocs()
	for b.Loop() {
		p.EvaluateResource(r)
	}
}

func BenchmarkParseConsolePolicy(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(consoleKeyPolicy)))
	for b.Loop() {
		if _, err := ParseResource(consoleKeyPolicy); err != nil {
			b.Fatal(err)
		}
	}
}
