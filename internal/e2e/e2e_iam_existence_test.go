package e2e_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// TestIAMExistenceIsNotDisclosed: a caller without IAM rights gets the
// same AccessDenied for a user or role that exists, whatever its path, as
// for one that does not, naming it as AWS does ("user NAME", "role
// NAME"), so it cannot list an account's users and roles, nor their
// paths, by guessing names. A caller allowed on a path is decided on the
// real ARN; a name that names no one has no path.
func TestIAMExistenceIsNotDisclosed(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bob"), Path: aws.String("/team/secret-project/")}); err != nil {
		t.Fatal(err)
	}
	e.putUserPolicy(t, "bob", "p", allowDoc("*", "kms:*"))
	if _, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("ops"), Path: aws.String("/svc/"), AssumeRolePolicyDocument: aws.String(trustAccount)}); err != nil {
		t.Fatal(err)
	}
	nobody := e.newUser(t, "nobody", allowDoc("*", "kms:*")).iam
	team := e.newUser(t, "team-admin", allowDoc("arn:aws:iam::111122223333:user/team/*", "iam:*")).iam

	calls := []struct {
		action string
		kind   string
		call   func(c *iam.Client, name string) error
	}{
		{"iam:GetUser", "user", func(c *iam.Client, n string) error {
			return second(c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(n)}))
		}},
		{"iam:GetUserPolicy", "user", func(c *iam.Client, n string) error {
			return second(c.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String(n), PolicyName: aws.String("p")}))
		}},
		{"iam:ListUserPolicies", "user", func(c *iam.Client, n string) error {
			return second(c.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String(n)}))
		}},
		{"iam:DeleteUserPolicy", "user", func(c *iam.Client, n string) error {
			return second(c.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String(n), PolicyName: aws.String("none")}))
		}},
		{"iam:ListAccessKeys", "user", func(c *iam.Client, n string) error {
			return second(c.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String(n)}))
		}},
		{"iam:CreateAccessKey", "user", func(c *iam.Client, n string) error {
			return second(c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(n)}))
		}},
		{"iam:DeleteAccessKey", "user", func(c *iam.Client, n string) error {
			return second(c.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(n), AccessKeyId: aws.String(randomAKID(t))}))
		}},
		{"iam:GetLoginProfile", "user", func(c *iam.Client, n string) error {
			return second(c.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String(n)}))
		}},
		{"iam:DeleteUser", "user", func(c *iam.Client, n string) error {
			return second(c.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String(n)}))
		}},
		{"iam:GetRole", "role", func(c *iam.Client, n string) error {
			return second(c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(n)}))
		}},
		{"iam:ListRolePolicies", "role", func(c *iam.Client, n string) error {
			return second(c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(n)}))
		}},
		{"iam:GetRolePolicy", "role", func(c *iam.Client, n string) error {
			return second(c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(n), PolicyName: aws.String("p")}))
		}},
		{"iam:DeleteRole", "role", func(c *iam.Client, n string) error {
			return second(c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(n)}))
		}},
	}
	existing := map[string]string{"user": "bob", "role": "ops"}
	for _, c := range calls {
		t.Run(c.action, func(t *testing.T) {
			for _, name := range []string{existing[c.kind], "ghost"} {
				expectIAMError(t, c.call(nobody, name), http.StatusForbidden, "AccessDenied",
					"User: "+userARNOf("nobody")+" is not authorized to perform: "+c.action+" on resource: "+c.kind+" "+name+
						" because no identity-based policy allows the "+c.action+" action")
			}
		})
	}
	// Allowed on the users under /team/: bob there, not a name of no one.
	if _, err := team.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("bob")}); err != nil {
		t.Errorf("GetUser of bob, allowed by its path: %v", err)
	}
	_, err := team.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("ghost")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
		"User: "+userARNOf("team-admin")+" is not authorized to perform: iam:GetUser on resource: user ghost because no identity-based policy allows the iam:GetUser action")
	// The root is told.
	_, err = root.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("ghost")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The user with name ghost cannot be found.")
}

// A CreateRole refused to its caller tells it nothing of the users and
// roles its trust policy names: the call is authorized before those are
// looked up, as on AWS, so a name that exists and one that does not are
// refused alike, and no role is made.
func TestIAMCreateRoleTrustDoesNotDiscloseExistence(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	if _, err := e.rootIAM().CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	nobody := e.newUser(t, "nobody", allowDoc("*", "kms:*")).iam
	for _, name := range []string{"bob", "ghost"} {
		trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + userARNOf(name) + `"},"Action":"sts:AssumeRole"}]}`
		_, err := nobody.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("probe"), AssumeRolePolicyDocument: aws.String(trust)})
		expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
			"User: "+userARNOf("nobody")+" is not authorized to perform: iam:CreateRole on resource: "+roleARNOf("probe")+
				" because no identity-based policy allows the iam:CreateRole action")
	}
}
