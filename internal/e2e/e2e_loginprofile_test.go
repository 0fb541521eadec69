package e2e_test

// End-to-end tests of IAM login profiles (the password a user signs in to
// the console with) through the real aws-sdk-go-v2 iam client.

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

func TestLoginProfileLifecycle(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("alice")}); err != nil {
		t.Fatal(err)
	}

	_, err := root.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String("alice")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "Login Profile for User alice cannot be found.")

	created, err := root.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String("alice"),
		Password: aws.String("Correct-Horse-9"), PasswordResetRequired: true})
	if err != nil {
		t.Fatal(err)
	}
	if lp := created.LoginProfile; aws.ToString(lp.UserName) != "alice" || !lp.PasswordResetRequired || lp.CreateDate == nil || lp.CreateDate.IsZero() {
		t.Fatalf("CreateLoginProfile returned %+v", lp)
	}
	got, err := root.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.LoginProfile.UserName) != "alice" || !got.LoginProfile.CreateDate.Equal(*created.LoginProfile.CreateDate) {
		t.Fatalf("GetLoginProfile returned %+v", got.LoginProfile)
	}

	_, err = root.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String("alice"), Password: aws.String("Another-Pass-1")})
	expectIAMError(t, err, http.StatusConflict, "EntityAlreadyExists", "Login Profile for user alice already exists.")

	_, err = root.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("alice")})
	expectIAMError(t, err, http.StatusConflict, "DeleteConflict", "Cannot delete entity, must delete login profile first.")

	if _, err := root.UpdateLoginProfile(ctx, &iam.UpdateLoginProfileInput{UserName: aws.String("alice"),
		Password: aws.String("New-Password-2"), PasswordResetRequired: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	got, err = root.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String("alice")})
	if err != nil {
		t.Fatal(err)
	}
	if got.LoginProfile.PasswordResetRequired {
		t.Fatal("UpdateLoginProfile left PasswordResetRequired set")
	}

	if _, err := root.DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{UserName: aws.String("alice")}); err != nil {
		t.Fatal(err)
	}
	_, err = root.DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{UserName: aws.String("alice")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "Login Profile for User alice cannot be found.")
	_, err = root.UpdateLoginProfile(ctx, &iam.UpdateLoginProfileInput{UserName: aws.String("alice"), Password: aws.String("New-Password-3")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "Login Profile for User alice cannot be found.")
	if _, err := root.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("alice")}); err != nil {
		t.Fatalf("DeleteUser after its login profile is gone: %v", err)
	}
}

func TestLoginProfileErrors(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bob")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, password string
		status               int
		code, msg            string
	}{
		{"no such user", "nobody", "Correct-Horse-9", http.StatusNotFound, "NoSuchEntity", "The user with name nobody cannot be found."},
		{"too short", "bob", "Ab1-", http.StatusBadRequest, "PasswordPolicyViolation", "Password should have a minimum length of 8"},
		{"one character type", "bob", "alllowercase", http.StatusBadRequest, "PasswordPolicyViolation", ""},
		{"too long", "bob", "Aa1-" + longPassword(), http.StatusBadRequest, "ValidationError", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := root.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String(tc.user), Password: aws.String(tc.password)})
			expectIAMError(t, err, tc.status, tc.code, tc.msg)
		})
	}
	_, err := root.GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String("bob")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "Login Profile for User bob cannot be found.")

	// A user without iam:CreateLoginProfile may not give anyone a password.
	u := e.newUser(t, "carol", allowDoc("*", "iam:GetUser"))
	_, err = u.iam.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{UserName: aws.String("bob"), Password: aws.String("Correct-Horse-9")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
}

// A login profile call without UserName is about the calling user, as
// IAM's UserName "defaults to the principal making the request"; the
// account's root must name one (AWS has it omit the name only in an
// AssumeRoot session, which this server does not serve).
func TestLoginProfileOfTheCaller(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	dave := e.newUser(t, "dave", allowDoc(userARNOf("dave"), "iam:*LoginProfile"))
	if _, err := dave.iam.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{Password: aws.String("Correct-Horse-9")}); err != nil {
		t.Fatalf("CreateLoginProfile of the caller: %v", err)
	}
	got, err := e.rootIAM().GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String("dave")})
	if err != nil || aws.ToString(got.LoginProfile.UserName) != "dave" {
		t.Fatalf("GetLoginProfile of dave: %v", err)
	}
	// The password may not be the caller's name, as when it is named.
	_, err = e.newUser(t, "Passw0rd-x", allowDoc("*", "iam:*")).iam.CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{Password: aws.String("passw0rd-X")})
	expectIAMError(t, err, http.StatusBadRequest, "PasswordPolicyViolation", "Password should not be the user name")
	if _, err := dave.iam.DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{}); err != nil {
		t.Fatalf("DeleteLoginProfile of the caller: %v", err)
	}
	_, err = e.rootIAM().GetLoginProfile(ctx, &iam.GetLoginProfileInput{UserName: aws.String("dave")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "Login Profile for User dave cannot be found.")
	_, err = e.rootIAM().DeleteLoginProfile(ctx, &iam.DeleteLoginProfileInput{})
	expectIAMError(t, err, http.StatusBadRequest, "ValidationError", "Must specify userName when calling with non-User credentials")
	_, err = e.rootIAM().CreateLoginProfile(ctx, &iam.CreateLoginProfileInput{Password: aws.String("Correct-Horse-9")})
	expectIAMError(t, err, http.StatusBadRequest, "ValidationError", "Must specify userName when calling with non-User credentials")
}

func longPassword() string {
	b := make([]byte, 130)
	for i := range b {
		b[i] = 'x'
	}
	return string(b)
}

func TestListRoles(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	for _, name := range []string{"zeta", "Alpha"} {
		if _, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trustAccount)}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := root.ListRoles(ctx, &iam.ListRolesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Roles) != 2 || aws.ToString(out.Roles[0].RoleName) != "Alpha" || aws.ToString(out.Roles[1].Arn) != roleARNOf("zeta") {
		t.Fatalf("ListRoles returned %+v", out.Roles)
	}
	u := e.newUser(t, "nolist", allowDoc("*", "iam:GetRole"))
	_, err = u.iam.ListRoles(ctx, &iam.ListRolesInput{})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
}
