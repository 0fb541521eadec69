package e2e_test

// End-to-end tests of the IAM and STS subset (AWS Query protocol on the KMS
// endpoint) through the real aws-sdk-go-v2 iam and sts clients: shapes,
// errors with IAM's codes and HTTP statuses, authorization of IAM calls by
// identity policies, AssumeRole trust, and GetCallerIdentity.

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/openkms/kms/internal/testsupport"
)

var (
	userIDRE    = regexp.MustCompile(`^AIDA[A-Z2-7]{17}$`)
	roleIDRE    = regexp.MustCompile(`^AROA[A-Z2-7]{17}$`)
	akidRE      = regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`)
	sessionIDRE = regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`)
)

const (
	iamNS = "https://iam.amazonaws.com/doc/2010-05-08/"
	stsNS = "https://sts.amazonaws.com/doc/2011-06-15/"

	// trustAccount lets the account (its root, and its users and roles
	// whose identity policies allow sts:AssumeRole) assume a role.
	trustAccount = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`
)

func userARNOf(name string) string { return "arn:aws:iam::" + e2eAccount + ":user/" + name }
func roleARNOf(name string) string { return "arn:aws:iam::" + e2eAccount + ":role/" + name }

// allowDoc is an identity policy allowing actions on resource.
func allowDoc(resource string, actions ...string) string {
	return policyDoc("Allow", resource, actions...)
}

func policyDoc(effect, resource string, actions ...string) string {
	q := make([]string, len(actions))
	for i, a := range actions {
		q[i] = `"` + a + `"`
	}
	return `{"Version":"2012-10-17","Statement":[{"Effect":"` + effect + `","Action":[` + strings.Join(q, ",") + `],"Resource":"` + resource + `"}]}`
}

func (e *kmsEnv) rootIAM() *iam.Client { return e.iamClient(e.creds.ID, e.creds.Secret, "") }
func (e *kmsEnv) rootSTS() *sts.Client { return e.stsClient(e.creds.ID, e.creds.Secret, "") }

// assumerSTS is the STS client of a user allowed everything, made once per
// environment: tests assume roles as it, since an account's root may not.
func (e *kmsEnv) assumerSTS(t testing.TB) *sts.Client {
	t.Helper()
	e.assumerOnce.Do(func() {
		e.assumer = e.newUser(t, "role-assumer", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	})
	return e.assumer.sts
}

// testUser is an IAM user with one access key and clients signing with it.
type testUser struct {
	name, akid, secret string
	iam                *iam.Client
	sts                *sts.Client
	kms                *kms.Client
}

// newUser creates a user through IAM as the root, gives it the inline
// policies docs (named p0, p1, ...) and an access key.
func (e *kmsEnv) newUser(t testing.TB, name string, docs ...string) *testUser {
	t.Helper()
	ctx := context.Background()
	root := e.rootIAM()
	if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
		t.Fatalf("CreateUser %s: %v", name, err)
	}
	for i, d := range docs {
		e.putUserPolicy(t, name, "p"+string(rune('0'+i)), d)
	}
	out, err := root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateAccessKey %s: %v", name, err)
	}
	u := &testUser{name: name, akid: aws.ToString(out.AccessKey.AccessKeyId), secret: aws.ToString(out.AccessKey.SecretAccessKey)}
	u.iam = e.iamClient(u.akid, u.secret, "")
	u.sts = e.stsClient(u.akid, u.secret, "")
	u.kms = e.clientWith(u.akid, u.secret, "")
	return u
}

func (e *kmsEnv) putUserPolicy(t testing.TB, user, name, doc string) {
	t.Helper()
	_, err := e.rootIAM().PutUserPolicy(context.Background(), &iam.PutUserPolicyInput{UserName: aws.String(user), PolicyName: aws.String(name), PolicyDocument: aws.String(doc)})
	if err != nil {
		t.Fatalf("PutUserPolicy %s/%s: %v", user, name, err)
	}
}

func (e *kmsEnv) createRole(t testing.TB, name, trust string) *iamtypes.Role {
	t.Helper()
	out, err := e.rootIAM().CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatalf("CreateRole %s: %v", name, err)
	}
	return out.Role
}

// expectIAMError checks an IAM or STS error as the SDK surfaces it: the
// error code, the HTTP status, a request id and the exact message (msg ""
// means any non-empty message).
func expectIAMError(t testing.TB, err error, status int, code, msg string) smithy.APIError {
	t.Helper()
	if err == nil {
		t.Errorf("got success, want %s", code)
		return nil
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Errorf("got %v (%T), want API error %s", err, err, code)
		return nil
	}
	if ae.ErrorCode() != code {
		t.Errorf("got %s (%q), want %s", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	if s := httpStatus(err); s != status {
		t.Errorf("%s: HTTP status %d, want %d", code, s, status)
	}
	if msg == "" && ae.ErrorMessage() == "" {
		t.Errorf("%s has no message", code)
	} else if msg != "" && ae.ErrorMessage() != msg {
		t.Errorf("%s message:\n got %q\nwant %q", code, ae.ErrorMessage(), msg)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.ServiceRequestID() == "" {
		t.Errorf("%s: no request id on the error response", code)
	}
	return ae
}

// decodePolicy checks that an IAM policy document came back URL-encoded
// and returns it decoded.
func decodePolicy(t testing.TB, encoded string) string {
	t.Helper()
	if strings.ContainsAny(encoded, `{}"`) {
		t.Errorf("policy document is not URL-encoded: %q", encoded)
	}
	dec, err := url.PathUnescape(encoded)
	if err != nil {
		t.Fatalf("policy document %q does not URL-decode: %v", encoded, err)
	}
	return dec
}

// ---- users -----------------------------------------------------------------

