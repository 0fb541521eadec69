package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// sizedPolicy is an identity policy of exactly chars characters but
// whitespace, with pad spaces between its members.
func sizedPolicy(t *testing.T, chars, pad int) string {
	t.Helper()
	head := `{"Version":"2012-10-17",` + strings.Repeat(" ", pad) + `"Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"`
	tail := `"}]}`
	n := chars - len(head) + pad - len(tail)
	if n < 1 {
		t.Fatalf("a policy of %d characters is too small", chars)
	}
	return head + strings.Repeat("a", n) + tail
}

// IAM does not count whitespace in a policy's size, as its quotas say:
// an inline policy laid out for people to read fits as it would
// minified, and one over the limit without its whitespace does not. The
// policies stored with their whitespace are bounded too, so that no
// owner's policies read on each of its requests grow without bound.
func TestIAMPolicySizeIgnoresWhitespace(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	for _, user := range []string{"alice", "bob"} {
		if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(user)}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(user, name, doc string) error {
		_, err := root.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(user), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
		return err
	}
	roomy := sizedPolicy(t, 10240, 4000)
	if err := put("alice", "roomy", roomy); err != nil {
		t.Fatalf("a policy of 10,240 characters and 4,000 spaces: %v", err)
	}
	got, err := root.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("roomy")})
	if err != nil {
		t.Fatal(err)
	}
	if decodePolicy(t, aws.ToString(got.PolicyDocument)) != roomy {
		t.Error("the policy did not come back as it was put, whitespace and all")
	}
	const msg = "Maximum policy size of 10240 bytes exceeded for user alice"
	expectIAMError(t, put("alice", "roomy", sizedPolicy(t, 10241, 0)), http.StatusConflict, "LimitExceeded", msg)
	expectIAMError(t, put("alice", "more", sizedPolicy(t, 100, 0)), http.StatusConflict, "LimitExceeded", msg)

	// Mostly whitespace: little to count, much to store.
	if err := put("bob", "w1", sizedPolicy(t, 200, 70000)); err != nil {
		t.Fatalf("a policy of 200 characters and 70,000 spaces: %v", err)
	}
	expectIAMError(t, put("bob", "w2", sizedPolicy(t, 200, 70000)), http.StatusConflict, "LimitExceeded",
		"Maximum policy size of 10240 bytes exceeded for user bob")
	names, err := root.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("bob")})
	if err != nil || len(names.PolicyNames) != 1 {
		t.Fatalf("bob's policies after the refusal: %v, %v", names, err)
	}
}
