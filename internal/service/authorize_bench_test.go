package service

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"

	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/store/boltstore"
)

const consolePolicy = `{
  "Version": "2012-10-17",
  "Id": "key-consolepolicy-3",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "Allow access for Key Administrators", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/admin"},
     "Action": ["kms:Create*","kms:Describe*","kms:Enable*","kms:List*","kms:Put*","kms:Update*","kms:Revoke*","kms:Disable*","kms:Get*","kms:Delete*","kms:TagResource","kms:UntagResource","kms:ScheduleKeyDeletion","kms:CancelKeyDeletion"],
     "Resource": "*"},
    {"Sid": "Allow use of the key", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/app"},
     "Action": ["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"], "Resource": "*"},
    {"Sid": "Allow attachment of persistent resources", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/app"},
     "Action": ["kms:CreateGrant","kms:ListGrants","kms:RevokeGrant"], "Resource": "*", "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}}
  ]
}`

// BenchmarkAuthorize is what deciding an Encrypt call costs once the key
// is warm: the key policy, the caller's identity policies and the grants.
func BenchmarkAuthorize(b *testing.B) {
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "kms.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	k := make([]byte, 32)
	rand.Read(k)
	root, _ := keys.NewRootKey(k)
	s, _ := New(Config{Store: st, RootKey: root, Region: "us-east-1"})
	rootCaller := Caller{AccountID: "111122223333", ARN: "arn:aws:iam::111122223333:root", Root: true,
		Principal: policy.Principal{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333"}}
	ctx := context.Background()
	idPolicy, _ := policy.ParseIdentity(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"arn:aws:kms:us-east-1:111122223333:key/*"}]}`)
	user := Caller{AccountID: "111122223333", ARN: "arn:aws:iam::111122223333:user/app",
		Principal: policy.Principal{ARN: "arn:aws:iam::111122223333:user/app", Account: "111122223333", Username: "app"},
		Policies:  []*policy.Policy{idPolicy}}
	for _, tc := range []struct {
		name   string
		policy *string
		caller Caller
	}{
		{"DefaultPolicyRoot", nil, rootCaller},
		{"DefaultPolicyUserWithIdentityPolicy", nil, user},
		{"ConsolePolicyKeyUser", ptrTo(consolePolicy), user},
	} {
		b.Run(tc.name, func(b *testing.B) {
			out, err := s.CreateKey(ctx, rootCaller, &kmsapi.CreateKeyInput{Policy: tc.policy})
			if err != nil {
				b.Fatal(err)
			}
			lk, err := s.repo.Load(ctx, s.Region(), out.KeyMetadata.KeyID)
			if err != nil {
				b.Fatal(err)
			}
			ec := map[string]string{"purpose": "bench"}
			b.ReportAllocs()
			for b.Loop() {
				if err := s.authz.Key(context.Background(), &tc.caller, "kms:Encrypt", lk, &authz.Conditions{EC: ec, Extra: symmetricAlgorithm}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func ptrTo(s string) *string { return &s }
