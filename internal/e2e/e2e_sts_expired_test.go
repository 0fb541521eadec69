package e2e_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/testsupport"
)

// An expired session's requests to IAM and STS are refused with 403
// ExpiredToken, as AWS answers them (the IAM API reference's common
// errors; the SDKs and the CLI show "StatusCode: 403 ... ExpiredToken").
func TestSTSExpiredSessionIsForbidden(t *testing.T) {
	t.Parallel()
	// The directory's clock starts 14 minutes behind the time the SDK
	// signs with, within the 15 minutes IAM and STS allow, so that a
	// session of 15 minutes has ended when it is moved to 2 minutes
	// ahead.
	now := time.Now().Truncate(time.Second)
	dirClock := testsupport.NewClock(now.Add(-14 * time.Minute))
	e := openKMSEnvDir(t, filepath.Join(t.TempDir(), "kms.db"), mustRandom(t, 32), testsupport.NewClock(e2eStart), nil,
		func(c *identity.Config) { c.Now = dirClock.Now })
	ctx := context.Background()
	e.createRole(t, "brief", trustAccount)
	out, err := e.assumerSTS(t).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("brief")),
		RoleSessionName: aws.String("short"), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	id, secret, token := aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)
	dirClock.Set(now.Add(2 * time.Minute))
	const msg = "The security token included in the request is expired"
	_, err = e.stsClient(id, secret, token).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	expectIAMError(t, err, http.StatusForbidden, "ExpiredToken", msg)
	_, err = e.iamClient(id, secret, token).ListRoles(ctx, &iam.ListRolesInput{})
	expectIAMError(t, err, http.StatusForbidden, "ExpiredToken", msg)
}
