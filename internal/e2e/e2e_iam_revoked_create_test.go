package e2e_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// A CreateUser or CreateRole whose caller's permission is taken away
// while the call is under way (between the read of its caller for the
// signature and the transaction that makes the entity) makes nothing:
// like every other change to IAM, it is decided on the caller as its
// transaction reads it.
func TestE2EIAMCreateDecidedOnTheCallerNow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const allowCreate = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:CreateUser","iam:CreateRole","iam:GetUser"],"Resource":"*"}]}`
	for _, c := range []struct {
		name   string
		create func(*iam.Client) error
		exists func(*iam.Client) error
	}{
		{"CreateUser", func(c *iam.Client) error {
			_, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("made-late")})
			return err
		}, func(c *iam.Client) error {
			_, err := c.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("made-late")})
			return err
		}},
		{"CreateRole", func(c *iam.Client) error {
			_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("made-late"), AssumeRolePolicyDocument: aws.String(trustAccount)})
			return err
		}, func(c *iam.Client) error {
			_, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("made-late")})
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, h := newHeldEnv(t)
			u := e.newUser(t, "creator", allowCreate)
			// The creator's credential cached, so that the read held is
			// the one of its signature's check.
			if _, err := u.iam.GetUser(ctx, &iam.GetUserInput{}); err != nil {
				t.Fatal(err)
			}
			var err error
			duringHeldRead(t, h, func() error { err = c.create(u.iam); return err }, func() error {
				_, err := e.rootIAM().DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("creator"), PolicyName: aws.String("p0")})
				return err
			})
			expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
			expectIAMError(t, c.exists(e.rootIAM()), http.StatusNotFound, "NoSuchEntity", "")
		})
	}
}