func TestIAMUsers(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	start := time.Now().Add(-time.Second)

	out, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("Alice")})
	if err != nil {
		t.Fatal(err)
	}
	alice := out.User
	if aws.ToString(alice.UserName) != "Alice" || aws.ToString(alice.Path) != "/" ||
		aws.ToString(alice.Arn) != "arn:aws:iam::111122223333:user/Alice" || !userIDRE.MatchString(aws.ToString(alice.UserId)) {
		t.Errorf("CreateUser returned %+v", alice)
	}
	if alice.CreateDate == nil || alice.CreateDate.Before(start.Truncate(time.Second)) || alice.CreateDate.After(time.Now()) {
		t.Errorf("CreateDate %v, want now", alice.CreateDate)
	}

	eng, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("bob"), Path: aws.String("/eng/team/")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(eng.User.Arn) != "arn:aws:iam::111122223333:user/eng/team/bob" || aws.ToString(eng.User.Path) != "/eng/team/" {
		t.Errorf("user with a path: %+v", eng.User)
	}
	if aws.ToString(eng.User.UserId) == aws.ToString(alice.UserId) {
		t.Errorf("two users share the UserId %s", aws.ToString(alice.UserId))
	}

	// GetUser finds a user whatever the case of the name, and shows it as
	// it was created.
	for _, name := range []string{"Alice", "alice", "ALICE"} {
		got, err := root.GetUser(ctx, &iam.GetUserInput{UserName: aws.String(name)})
		if err != nil {
			t.Fatalf("GetUser %s: %v", name, err)
		}
		u := got.User
		if aws.ToString(u.UserName) != "Alice" || aws.ToString(u.Arn) != aws.ToString(alice.Arn) || aws.ToString(u.UserId) != aws.ToString(alice.UserId) ||
			aws.ToString(u.Path) != "/" || u.CreateDate == nil || !u.CreateDate.Equal(*alice.CreateDate) {
			t.Errorf("GetUser %s = %+v, want %+v", name, u, alice)
		}
	}

	// Names are unique regardless of case.
	for _, name := range []string{"Alice", "alice", "ALICE"} {
		_, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)})
		expectIAMError(t, err, http.StatusConflict, "EntityAlreadyExists", "User with name "+name+" already exists.")
		expectTyped[*iamtypes.EntityAlreadyExistsException](t, err)
	}

	list, err := root.ListUsers(ctx, &iam.ListUsersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if list.IsTruncated || len(list.Users) != 2 {
		t.Fatalf("ListUsers: %d users (truncated %v), want 2", len(list.Users), list.IsTruncated)
	}
	byName := map[string]iamtypes.User{}
	for _, u := range list.Users {
		byName[aws.ToString(u.UserName)] = u
	}
	if u := byName["Alice"]; aws.ToString(u.Arn) != aws.ToString(alice.Arn) || aws.ToString(u.UserId) != aws.ToString(alice.UserId) || aws.ToString(u.Path) != "/" {
		t.Errorf("ListUsers shows Alice as %+v", u)
	}
	if u := byName["bob"]; aws.ToString(u.Arn) != aws.ToString(eng.User.Arn) || aws.ToString(u.Path) != "/eng/team/" {
		t.Errorf("ListUsers shows bob as %+v", u)
	}

	// Unknown users.
	_, err = root.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("nobody")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The user with name nobody cannot be found.")
	expectTyped[*iamtypes.NoSuchEntityException](t, err)
	_, err = root.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("nobody")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The user with name nobody cannot be found.")

	// Delete, case-insensitively; the name is then free again.
	if _, err := root.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("ALICE")}); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err = root.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("Alice")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The user with name Alice cannot be found.")
	_, err = root.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("Alice")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The user with name Alice cannot be found.")
	again, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("alice")})
	if err != nil {
		t.Fatalf("CreateUser after DeleteUser: %v", err)
	}
	if aws.ToString(again.User.UserId) == aws.ToString(alice.UserId) {
		t.Errorf("a re-created user got the old UserId %s", aws.ToString(alice.UserId))
	}
	list, err = root.ListUsers(ctx, &iam.ListUsersInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range list.Users {
		names = append(names, aws.ToString(u.UserName))
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "alice,bob" {
		t.Errorf("ListUsers after delete and re-create: %v", names)
	}
}

func TestIAMUserValidation(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	long := strings.Repeat("a", 65)
	pattern := `Member must satisfy regular expression pattern: [\w+=,.@-]+`
	for _, tc := range []struct {
		name, path, msg string
	}{
		{name: "bad name", msg: "1 validation error detected: Value 'bad name' at 'userName' failed to satisfy constraint: " + pattern},
		{name: "a/b", msg: "1 validation error detected: Value 'a/b' at 'userName' failed to satisfy constraint: " + pattern},
		{name: "ünïcode", msg: "1 validation error detected: Value 'ünïcode' at 'userName' failed to satisfy constraint: " + pattern},
		{name: "a:b", msg: "1 validation error detected: Value 'a:b' at 'userName' failed to satisfy constraint: " + pattern},
		{name: long, msg: "1 validation error detected: Value '" + long + "' at 'userName' failed to satisfy constraint: Member must have length less than or equal to 64"},
		// An empty value is a string, not a missing one, as the Query
		// protocol sends it ("UserName=").
		{name: "", msg: "2 validation errors detected: Value '' at 'userName' failed to satisfy constraint: " + pattern + "; Value '' at 'userName' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{name: "ok", path: "eng", msg: ""},
		{name: "ok", path: "/eng", msg: ""},
		{name: "ok", path: "eng/", msg: ""},
	} {
		in := &iam.CreateUserInput{UserName: aws.String(tc.name)}
		if tc.path != "" {
			in.Path = aws.String(tc.path)
		}
		_, err := root.CreateUser(ctx, in)
		expectIAMError(t, err, http.StatusBadRequest, "ValidationError", tc.msg)
	}
	// Every valid character, and the longest name.
	for _, name := range []string{"a_b+c=d,e.f@g-h", strings.Repeat("z", 64)} {
		if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(name)}); err != nil {
			t.Errorf("CreateUser %q: %v", name, err)
		}
	}
	list, err := root.ListUsers(ctx, &iam.ListUsersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Users) != 2 {
		t.Errorf("%d users exist, want 2: a refused CreateUser created one", len(list.Users))
	}
}

func TestIAMGetUserWithoutName(t *testing.T) {
	t.Parallel()
	made := time.Now().Truncate(time.Second)
	e := newKMSEnv(t)
	ctx := context.Background()

	me, err := e.rootIAM().GetUser(ctx, &iam.GetUserInput{})
	if err != nil {
		t.Fatalf("GetUser as the root: %v", err)
	}
	if aws.ToString(me.User.Arn) != "arn:aws:iam::111122223333:root" || aws.ToString(me.User.UserId) != e2eAccount || me.User.UserName != nil {
		t.Errorf("GetUser as the root = %+v", me.User)
	}
	// The root's CreateDate is its account's, not the epoch.
	if c := aws.ToTime(me.User.CreateDate); c.Before(made) || c.After(time.Now()) {
		t.Errorf("GetUser as the root: CreateDate %v, want the account's creation, after %v", c, made)
	}

	// A user reading itself needs iam:GetUser on its own ARN, as on AWS,
	// and an explicit deny keeps a quarantined user from itself too.
	u := e.newUser(t, "carol")
	_, err = u.iam.GetUser(ctx, &iam.GetUserInput{})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
		"User: arn:aws:iam::111122223333:user/carol is not authorized to perform: iam:GetUser on resource: user carol because no identity-based policy allows the iam:GetUser action")
	q := e.newUser(t, "quarantined", allowDoc("*", "*"), policyDoc("Deny", "*", "iam:*"))
	_, err = q.iam.GetUser(ctx, &iam.GetUserInput{})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
		"User: arn:aws:iam::111122223333:user/quarantined is not authorized to perform: iam:GetUser on resource: user quarantined with an explicit deny in an identity-based policy")
	_, err = q.iam.ListAccessKeys(ctx, &iam.ListAccessKeysInput{})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
		"User: arn:aws:iam::111122223333:user/quarantined is not authorized to perform: iam:ListAccessKeys on resource: user quarantined with an explicit deny in an identity-based policy")
	e.putUserPolicy(t, "carol", "self", allowDoc("arn:aws:iam::*:user/${aws:username}", "iam:GetUser"))
	me, err = u.iam.GetUser(ctx, &iam.GetUserInput{})
	if err != nil {
		t.Fatalf("GetUser as a user: %v", err)
	}
	if aws.ToString(me.User.UserName) != "carol" || aws.ToString(me.User.Arn) != userARNOf("carol") || !userIDRE.MatchString(aws.ToString(me.User.UserId)) {
		t.Errorf("GetUser as carol = %+v", me.User)
	}
	// ...but not another user.
	e.newUser(t, "dave")
	_, err = u.iam.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("dave")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
		"User: arn:aws:iam::111122223333:user/carol is not authorized to perform: iam:GetUser on resource: user dave because no identity-based policy allows the iam:GetUser action")

	// A role session has no user to show.
	e.createRole(t, "viewer", trustAccount)
	as, err := e.assumerSTS(t).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("viewer")), RoleSessionName: aws.String("s1")})
	if err != nil {
		t.Fatal(err)
	}
	c := as.Credentials
	_, err = e.iamClient(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)).GetUser(ctx, &iam.GetUserInput{})
	expectIAMError(t, err, http.StatusBadRequest, "ValidationError", "Must specify userName when calling with non-User credentials")
}

func TestIAMDeleteUserConflicts(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	u := e.newUser(t, "erin", allowKMS)

	_, err := root.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("erin")})
	expectIAMError(t, err, http.StatusConflict, "DeleteConflict", "Cannot delete entity, must delete access keys first.")
	expectTyped[*iamtypes.DeleteConflictException](t, err)
	// The refused delete changed nothing: the key still works.
	if _, err := u.kms.ListKeys(ctx, &kms.ListKeysInput{}); err != nil {
		t.Fatalf("the user's key stopped working after a refused DeleteUser: %v", err)
	}

	if _, err := root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("erin"), AccessKeyId: aws.String(u.akid)}); err != nil {
		t.Fatal(err)
	}
	_, err = root.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("erin")})
	expectIAMError(t, err, http.StatusConflict, "DeleteConflict", "Cannot delete entity, must delete policies first.")
	if pols, err := root.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("erin")}); err != nil || len(pols.PolicyNames) != 1 {
		t.Fatalf("ListUserPolicies after a refused DeleteUser: %v %v", pols, err)
	}

	if _, err := root.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("erin"), PolicyName: aws.String("p0")}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("erin")}); err != nil {
		t.Fatalf("DeleteUser with nothing left: %v", err)
	}
	_, err = root.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("erin")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The user with name erin cannot be found.")
}

// ---- access keys -----------------------------------------------------------

