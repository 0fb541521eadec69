package e2e_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// An inline policy of a user or role names no principal (it applies to
// its owner): IAM refuses one that does with MalformedPolicyDocument
// "Policy document should not specify a principal.", the message tools
// that write policies (Terraform's aws_iam_role_policy) report from AWS.
func TestIAMInlinePolicyWithPrincipal(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("alice")}); err != nil {
		t.Fatal(err)
	}
	e.createRole(t, "ops", trustAccount)
	const msg = "Policy document should not specify a principal."
	for _, doc := range []string{
		trustAccount,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`,
	} {
		_, err := root.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("p"), PolicyDocument: aws.String(doc)})
		expectIAMError(t, err, http.StatusBadRequest, "MalformedPolicyDocument", msg)
		_, err = root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("ops"), PolicyName: aws.String("p"), PolicyDocument: aws.String(doc)})
		expectIAMError(t, err, http.StatusBadRequest, "MalformedPolicyDocument", msg)
	}
}

// A policy document that is not JSON is refused in IAM's words: "Syntax
// errors in policy." for an inline policy, "This policy contains invalid
// Json" for a role's trust policy (the messages tools that write
// policies, Terraform's and kops's among them, report from AWS).
func TestIAMPolicyThatIsNotJSON(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("alice")}); err != nil {
		t.Fatal(err)
	}
	e.createRole(t, "ops", trustAccount)
	for _, doc := range []string{`{"Version":"2012-10-17","Statement":[`, `Version: 2012-10-17`, trustAccount + `{}`} {
		_, err := root.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("alice"), PolicyName: aws.String("p"), PolicyDocument: aws.String(doc)})
		expectIAMError(t, err, http.StatusBadRequest, "MalformedPolicyDocument", "Syntax errors in policy.")
		_, err = root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("ops"), PolicyName: aws.String("p"), PolicyDocument: aws.String(doc)})
		expectIAMError(t, err, http.StatusBadRequest, "MalformedPolicyDocument", "Syntax errors in policy.")
		_, err = root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("app"), AssumeRolePolicyDocument: aws.String(doc)})
		expectIAMError(t, err, http.StatusBadRequest, "MalformedPolicyDocument", "This policy contains invalid Json")
	}
}
