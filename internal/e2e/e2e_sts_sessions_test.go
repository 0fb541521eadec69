package e2e_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/testsupport"
)

// TestSTSRevokeOlderSessions: AWS's way of revoking a role's sessions, a
// role policy that denies everything when aws:TokenIssueTime is before a
// time, refuses the sessions issued before it, in IAM and KMS, and not
// those issued after, nor the long-term credentials that assume the role.
func TestSTSRevokeOlderSessions(t *testing.T) {
	t.Parallel()
	// The directory issues sessions by a clock the test moves, from now,
	// the time the SDK signs with, on a whole second.
	issuing := testsupport.NewClock(time.Now().Truncate(time.Second))
	e := openKMSEnvDir(t, filepath.Join(t.TempDir(), "kms.db"), mustRandom(t, 32), testsupport.NewClock(e2eStart), nil,
		func(c *identity.Config) { c.Now = issuing.Now })
	ctx := context.Background()
	root := e.rootIAM()
	e.createRole(t, "revocable", trustAccount)
	if _, err := root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("revocable"), PolicyName: aws.String("all"),
		PolicyDocument: aws.String(allowDoc("*", "*"))}); err != nil {
		t.Fatal(err)
	}
	assume := func(name string) (*iam.Client, *kms.Client, time.Time) {
		t.Helper()
		out, err := e.assumerSTS(t).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("revocable")), RoleSessionName: aws.String(name)})
		if err != nil {
			t.Fatalf("AssumeRole %s: %v", name, err)
		}
		c := out.Credentials
		id, secret, token := aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)
		return e.iamClient(id, secret, token), e.clientWith(id, secret, token), aws.ToTime(c.Expiration).Add(-time.Hour)
	}
	oldIAM, oldKMS, issued := assume("old")
	revokedAt := issued.Add(time.Second)
	issuing.Set(revokedAt)
	revoke := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"` +
		revokedAt.UTC().Format(time.RFC3339) + `"}}}]}`
	if _, err := root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("revocable"), PolicyName: aws.String("AWSRevokeOlderSessions"),
		PolicyDocument: aws.String(revoke)}); err != nil {
		t.Fatal(err)
	}
	e.putUserPolicy(t, "role-assumer", "revoke", revoke)
	newIAM, newKMS, _ := assume("new")

	_, err := oldIAM.ListRoles(ctx, &iam.ListRolesInput{})
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "User: arn:aws:sts::111122223333:assumed-role/revocable/old is not authorized to perform: iam:ListRoles on resource: arn:aws:iam::111122223333:role/ with an explicit deny in an identity-based policy")
	_, err = oldKMS.ListKeys(ctx, &kms.ListKeysInput{})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	if _, err := newIAM.ListRoles(ctx, &iam.ListRolesInput{}); err != nil {
		t.Errorf("IAM with a session issued after the revocation: %v", err)
	}
	if _, err := newKMS.ListKeys(ctx, &kms.ListKeysInput{}); err != nil {
		t.Errorf("KMS with a session issued after the revocation: %v", err)
	}
}

// TestSTSChainedSessionEndsWithItsSource: a session that a session
// started expires no later than it, so that a chain of sessions cannot
// renew itself past the one that long-term credentials started.
func TestSTSChainedSessionEndsWithItsSource(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	e.createRole(t, "hop", trustAccount)
	if _, err := e.rootIAM().PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("hop"), PolicyName: aws.String("assume"),
		PolicyDocument: aws.String(allowDoc("*", "sts:AssumeRole"))}); err != nil {
		t.Fatal(err)
	}
	first, err := e.assumerSTS(t).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("hop")), RoleSessionName: aws.String("s0"), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	end := aws.ToTime(first.Credentials.Expiration)
	c := first.Credentials
	for _, name := range []string{"s1", "s2"} {
		out, err := e.stsClient(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)).
			AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("hop")), RoleSessionName: aws.String(name)})
		if err != nil {
			t.Fatalf("chaining to %s: %v", name, err)
		}
		if exp := aws.ToTime(out.Credentials.Expiration); !exp.Equal(end) {
			t.Errorf("%s expires %v, want %v, when the session that started the chain does", name, exp, end)
		}
		c = out.Credentials
	}
}