func TestIAMAccessKeys(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("frank")}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Second)
	var keys []*iamtypes.AccessKey
	for i := 0; i < 2; i++ {
		out, err := root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("FRANK")})
		if err != nil {
			t.Fatalf("CreateAccessKey %d: %v", i+1, err)
		}
		k := out.AccessKey
		if !akidRE.MatchString(aws.ToString(k.AccessKeyId)) || len(aws.ToString(k.SecretAccessKey)) != 40 ||
			k.Status != iamtypes.StatusTypeActive || aws.ToString(k.UserName) != "frank" ||
			k.CreateDate == nil || k.CreateDate.Before(start.Truncate(time.Second)) {
			t.Errorf("CreateAccessKey returned %+v", k)
		}
		keys = append(keys, k)
	}
	if aws.ToString(keys[0].AccessKeyId) == aws.ToString(keys[1].AccessKeyId) || aws.ToString(keys[0].SecretAccessKey) == aws.ToString(keys[1].SecretAccessKey) {
		t.Fatal("two access keys are the same")
	}
	_, err := root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("frank")})
	expectIAMError(t, err, http.StatusConflict, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2")
	expectTyped[*iamtypes.LimitExceededException](t, err)
	_, err = root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("nobody")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The user with name nobody cannot be found.")

	// Both keys sign as frank.
	for _, k := range keys {
		id, err := e.stsClient(aws.ToString(k.AccessKeyId), aws.ToString(k.SecretAccessKey), "").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil || aws.ToString(id.Arn) != userARNOf("frank") {
			t.Errorf("GetCallerIdentity with %s: %v %v", aws.ToString(k.AccessKeyId), id, err)
		}
	}

	// ListAccessKeys shows both, without their secrets.
	n := e.guard.count()
	list, err := root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("frank")})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range list.AccessKeyMetadata {
		ids = append(ids, aws.ToString(m.AccessKeyId))
		if aws.ToString(m.UserName) != "frank" || m.Status != iamtypes.StatusTypeActive || m.CreateDate == nil {
			t.Errorf("ListAccessKeys entry %+v", m)
		}
	}
	sort.Strings(ids)
	want := []string{aws.ToString(keys[0].AccessKeyId), aws.ToString(keys[1].AccessKeyId)}
	sort.Strings(want)
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("ListAccessKeys ids %v, want %v", ids, want)
	}
	// The user lists its own keys too, once a policy allows it: as on
	// AWS, its own keys need iam:ListAccessKeys like another's.
	frank := e.iamClient(aws.ToString(keys[0].AccessKeyId), aws.ToString(keys[0].SecretAccessKey), "")
	_, err = frank.ListAccessKeys(ctx, &iam.ListAccessKeysInput{})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
		"User: "+userARNOf("frank")+" is not authorized to perform: iam:ListAccessKeys on resource: user frank because no identity-based policy allows the iam:ListAccessKeys action")
	e.putUserPolicy(t, "frank", "own-keys", allowDoc("arn:aws:iam::*:user/${aws:username}", "iam:ListAccessKeys"))
	own, err := frank.ListAccessKeys(ctx, &iam.ListAccessKeysInput{})
	if err != nil || len(own.AccessKeyMetadata) != 2 {
		t.Errorf("ListAccessKeys as frank: %v %v", own, err)
	}
	if _, err := root.ListUsers(ctx, &iam.ListUsersInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.GetUser(ctx, &iam.GetUserInput{UserName: aws.String("frank")}); err != nil {
		t.Fatal(err)
	}
	// Only the CreateAccessKey responses ever carried a secret.
	e.guard.mu.Lock()
	bodies := append([][]byte{}, e.guard.bodies...)
	e.guard.mu.Unlock()
	if len(bodies) < n+3 {
		t.Fatalf("recorded %d responses, want at least %d", len(bodies), n+3)
	}
	for _, b := range bodies {
		if bytes.Contains(b, []byte("<CreateAccessKeyResponse")) {
			continue
		}
		for _, k := range keys {
			if bytes.Contains(b, []byte(aws.ToString(k.SecretAccessKey))) || bytes.Contains(b, []byte("SecretAccessKey")) {
				t.Errorf("a response other than CreateAccessKey shows a secret: %s", b)
			}
		}
	}

	// DeleteAccessKey.
	bogus := randomAKID(t)
	_, err = root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("frank"), AccessKeyId: aws.String(bogus)})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The Access Key with id "+bogus+" cannot be found.")
	// The root's own key is not frank's.
	_, err = root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("frank"), AccessKeyId: aws.String(e.creds.ID)})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The Access Key with id "+e.creds.ID+" cannot be found.")
	first := aws.ToString(keys[0].AccessKeyId)
	if _, err := root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("frank"), AccessKeyId: aws.String(first)}); err != nil {
		t.Fatal(err)
	}
	_, err = root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("frank"), AccessKeyId: aws.String(first)})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The Access Key with id "+first+" cannot be found.")
	_, err = e.stsClient(first, aws.ToString(keys[0].SecretAccessKey), "").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	expectIAMError(t, err, http.StatusForbidden, "InvalidClientTokenId", msgInvalidToken)
	list, err = root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("frank")})
	if err != nil || len(list.AccessKeyMetadata) != 1 || aws.ToString(list.AccessKeyMetadata[0].AccessKeyId) != aws.ToString(keys[1].AccessKeyId) {
		t.Errorf("ListAccessKeys after a delete: %+v %v", list, err)
	}
	// A freed slot can be used again.
	if _, err := root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("frank")}); err != nil {
		t.Errorf("CreateAccessKey after a delete: %v", err)
	}
	// The root's key still works.
	if _, err := e.rootSTS().GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Errorf("the root key stopped working: %v", err)
	}
}

// The root's own access keys are managed by ListAccessKeys, CreateAccessKey
// and DeleteAccessKey without a UserName, as on AWS, with the same limit of
// two.
func TestIAMRootAccessKeys(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	list, err := root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.AccessKeyMetadata) != 1 || aws.ToString(list.AccessKeyMetadata[0].AccessKeyId) != e.creds.ID || list.AccessKeyMetadata[0].UserName != nil {
		t.Errorf("the root's ListAccessKeys = %+v", list.AccessKeyMetadata)
	}
	out, err := root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{})
	if err != nil {
		t.Fatalf("CreateAccessKey for the root: %v", err)
	}
	second := out.AccessKey
	id, err := e.stsClient(aws.ToString(second.AccessKeyId), aws.ToString(second.SecretAccessKey), "").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:iam::111122223333:root" {
		t.Fatalf("GetCallerIdentity with the root's second key: %v %v", id, err)
	}
	list, err = root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range list.AccessKeyMetadata {
		ids = append(ids, aws.ToString(m.AccessKeyId))
	}
	sort.Strings(ids)
	want := []string{e.creds.ID, aws.ToString(second.AccessKeyId)}
	sort.Strings(want)
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("the root's ListAccessKeys shows %v after CreateAccessKey, want %v", ids, want)
	}
	_, err = root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{})
	expectIAMError(t, err, http.StatusConflict, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2")
}

// ---- inline policies -------------------------------------------------------

