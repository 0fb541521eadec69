package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// TestIAMNamesOfLookups: every name a request gives is checked as IAM
// checks it, on lookups as on creation, and names match regardless of
// ASCII case only: a Kelvin sign (U+212A), which Unicode lowercases to k,
// does not name kate.
func TestIAMNamesOfLookups(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("kate")}); err != nil {
		t.Fatal(err)
	}
	e.putUserPolicy(t, "kate", "p", allowDoc("*", "kms:*"))
	e.createRole(t, "app", trustAccount)
	const kelvin = "\u212Aate"
	invalid := func(field, value string) string {
		return "1 validation error detected: Value '" + value + "' at '" + field + "' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
	}
	for _, tc := range []struct {
		call string
		err  error
		msg  string
	}{
		{"CreateAccessKey", second(root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(kelvin)})), invalid("userName", kelvin)},
		{"ListAccessKeys", second(root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(kelvin)})), invalid("userName", kelvin)},
		{"GetUser", second(root.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(kelvin)})), invalid("userName", kelvin)},
		{"DeleteUser", second(root.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(kelvin)})), invalid("userName", kelvin)},
		{"GetUserPolicy owner", second(root.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String(kelvin), PolicyName: aws.String("p")})), invalid("userName", kelvin)},
		{"GetUserPolicy name", second(root.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("kate"), PolicyName: aws.String("p q")})), invalid("policyName", "p q")},
		{"ListUserPolicies", second(root.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("ka te")})), invalid("userName", "ka te")},
		{"DeleteUserPolicy", second(root.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(kelvin), PolicyName: aws.String("p")})), invalid("userName", kelvin)},
		{"GetRolePolicy", second(root.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("a/pp"), PolicyName: aws.String("p")})), invalid("roleName", "a/pp")},
		{"ListRolePolicies", second(root.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String("")})),
			"2 validation errors detected: Value '' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+; Value '' at 'roleName' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"DeleteRolePolicy", second(root.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("app"), PolicyName: aws.String(strings.Repeat("p", 129))})),
			"1 validation error detected: Value '" + strings.Repeat("p", 129) + "' at 'policyName' failed to satisfy constraint: Member must have length less than or equal to 128"},
		{"UpdateAccessKey user", second(root.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String(kelvin), AccessKeyId: aws.String("AKIAAAAAAAAAAAAAAAAA"), Status: "Inactive"})), invalid("userName", kelvin)},
		{"DeleteAccessKey id", second(root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{AccessKeyId: aws.String("AKIA/../x")})),
			"2 validation errors detected: Value 'AKIA/../x' at 'accessKeyId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]+; Value 'AKIA/../x' at 'accessKeyId' failed to satisfy constraint: Member must have length greater than or equal to 16"},
		{"DeleteAccessKey id pattern", second(root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{AccessKeyId: aws.String("AKIAAAAAAAAAAAAA/AAA")})),
			"1 validation error detected: Value 'AKIAAAAAAAAAAAAA/AAA' at 'accessKeyId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]+"},
	} {
		t.Run(tc.call, func(t *testing.T) {
			expectIAMError(t, tc.err, http.StatusBadRequest, "ValidationError", tc.msg)
		})
	}
	// ASCII case still does not matter.
	out, err := root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("KATE")})
	if err != nil || aws.ToString(out.AccessKey.UserName) != "kate" {
		t.Fatalf("CreateAccessKey for KATE: %v", err)
	}
	keys, err := root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("kate")})
	if err != nil || len(keys.AccessKeyMetadata) != 1 {
		t.Errorf("kate has %v access keys (%v), want the one made for KATE alone", keys, err)
	}
}

// TestIAMRoleBounds: a role's description holds at most 1,000 characters
// of IAM's alphabet, and its trust policy at most 2,048 characters but
// whitespace (the ACLSizePerRole quota), as on AWS.
func TestIAMRoleBounds(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	create := func(name, trust, description string) error {
		_, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust), Description: aws.String(description)})
		return err
	}
	const descPrefix = "1 validation error detected: Value at 'description' failed to satisfy constraint: "
	expectIAMError(t, create("long-description", trustAccount, strings.Repeat("d", 1001)), http.StatusBadRequest, "ValidationError",
		descPrefix+"Member must have length less than or equal to 1000")
	expectIAMError(t, create("control-description", trustAccount, "line\x00"), http.StatusBadRequest, "ValidationError",
		descPrefix+`Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*`)
	if err := create("full-description", trustAccount, strings.Repeat("é", 1000)); err != nil {
		t.Errorf("a description of 1,000 characters: %v", err)
	}

	// A trust policy padded with a Sid to exactly 2,048 characters but
	// whitespace, indented with more.
	pad := func(n int) string {
		doc := `{"Version":"2012-10-17","Statement":[{"Sid":"","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`
		return strings.Replace(doc, `"Sid":""`, `"Sid":"`+strings.Repeat("s", n-len(doc))+`"`, 1)
	}
	if err := create("full-trust", strings.ReplaceAll(pad(2048), ",", ",\n    "), ""); err != nil {
		t.Errorf("a trust policy of 2,048 characters: %v", err)
	}
	expectIAMError(t, create("long-trust", pad(2049), ""), http.StatusConflict, "LimitExceeded", "Cannot exceed quota for ACLSizePerRole: 2048")
	for _, name := range []string{"long-description", "control-description", "long-trust"} {
		_, err := root.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "")
	}
}

// second is the error of a call's two results.
func second[T any](_ T, err error) error { return err }