func TestIAMUserPolicies(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("gina")}); err != nil {
		t.Fatal(err)
	}
	doc := "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Sid\": \"UseKeys\", \"Effect\": \"Allow\",\n    \"Action\": [\"kms:Encrypt\", \"kms:Decrypt\"],\n    \"Resource\": \"arn:aws:kms:us-east-1:111122223333:key/*\",\n    \"Condition\": {\"StringEquals\": {\"kms:EncryptionContext:app\": \"a&b=c?d#e/f%g\"}}}]\n}"
	if _, err := root.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("gina"), PolicyName: aws.String("use-keys"), PolicyDocument: aws.String(doc)}); err != nil {
		t.Fatalf("PutUserPolicy: %v", err)
	}
	e.putUserPolicy(t, "GINA", "another", allowKMS)

	got, err := root.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("gina"), PolicyName: aws.String("use-keys")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.UserName) != "gina" || aws.ToString(got.PolicyName) != "use-keys" {
		t.Errorf("GetUserPolicy names %q/%q", aws.ToString(got.UserName), aws.ToString(got.PolicyName))
	}
	if dec := decodePolicy(t, aws.ToString(got.PolicyDocument)); dec != doc {
		t.Errorf("GetUserPolicy document decodes to\n%s\nwant\n%s", dec, doc)
	}
	if dec, err := url.QueryUnescape(aws.ToString(got.PolicyDocument)); err != nil || dec != doc {
		t.Errorf("GetUserPolicy document does not decode as java.net.URLDecoder would: %q %v", dec, err)
	}

	list, err := root.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("gina")})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(list.PolicyNames, ",") != "another,use-keys" || list.IsTruncated {
		t.Errorf("ListUserPolicies = %v", list.PolicyNames)
	}

	// Put replaces a policy of the same name.
	e.putUserPolicy(t, "gina", "another", allowDoc("*", "kms:ListKeys"))
	got, err = root.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("gina"), PolicyName: aws.String("another")})
	if err != nil || decodePolicy(t, aws.ToString(got.PolicyDocument)) != allowDoc("*", "kms:ListKeys") {
		t.Errorf("GetUserPolicy after replacing: %v %v", got, err)
	}

	// Refused puts change nothing.
	principal := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
	for _, tc := range []struct {
		name, user, policy, doc string
		status                  int
		code, msg               string
	}{
		{"not JSON", "gina", "bad", "{not json", 400, "MalformedPolicyDocument", ""},
		{"empty statement list", "gina", "bad", `{"Version":"2012-10-17","Statement":[]}`, 400, "MalformedPolicyDocument", ""},
		{"bad effect", "gina", "bad", `{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"kms:*","Resource":"*"}]}`, 400, "MalformedPolicyDocument", ""},
		{"with a Principal", "gina", "bad", principal, 400, "MalformedPolicyDocument", ""},
		{"with a NotPrincipal", "gina", "bad", strings.Replace(principal, `"Principal"`, `"NotPrincipal"`, 1), 400, "MalformedPolicyDocument", ""},
		{"too large", "gina", "big", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*","Sid":"` + strings.Repeat("a", 20000) + `"}]}`, 409, "LimitExceeded", ""},
		{"bad policy name", "gina", "bad name", allowKMS, 400, "ValidationError",
			`1 validation error detected: Value 'bad name' at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+`},
		{"unknown user", "nobody", "p", allowKMS, 404, "NoSuchEntity", "The user with name nobody cannot be found."},
		{"replacing with a malformed document", "gina", "another", "[]", 400, "MalformedPolicyDocument", ""},
		{"two statements of one Sid", "gina", "another", `{"Version":"2012-10-17","Statement":[{"Sid":"Keys","Effect":"Allow","Action":"kms:ListKeys","Resource":"*"},{"Sid":"Keys","Effect":"Allow","Action":"kms:*","Resource":"*"}]}`,
			400, "MalformedPolicyDocument", "Statement IDs (SID) in a single policy must be unique."},
		{"a Sid that is not alphanumeric", "gina", "another", `{"Version":"2012-10-17","Statement":[{"Sid":"use keys","Effect":"Allow","Action":"kms:*","Resource":"*"}]}`,
			400, "MalformedPolicyDocument", "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := root.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(tc.user), PolicyName: aws.String(tc.policy), PolicyDocument: aws.String(tc.doc)})
			expectIAMError(t, err, tc.status, tc.code, tc.msg)
			if tc.code == "MalformedPolicyDocument" {
				expectTyped[*iamtypes.MalformedPolicyDocumentException](t, err)
			}
		})
	}
	list, err = root.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("gina")})
	if err != nil || strings.Join(list.PolicyNames, ",") != "another,use-keys" {
		t.Errorf("ListUserPolicies after refused puts = %v %v", list, err)
	}
	got, err = root.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("gina"), PolicyName: aws.String("another")})
	if err != nil || decodePolicy(t, aws.ToString(got.PolicyDocument)) != allowDoc("*", "kms:ListKeys") {
		t.Errorf("a refused put changed the policy: %v %v", got, err)
	}

	// Unknown policies and users.
	_, err = root.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("gina"), PolicyName: aws.String("nope")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The user policy with name nope cannot be found.")
	_, err = root.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("gina"), PolicyName: aws.String("nope")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The user policy with name nope cannot be found.")
	_, err = root.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("nobody")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The user with name nobody cannot be found.")
	_, err = root.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("nobody"), PolicyName: aws.String("p")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The user with name nobody cannot be found.")

	// Delete.
	if _, err := root.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("gina"), PolicyName: aws.String("use-keys")}); err != nil {
		t.Fatal(err)
	}
	list, err = root.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("gina")})
	if err != nil || strings.Join(list.PolicyNames, ",") != "another" {
		t.Errorf("ListUserPolicies after delete = %v %v", list, err)
	}
	_, err = root.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("gina"), PolicyName: aws.String("use-keys")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The user policy with name use-keys cannot be found.")
}

// IAM returns policy documents "URL-encoded compliant with RFC 3986" and
// tells clients to decode them with e.g. java.net.URLDecoder, which turns
// '+' into a space; real responses percent-encode every reserved character
// (%3A, %2F, %2A, %2B...). A '+' is legal in user and role names, so it
// shows up in ARNs inside policies.
func TestIAMPolicyDocumentEncoding(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	if _, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("ops+admin")}); err != nil {
		t.Fatal(err)
	}
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::111122223333:user/ops+admin"}]}`
	e.putUserPolicy(t, "ops+admin", "self", doc)
	got, err := root.GetUserPolicy(ctx, &iam.GetUserPolicyInput{UserName: aws.String("ops+admin"), PolicyName: aws.String("self")})
	if err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/ops+admin"},"Action":"sts:AssumeRole"}]}`
	role := e.createRole(t, "ops", trust)
	for _, tc := range []struct{ what, encoded, want string }{
		{"GetUserPolicy.PolicyDocument", aws.ToString(got.PolicyDocument), doc},
		{"CreateRole.AssumeRolePolicyDocument", aws.ToString(role.AssumeRolePolicyDocument), trust},
	} {
		if !regexp.MustCompile(`^([A-Za-z0-9._~-]|%[0-9A-F]{2})*$`).MatchString(tc.encoded) {
			t.Errorf("%s is not percent-encoded as RFC 3986 (only unreserved characters left): %q", tc.what, tc.encoded)
		}
		if dec, err := url.QueryUnescape(tc.encoded); err != nil || dec != tc.want {
			t.Errorf("%s decoded as java.net.URLDecoder does:\n got %q (%v)\nwant %q", tc.what, dec, err, tc.want)
		}
		if dec, err := url.PathUnescape(tc.encoded); err != nil || dec != tc.want {
			t.Errorf("%s percent-decoded:\n got %q (%v)\nwant %q", tc.what, dec, err, tc.want)
		}
	}
}

// ---- roles -----------------------------------------------------------------

func TestIAMRoles(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	start := time.Now().Add(-time.Second)

	out, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("App"), AssumeRolePolicyDocument: aws.String(trustAccount), Description: aws.String("the app")})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Role
	if aws.ToString(r.RoleName) != "App" || aws.ToString(r.Arn) != roleARNOf("App") || aws.ToString(r.Path) != "/" ||
		!roleIDRE.MatchString(aws.ToString(r.RoleId)) || aws.ToString(r.Description) != "the app" || aws.ToInt32(r.MaxSessionDuration) != 3600 ||
		r.CreateDate == nil || r.CreateDate.Before(start.Truncate(time.Second)) {
		t.Errorf("CreateRole returned %+v", r)
	}
	if dec := decodePolicy(t, aws.ToString(r.AssumeRolePolicyDocument)); dec != trustAccount {
		t.Errorf("AssumeRolePolicyDocument decodes to %s", dec)
	}
	for _, name := range []string{"App", "app"} {
		g, err := root.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		if err != nil {
			t.Fatalf("GetRole %s: %v", name, err)
		}
		if aws.ToString(g.Role.RoleName) != "App" || aws.ToString(g.Role.RoleId) != aws.ToString(r.RoleId) || aws.ToString(g.Role.Arn) != aws.ToString(r.Arn) ||
			aws.ToInt32(g.Role.MaxSessionDuration) != 3600 || decodePolicy(t, aws.ToString(g.Role.AssumeRolePolicyDocument)) != trustAccount {
			t.Errorf("GetRole %s = %+v", name, g.Role)
		}
	}
	path, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("svc"), Path: aws.String("/service/"), AssumeRolePolicyDocument: aws.String(trustAccount), MaxSessionDuration: aws.Int32(43200)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(path.Role.Arn) != "arn:aws:iam::111122223333:role/service/svc" || aws.ToInt32(path.Role.MaxSessionDuration) != 43200 {
		t.Errorf("role with a path: %+v", path.Role)
	}

	// Refusals.
	noPrincipal := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`
	for _, tc := range []struct {
		name   string
		in     *iam.CreateRoleInput
		status int
		code   string
		msg    string
	}{
		{"duplicate", &iam.CreateRoleInput{RoleName: aws.String("APP"), AssumeRolePolicyDocument: aws.String(trustAccount)}, 409, "EntityAlreadyExists", "Role with name APP already exists."},
		{"trust not JSON", &iam.CreateRoleInput{RoleName: aws.String("r1"), AssumeRolePolicyDocument: aws.String("{")}, 400, "MalformedPolicyDocument", ""},
		{"trust without principal", &iam.CreateRoleInput{RoleName: aws.String("r1"), AssumeRolePolicyDocument: aws.String(noPrincipal)}, 400, "MalformedPolicyDocument", ""},
		{"session too short", &iam.CreateRoleInput{RoleName: aws.String("r1"), AssumeRolePolicyDocument: aws.String(trustAccount), MaxSessionDuration: aws.Int32(3599)}, 400, "ValidationError", ""},
		{"session too long", &iam.CreateRoleInput{RoleName: aws.String("r1"), AssumeRolePolicyDocument: aws.String(trustAccount), MaxSessionDuration: aws.Int32(43201)}, 400, "ValidationError", ""},
		{"bad name", &iam.CreateRoleInput{RoleName: aws.String("r 1"), AssumeRolePolicyDocument: aws.String(trustAccount)}, 400, "ValidationError",
			`1 validation error detected: Value 'r 1' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := root.CreateRole(ctx, tc.in)
			expectIAMError(t, err, tc.status, tc.code, tc.msg)
		})
	}
	_, err = root.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r1")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The role with name r1 cannot be found.")

	// Inline role policies.
	if _, err := root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("app"), PolicyName: aws.String("kms"), PolicyDocument: aws.String(allowKMS)}); err != nil {
		t.Fatal(err)
	}
	gp, err := root.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("app"), PolicyName: aws.String("kms")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(gp.RoleName) != "App" || aws.ToString(gp.PolicyName) != "kms" || decodePolicy(t, aws.ToString(gp.PolicyDocument)) != allowKMS {
		t.Errorf("GetRolePolicy = %+v", gp)
	}
	lp, err := root.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String("App")})
	if err != nil || strings.Join(lp.PolicyNames, ",") != "kms" {
		t.Errorf("ListRolePolicies = %v %v", lp, err)
	}
	_, err = root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("nope"), PolicyName: aws.String("kms"), PolicyDocument: aws.String(allowKMS)})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The role with name nope cannot be found.")
	_, err = root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("App"), PolicyName: aws.String("bad"), PolicyDocument: aws.String(trustAccount)})
	expectIAMError(t, err, http.StatusBadRequest, "MalformedPolicyDocument", "")
	_, err = root.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String("App"), PolicyName: aws.String("bad")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The role policy with name bad cannot be found.")

	_, err = root.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("App")})
	expectIAMError(t, err, http.StatusConflict, "DeleteConflict", "Cannot delete entity, must delete policies first.")
	if _, err := root.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("App")}); err != nil {
		t.Fatalf("a refused DeleteRole deleted the role: %v", err)
	}
	if _, err := root.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("App"), PolicyName: aws.String("kms")}); err != nil {
		t.Fatal(err)
	}
	_, err = root.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("App"), PolicyName: aws.String("kms")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The role policy with name kms cannot be found.")
	if _, err := root.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("app")}); err != nil {
		t.Fatalf("DeleteRole: %v", err)
	}
	_, err = root.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("App")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The role with name App cannot be found.")
	_, err = root.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("App")})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The role with name App cannot be found.")
}

// ---- STS -------------------------------------------------------------------

func TestSTSAssumeRoleTrustingTheAccount(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	role := e.createRole(t, "shared", trustAccount)
	arn := roleARNOf("shared")
	alice := e.newUser(t, "alice", allowDoc(arn, "sts:AssumeRole"))
	bob := e.newUser(t, "bob")
	wild := e.newUser(t, "walt", allowDoc("*", "sts:*"))
	denied := e.newUser(t, "dan", allowDoc("*", "sts:AssumeRole"), policyDoc("Deny", arn, "sts:AssumeRole"))

	start := time.Now()
	for _, tc := range []struct {
		who    string
		client *sts.Client
	}{{"assumer", e.assumerSTS(t)}, {"alice", alice.sts}, {"walt", wild.sts}} {
		out, err := tc.client.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String(tc.who + "-session")})
		if err != nil {
			t.Errorf("AssumeRole as %s: %v", tc.who, err)
			continue
		}
		c, u := out.Credentials, out.AssumedRoleUser
		if !sessionIDRE.MatchString(aws.ToString(c.AccessKeyId)) || len(aws.ToString(c.SecretAccessKey)) != 40 || aws.ToString(c.SessionToken) == "" {
			t.Errorf("AssumeRole as %s: credentials %+v", tc.who, c)
		}
		if c.Expiration == nil || c.Expiration.Sub(start) < 3599*time.Second || c.Expiration.Sub(start) > 3601*time.Second+time.Since(start) {
			t.Errorf("AssumeRole as %s: expiration %v, want an hour from now", tc.who, c.Expiration)
		}
		if aws.ToString(u.AssumedRoleId) != aws.ToString(role.RoleId)+":"+tc.who+"-session" ||
			aws.ToString(u.Arn) != "arn:aws:sts::111122223333:assumed-role/shared/"+tc.who+"-session" {
			t.Errorf("AssumeRole as %s: AssumedRoleUser %+v", tc.who, u)
		}
	}

	for _, tc := range []struct {
		who    string
		client *sts.Client
		msg    string
	}{
		{"bob", bob.sts, "User: arn:aws:iam::111122223333:user/bob is not authorized to perform: sts:AssumeRole on resource: " + arn},
		{"dan", denied.sts, "User: arn:aws:iam::111122223333:user/dan is not authorized to perform: sts:AssumeRole on resource: " + arn},
		// The trust policy trusts the account, but its root may not
		// assume roles at all, as on AWS.
		{"root", e.rootSTS(), "Roles may not be assumed by root accounts."},
	} {
		_, err := tc.client.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("session")})
		expectIAMError(t, err, http.StatusForbidden, "AccessDenied", tc.msg)
	}

	// A role that does not exist is refused like one that does not trust
	// the caller.
	_, err := e.assumerSTS(t).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("ghost")), RoleSessionName: aws.String("session")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "User: arn:aws:iam::111122223333:user/role-assumer is not authorized to perform: sts:AssumeRole on resource: "+roleARNOf("ghost"))

	// A role ARN names a role with its path: without it, or under another
	// path, it names none, and the refusal does not tell the path.
	if _, err := e.rootIAM().CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("pathed"), Path: aws.String("/team/"),
		AssumeRolePolicyDocument: aws.String(trustAccount)}); err != nil {
		t.Fatal(err)
	}
	for _, wrong := range []string{roleARNOf("pathed"), roleARNOf("other/pathed"), roleARNOf("team/sub/pathed")} {
		_, err = e.assumerSTS(t).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(wrong), RoleSessionName: aws.String("session")})
		expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "User: arn:aws:iam::111122223333:user/role-assumer is not authorized to perform: sts:AssumeRole on resource: "+wrong)
	}
	if _, err := e.assumerSTS(t).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("team/pathed")), RoleSessionName: aws.String("session")}); err != nil {
		t.Fatalf("AssumeRole with the role's path: %v", err)
	}

	// Malformed requests.
	for _, tc := range []struct{ arn, session string }{
		{arn, "x"},
		{arn, "has space"},
		{arn, strings.Repeat("s", 65)},
		{"not-an-arn", "session"},
		{"arn:aws:iam::111122223333:user/alice", "session"},
	} {
		_, err := e.assumerSTS(t).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(tc.arn), RoleSessionName: aws.String(tc.session)})
		expectIAMError(t, err, http.StatusBadRequest, "ValidationError", "")
	}
}

func TestSTSAssumeRoleTrustingAUser(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	alice := e.newUser(t, "alice") // no identity policy at all
	bob := e.newUser(t, "bob", allowDoc("*", "sts:AssumeRole"))
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"sts:AssumeRole"}]}`
	e.createRole(t, "alice-only", trust)
	arn := roleARNOf("alice-only")

	out, err := alice.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("a")})
	if err == nil {
		t.Fatalf("AssumeRole accepted a one-character session name: %+v", out.AssumedRoleUser)
	}
	out, err = alice.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("alice@example.com")})
	if err != nil {
		t.Fatalf("AssumeRole as the user the trust policy names: %v", err)
	}
	if aws.ToString(out.AssumedRoleUser.Arn) != "arn:aws:sts::111122223333:assumed-role/alice-only/alice@example.com" {
		t.Errorf("AssumedRoleUser %+v", out.AssumedRoleUser)
	}
	for _, tc := range []struct {
		who    string
		client *sts.Client
		msg    string
	}{
		{"bob", bob.sts, "User: " + userARNOf("bob") + " is not authorized to perform: sts:AssumeRole on resource: " + arn},
		{"root", e.rootSTS(), "Roles may not be assumed by root accounts."},
	} {
		_, err := tc.client.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("session")})
		expectIAMError(t, err, http.StatusForbidden, "AccessDenied", tc.msg)
	}
	// A session of the role cannot assume it again: the trust policy
	// names alice, not the role.
	c := out.Credentials
	_, err = e.stsClient(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)).
		AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(arn), RoleSessionName: aws.String("chain")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
}

func TestSTSAssumeRoleDuration(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	if _, err := e.rootIAM().CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("long"), AssumeRolePolicyDocument: aws.String(trustAccount), MaxSessionDuration: aws.Int32(7200)}); err != nil {
		t.Fatal(err)
	}
	e.createRole(t, "short", trustAccount)
	client := e.assumerSTS(t)
	for _, tc := range []struct {
		role string
		dur  *int32
		want time.Duration // 0: refused
	}{
		{"long", nil, time.Hour},
		{"long", aws.Int32(900), 15 * time.Minute},
		{"long", aws.Int32(7200), 2 * time.Hour},
		{"short", aws.Int32(3600), time.Hour},
		{"long", aws.Int32(899), 0},
		{"long", aws.Int32(7201), 0},
		{"short", aws.Int32(3601), 0},
		{"long", aws.Int32(43201), 0},
	} {
		start := time.Now().Truncate(time.Second)
		out, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf(tc.role)), RoleSessionName: aws.String("session"), DurationSeconds: tc.dur})
		if tc.want == 0 {
			msg := "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
			switch d := aws.ToInt32(tc.dur); {
			case d < 900:
				msg = "1 validation error detected: Value '" + strconv.Itoa(int(d)) + "' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
			case d > 43200:
				msg = "1 validation error detected: Value '" + strconv.Itoa(int(d)) + "' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"
			}
			expectIAMError(t, err, http.StatusBadRequest, "ValidationError", msg)
			continue
		}
		if err != nil {
			t.Errorf("AssumeRole %s for %v: %v", tc.role, tc.want, err)
			continue
		}
		if exp := out.Credentials.Expiration; exp == nil || exp.Sub(start) < tc.want || exp.Sub(start) > tc.want+2*time.Second {
			t.Errorf("AssumeRole %s for %v: expires %v (started %v)", tc.role, tc.want, exp, start)
		}
	}
}

// TestSTSRoleChainingLastsAnHour: a role session that assumes another
// role gets an hour at most, as on AWS, however long the role allows.
func TestSTSRoleChainingLastsAnHour(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	for _, name := range []string{"hop", "long"} {
		if _, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trustAccount), MaxSessionDuration: aws.Int32(7200)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("hop"), PolicyName: aws.String("assume"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`)}); err != nil {
		t.Fatal(err)
	}
	first, err := e.assumerSTS(t).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("hop")), RoleSessionName: aws.String("one"), DurationSeconds: aws.Int32(7200)})
	if err != nil {
		t.Fatalf("a user for the role's two hours: %v", err)
	}
	c := first.Credentials
	session := e.stsClient(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	_, err = session.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("long")), RoleSessionName: aws.String("two"), DurationSeconds: aws.Int32(3601)})
	expectIAMError(t, err, http.StatusBadRequest, "ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	start := time.Now().Truncate(time.Second)
	out, err := session.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("long")), RoleSessionName: aws.String("two")})
	if err != nil {
		t.Fatalf("chaining for the default hour: %v", err)
	}
	if exp := aws.ToTime(out.Credentials.Expiration); exp.Sub(start) < time.Hour || exp.Sub(start) > time.Hour+2*time.Second {
		t.Errorf("a chained session expires %v after it began, want an hour", exp.Sub(start))
	}
}

func TestSTSGetCallerIdentity(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	u := e.newUser(t, "hank")
	user, err := e.rootIAM().GetUser(ctx, &iam.GetUserInput{UserName: aws.String("hank")})
	if err != nil {
		t.Fatal(err)
	}
	role := e.createRole(t, "reader", trustAccount)
	as, err := e.assumerSTS(t).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("reader")), RoleSessionName: aws.String("nightly")})
	if err != nil {
		t.Fatal(err)
	}
	c := as.Credentials
	for _, tc := range []struct {
		who            string
		client         *sts.Client
		userID, arnStr string
	}{
		{"root", e.rootSTS(), e2eAccount, "arn:aws:iam::111122223333:root"},
		{"user", u.sts, aws.ToString(user.User.UserId), "arn:aws:iam::111122223333:user/hank"},
		{"assumed role", e.stsClient(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)),
			aws.ToString(role.RoleId) + ":nightly", "arn:aws:sts::111122223333:assumed-role/reader/nightly"},
	} {
		id, err := tc.client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Errorf("GetCallerIdentity as %s: %v", tc.who, err)
			continue
		}
		if aws.ToString(id.UserId) != tc.userID || aws.ToString(id.Account) != e2eAccount || aws.ToString(id.Arn) != tc.arnStr {
			t.Errorf("GetCallerIdentity as %s = {UserId %s, Account %s, Arn %s}, want {%s, %s, %s}", tc.who,
				aws.ToString(id.UserId), aws.ToString(id.Account), aws.ToString(id.Arn), tc.userID, e2eAccount, tc.arnStr)
		}
	}
	// It needs no permission (hank has no policy, the role neither), and a
	// session's token is required with its key.
	_, err = e.stsClient(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), "").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	expectIAMError(t, err, http.StatusForbidden, "InvalidClientTokenId", msgInvalidToken)
}

// ---- authorization of IAM calls --------------------------------------------

func TestIAMAuthorization(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	ivan := e.newUser(t, "ivan")
	users := func() int {
		t.Helper()
		out, err := root.ListUsers(ctx, &iam.ListUsersInput{})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Users)
	}
	n := users()

	_, err := ivan.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("carol")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
		"User: arn:aws:iam::111122223333:user/ivan is not authorized to perform: iam:CreateUser on resource: arn:aws:iam::111122223333:user/carol because no identity-based policy allows the iam:CreateUser action")
	_, err = ivan.iam.ListUsers(ctx, &iam.ListUsersInput{})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	_, err = ivan.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("r"), AssumeRolePolicyDocument: aws.String(trustAccount)})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	_, err = ivan.iam.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("ivan"), PolicyName: aws.String("escalate"), PolicyDocument: aws.String(allowDoc("*", "*"))})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	_, err = ivan.iam.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	_, err = ivan.iam.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(ivan.akid)})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	if users() != n {
		t.Fatal("a refused CreateUser created a user")
	}
	if pols, _ := root.ListUserPolicies(ctx, &iam.ListUserPoliciesInput{UserName: aws.String("ivan")}); len(pols.PolicyNames) != 0 {
		t.Fatalf("a refused PutUserPolicy stored %v", pols.PolicyNames)
	}
	if _, err := root.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("r")}); err == nil {
		t.Fatal("a refused CreateRole created the role")
	}

	// Allowed from the next request on.
	e.putUserPolicy(t, "ivan", "create-users", allowDoc("*", "iam:CreateUser"))
	if _, err := ivan.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("carol")}); err != nil {
		t.Fatalf("CreateUser with a policy allowing it: %v", err)
	}
	// Only what is allowed.
	_, err = ivan.iam.ListUsers(ctx, &iam.ListUsersInput{})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")

	// Resource-scoped allow.
	e.putUserPolicy(t, "ivan", "create-users", allowDoc("arn:aws:iam::111122223333:user/team-*", "iam:CreateUser", "iam:DeleteUser"))
	if _, err := ivan.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("team-1")}); err != nil {
		t.Errorf("CreateUser team-1: %v", err)
	}
	_, err = ivan.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("other")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")

	// An explicit deny wins over any allow.
	e.putUserPolicy(t, "ivan", "all", allowDoc("*", "iam:*"))
	e.putUserPolicy(t, "ivan", "deny", policyDoc("Deny", "arn:aws:iam::111122223333:user/blocked-*", "iam:CreateUser"))
	_, err = ivan.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("blocked-1")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
		"User: arn:aws:iam::111122223333:user/ivan is not authorized to perform: iam:CreateUser on resource: arn:aws:iam::111122223333:user/blocked-1 with an explicit deny in an identity-based policy")
	if _, err := ivan.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("dave")}); err != nil {
		t.Errorf("CreateUser dave beside the deny: %v", err)
	}
	if _, err := ivan.iam.ListUsers(ctx, &iam.ListUsersInput{}); err != nil {
		t.Errorf("ListUsers with iam:*: %v", err)
	}
	e.putUserPolicy(t, "ivan", "deny", policyDoc("Deny", "*", "iam:*"))
	_, err = ivan.iam.ListUsers(ctx, &iam.ListUsersInput{})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	// The deny even stops the user from removing it.
	_, err = ivan.iam.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("ivan"), PolicyName: aws.String("deny")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")

	// Taking the policies away takes the permission away at once.
	for _, p := range []string{"deny", "all", "create-users"} {
		if _, err := root.DeleteUserPolicy(ctx, &iam.DeleteUserPolicyInput{UserName: aws.String("ivan"), PolicyName: aws.String(p)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = ivan.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("team-2")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	if got, want := users(), n+3; got != want { // carol, team-1, dave
		t.Errorf("%d users, want %d", got, want)
	}
}

// A role session is authorized for IAM by the role's policies.
func TestIAMAuthorizationOfRoleSessions(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	e.createRole(t, "admin", trustAccount)
	as, err := e.assumerSTS(t).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("admin")), RoleSessionName: aws.String("ops")})
	if err != nil {
		t.Fatal(err)
	}
	c := as.Credentials
	session := e.iamClient(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	_, err = session.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("x")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
		"User: arn:aws:sts::111122223333:assumed-role/admin/ops is not authorized to perform: iam:CreateUser on resource: arn:aws:iam::111122223333:user/x because no identity-based policy allows the iam:CreateUser action")
	if _, err := e.rootIAM().PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("admin"), PolicyName: aws.String("iam"), PolicyDocument: aws.String(allowDoc("*", "iam:CreateUser"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := session.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("x")}); err != nil {
		t.Errorf("CreateUser by a session of a role allowed to: %v", err)
	}
	// A session has no access keys of its own to make.
	_, err = session.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{})
	expectIAMError(t, err, http.StatusBadRequest, "ValidationError", "Must specify userName when calling with non-User credentials")
}

// ---- the wire --------------------------------------------------------------

// queryErrorBody is the XML error of the AWS Query protocol.
type queryErrorBody struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type, Code, Message string
	}
	RequestId string
}

func TestIAMErrorsOnTheWire(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	query := func(t *testing.T, service, body string, sign bool) rawResponse {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		if sign {
			s := e.rootSigning()
			s.service = service
			signWith(t, req, body, s)
		}
		return e.send(t, req)
	}
	for _, tc := range []struct {
		name, service, body string
		sign                bool
		status              int
		ns, code, msg       string
	}{
		{"NoSuchEntity", "iam", "Action=GetUser&Version=2010-05-08&UserName=nobody", true, 404, iamNS, "NoSuchEntity", "The user with name nobody cannot be found."},
		{"ValidationError", "iam", "Action=CreateUser&Version=2010-05-08&UserName=a%20b", true, 400, iamNS, "ValidationError",
			`1 validation error detected: Value 'a b' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+`},
		{"missing name", "iam", "Action=CreateUser&Version=2010-05-08", true, 400, iamNS, "ValidationError",
			"1 validation error detected: Value null at 'userName' failed to satisfy constraint: Member must not be null"},
		{"STS AccessDenied", "sts", "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fnone&RoleSessionName=s1", true, 403, stsNS, "AccessDenied",
			"Roles may not be assumed by root accounts."},
		{"unsigned", "iam", "Action=ListUsers&Version=2010-05-08", false, 403, iamNS, "MissingAuthenticationToken", ""},
		{"IAM action signed for sts", "sts", "Action=ListUsers&Version=2010-05-08", true, 403, iamNS, "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'iam'. "},
		{"STS action signed for iam", "iam", "Action=GetCallerIdentity&Version=2011-06-15", true, 403, stsNS, "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sts'. "},
		{"unknown action", "iam", "Action=CreateGroup&Version=2010-05-08&GroupName=g", true, 400, iamNS, "InvalidAction", ""},
		{"DurationSeconds not a number", "sts", "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fnone&RoleSessionName=s1&DurationSeconds=abc", true, 400, stsNS, "ValidationError",
			"1 validation error detected: Value 'abc' at 'durationSeconds' failed to satisfy constraint: Member must be a 32-bit integer"},
		{"DurationSeconds past 32 bits", "sts", "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fnone&RoleSessionName=s1&DurationSeconds=4294968196", true, 400, stsNS, "ValidationError",
			"1 validation error detected: Value '4294968196' at 'durationSeconds' failed to satisfy constraint: Member must be a 32-bit integer"},
		{"MaxSessionDuration not a number", "iam", "Action=CreateRole&Version=2010-05-08&RoleName=wrapped&AssumeRolePolicyDocument=" + url.QueryEscape(trustAccount) + "&MaxSessionDuration=1h", true, 400, iamNS, "ValidationError",
			"1 validation error detected: Value '1h' at 'maxSessionDuration' failed to satisfy constraint: Member must be a 32-bit integer"},
		{"MaxSessionDuration past 32 bits", "iam", "Action=CreateRole&Version=2010-05-08&RoleName=wrapped&AssumeRolePolicyDocument=" + url.QueryEscape(trustAccount) + "&MaxSessionDuration=4294971296", true, 400, iamNS, "ValidationError", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := query(t, tc.service, tc.body, tc.sign)
			if r.status != tc.status {
				t.Errorf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
				t.Errorf("Content-Type %q, want text/xml", ct)
			}
			var body queryErrorBody
			if err := xml.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("error body is not the Query protocol's XML: %v: %s", err, r.body)
			}
			if body.Xmlns != tc.ns || body.Error.Type != "Sender" || body.Error.Code != tc.code {
				t.Errorf("error body %+v, want namespace %s, Type Sender, Code %s", body, tc.ns, tc.code)
			}
			if tc.msg != "" && body.Error.Message != tc.msg {
				t.Errorf("message:\n got %q\nwant %q", body.Error.Message, tc.msg)
			} else if body.Error.Message == "" {
				t.Error("error has no message")
			}
			if id := r.header.Get("X-Amzn-Requestid"); id == "" || body.RequestId != id {
				t.Errorf("RequestId %q in the body, %q in the header", body.RequestId, id)
			}
		})
	}
	t.Run("a refused MaxSessionDuration makes no role", func(t *testing.T) {
		_, err := e.rootIAM().GetRole(context.Background(), &iam.GetRoleInput{RoleName: aws.String("wrapped")})
		expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "")
	})
	t.Run("success", func(t *testing.T) {
		r := query(t, "sts", "Action=GetCallerIdentity&Version=2011-06-15", true)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/xml") {
			t.Fatalf("GetCallerIdentity: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		var body struct {
			XMLName xml.Name `xml:"GetCallerIdentityResponse"`
			Xmlns   string   `xml:"xmlns,attr"`
			Result  struct {
				UserId, Account, Arn string
			} `xml:"GetCallerIdentityResult"`
			RequestId string `xml:"ResponseMetadata>RequestId"`
		}
		if err := xml.Unmarshal(r.body, &body); err != nil {
			t.Fatalf("%v: %s", err, r.body)
		}
		if body.Xmlns != stsNS || body.Result.Account != e2eAccount || body.Result.Arn != "arn:aws:iam::111122223333:root" || body.RequestId != r.header.Get("X-Amzn-Requestid") {
			t.Errorf("GetCallerIdentity body %+v", body)
		}
	})
	t.Run("SDK auth errors", func(t *testing.T) {
		ctx := context.Background()
		ws := []byte(e.creds.Secret)
		ws[0] ^= 1
		_, err := e.iamClient(e.creds.ID, string(ws), "").ListUsers(ctx, &iam.ListUsersInput{})
		expectIAMError(t, err, http.StatusForbidden, "SignatureDoesNotMatch", msgBadSignature)
		_, err = e.stsClient(randomAKID(t), "secret", "").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		expectIAMError(t, err, http.StatusForbidden, "InvalidClientTokenId", msgInvalidToken)
		// IAM is global: a client of any region reaches it.
		other := iam.New(iam.Options{Region: "eu-west-1", BaseEndpoint: aws.String(e.srv.URL), Credentials: e.rootIAM().Options().Credentials,
			RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(e.srv.Client())})
		if _, err := other.ListUsers(ctx, &iam.ListUsersInput{}); err != nil {
			t.Errorf("IAM signed for eu-west-1: %v", err)
		}
	})
}

// A role's trust policy may name only users and roles that exist, and is
// bound to them: one deleted and made again under the same name is not
// trusted. An explicit deny in the caller's own policies refuses
// AssumeRole whoever the trust policy names.
func TestIAMTrustPolicyBoundToPrincipals(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	trustFor := func(arn string) string {
		return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + arn + `"},"Action":"sts:AssumeRole"}]}`
	}
	_, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("admin-role"), AssumeRolePolicyDocument: aws.String(trustFor(userARNOf("bob")))})
	expectIAMError(t, err, http.StatusBadRequest, "MalformedPolicyDocument", `Invalid principal in policy: "AWS":"`+userARNOf("bob")+`"`)
	if _, err := root.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("admin-role")}); err == nil {
		t.Fatal("the refused CreateRole made the role")
	}

	carol := e.newUser(t, "carol")
	e.createRole(t, "ops", trustFor(userARNOf("carol")))
	assume := func(u *testUser) error {
		_, err := u.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("ops")), RoleSessionName: aws.String("s1")})
		return err
	}
	if err := assume(carol); err != nil {
		t.Fatalf("carol, trusted by name, assumes ops: %v", err)
	}
	if _, err := root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("carol"), AccessKeyId: aws.String(carol.akid)}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.DeleteUser(ctx, &iam.DeleteUserInput{UserName: aws.String("carol")}); err != nil {
		t.Fatal(err)
	}
	again := e.newUser(t, "carol")
	expectIAMError(t, assume(again), http.StatusForbidden, "AccessDenied",
		"User: "+userARNOf("carol")+" is not authorized to perform: sts:AssumeRole on resource: "+roleARNOf("ops"))

	dave := e.newUser(t, "dave", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"*"}]}`)
	e.createRole(t, "r1", trustFor(userARNOf("dave")))
	_, err = dave.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("r1")), RoleSessionName: aws.String("s1")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
		"User: "+userARNOf("dave")+" is not authorized to perform: sts:AssumeRole on resource: "+roleARNOf("r1"))
}

// IAM and STS decisions see the request's global condition keys, as KMS
// decisions do: a deny on aws:SecureTransport, aws:SourceIp or
// aws:CurrentTime in an identity policy or a trust policy refuses IAM
// calls and AssumeRole (this server is reached over plain HTTP from
// loopback).
func TestIAMConditionsSeeTheRequest(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	for i, cond := range []string{
		`{"Bool":{"aws:SecureTransport":"false"}}`,
		`{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}`,
		`{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}`,
		`{"NumericGreaterThan":{"aws:EpochTime":"1"}}`,
	} {
		name := fmt.Sprintf("u%d", i)
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":` + cond + `}]}`
		u := e.newUser(t, name, doc)
		_, err := u.iam.ListUsers(ctx, &iam.ListUsersInput{})
		expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
			"User: "+userARNOf(name)+" is not authorized to perform: iam:ListUsers on resource: arn:aws:iam::"+e2eAccount+":user/ with an explicit deny in an identity-based policy")
		_, err = u.iam.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String(name), PolicyName: aws.String("all"),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)})
		expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
		e.createRole(t, "r-"+name, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"`+userARNOf(name)+`"},"Action":"sts:AssumeRole"}]}`)
		_, err = u.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("r-" + name)), RoleSessionName: aws.String("s1")})
		expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	}
	// A trust policy's deny sees the request too.
	u := e.newUser(t, "plain", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
	e.createRole(t, "tls-only", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"`+userARNOf("plain")+`"},"Action":"sts:AssumeRole"},`+
		`{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`)
	_, err := u.sts.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("tls-only")), RoleSessionName: aws.String("s1")})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	if _, err := u.iam.ListUsers(ctx, &iam.ListUsersInput{}); err != nil {
		t.Fatalf("a user without the denies lists users: %v", err)
	}
}

// UpdateAccessKey turns a key off and on again: an inactive key signs
// nothing (KMS, IAM or STS), still counts toward the user's two, and
// becomes usable again with the same secret when made Active. Refused
// calls change nothing.
func TestIAMUpdateAccessKey(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	gina := e.newUser(t, "gina", allowDoc("*", "kms:ListKeys"))
	other := e.newUser(t, "hal")
	status := func() iamtypes.StatusType {
		t.Helper()
		out, err := root.ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("gina")})
		if err != nil || len(out.AccessKeyMetadata) != 1 {
			t.Fatalf("ListAccessKeys gina: %+v %v", out, err)
		}
		return out.AccessKeyMetadata[0].Status
	}
	works := func() bool {
		t.Helper()
		_, kerr := gina.kms.ListKeys(ctx, &kms.ListKeysInput{})
		_, serr := gina.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if (kerr == nil) != (serr == nil) {
			t.Fatalf("KMS and STS disagree on gina's key: %v / %v", kerr, serr)
		}
		if kerr != nil {
			expectAPIError(t, kerr, "UnrecognizedClientException", msgInvalidToken)
			expectIAMError(t, serr, http.StatusForbidden, "InvalidClientTokenId", msgInvalidToken)
		}
		return kerr == nil
	}
	if !works() {
		t.Fatal("a new key does not work")
	}

	// Refusals, each leaving the key Active.
	_, err := gina.iam.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{AccessKeyId: aws.String(gina.akid), Status: iamtypes.StatusTypeInactive})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
		"User: arn:aws:iam::111122223333:user/gina is not authorized to perform: iam:UpdateAccessKey on resource: user gina because no identity-based policy allows the iam:UpdateAccessKey action")
	_, err = root.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("gina"), AccessKeyId: aws.String(gina.akid), Status: "Paused"})
	expectIAMError(t, err, http.StatusBadRequest, "ValidationError",
		"1 validation error detected: Value 'Paused' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive, Expired]")
	_, err = root.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("hal"), AccessKeyId: aws.String(gina.akid), Status: iamtypes.StatusTypeInactive})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The Access Key with id "+gina.akid+" cannot be found.")
	// hal may not update keys, and learns nothing of gina's.
	_, err = other.iam.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{AccessKeyId: aws.String(gina.akid), Status: iamtypes.StatusTypeInactive})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
		"User: arn:aws:iam::111122223333:user/hal is not authorized to perform: iam:UpdateAccessKey on resource: user hal because no identity-based policy allows the iam:UpdateAccessKey action")
	bogus := randomAKID(t)
	_, err = root.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("gina"), AccessKeyId: aws.String(bogus), Status: iamtypes.StatusTypeInactive})
	expectIAMError(t, err, http.StatusNotFound, "NoSuchEntity", "The Access Key with id "+bogus+" cannot be found.")
	if status() != iamtypes.StatusTypeActive || !works() {
		t.Fatal("a refused UpdateAccessKey changed the key")
	}

	// Inactive: listed so, refused everywhere, still one of the two.
	if _, err := root.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("gina"), AccessKeyId: aws.String(gina.akid), Status: iamtypes.StatusTypeInactive}); err != nil {
		t.Fatal(err)
	}
	if s := status(); s != iamtypes.StatusTypeInactive {
		t.Fatalf("status after deactivating: %s", s)
	}
	if works() {
		t.Fatal("an inactive key still signs requests")
	}
	_, err = gina.iam.ListAccessKeys(ctx, &iam.ListAccessKeysInput{})
	expectIAMError(t, err, http.StatusForbidden, "InvalidClientTokenId", msgInvalidToken)
	if _, err := root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("gina")}); err != nil {
		t.Fatal(err)
	}
	_, err = root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("gina")})
	expectIAMError(t, err, http.StatusConflict, "LimitExceeded", "Cannot exceed quota for AccessKeysPerUser: 2")

	// Active again, with the same secret; setting the same status twice is fine.
	for range 2 {
		if _, err := root.UpdateAccessKey(ctx, &iam.UpdateAccessKeyInput{UserName: aws.String("gina"), AccessKeyId: aws.String(gina.akid), Status: iamtypes.StatusTypeActive}); err != nil {
			t.Fatal(err)
		}
	}
	if !works() {
		t.Fatal("a reactivated key does not work")
	}
}
