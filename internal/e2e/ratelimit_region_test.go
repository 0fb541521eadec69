package e2e_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/openkms/kms/internal/api"
)

// An account's rate limit applies in each region, as AWS's request quotas
// do: an account past its limit in one region is still served in another.
// IAM's calls are all made in one region whatever region they are signed
// for, so they share one bucket.
func TestRateLimitIsPerRegion(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	e.guard.next.(*api.Handler).WithRateLimit(0.001, 2) // no token comes back during the test
	ctx := context.Background()
	throttled := func(what string, err error, want string) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != want {
			t.Errorf("%s past the limit: %v, want %s", what, err, want)
		}
	}
	c := e.regions()
	for _, region := range []string{e2eRegion, e2eRegion2} {
		for i := range 2 {
			if _, err := c[region].ListKeys(ctx, &kms.ListKeysInput{}); err != nil {
				t.Fatalf("KMS call %d in %s, within the burst: %v", i+1, region, err)
			}
		}
		_, err := c[region].ListKeys(ctx, &kms.ListKeysInput{})
		throttled("a KMS call in "+region, err, "ThrottlingException")
	}

	in := func(region string) func(*sts.Options) { return func(o *sts.Options) { o.Region = region } }
	s := e.stsClient(e.creds.ID, e.creds.Secret, "")
	for _, region := range []string{e2eRegion, e2eRegion2} {
		for i := range 2 {
			if _, err := s.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, in(region)); err != nil {
				t.Fatalf("STS call %d in %s, within the burst: %v", i+1, region, err)
			}
		}
		_, err := s.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, in(region))
		throttled("an STS call in "+region, err, "Throttling")
	}

	i := e.iamClient(e.creds.ID, e.creds.Secret, "")
	signedIn := func(region string) func(*iam.Options) { return func(o *iam.Options) { o.Region = region } }
	for _, region := range []string{e2eRegion, e2eRegion2} {
		if _, err := i.ListUsers(ctx, &iam.ListUsersInput{}, signedIn(region)); err != nil {
			t.Fatalf("an IAM call signed for %s, within the burst: %v", region, err)
		}
	}
	_, err := i.ListUsers(ctx, &iam.ListUsersInput{}, signedIn("us-west-2"))
	throttled("an IAM call signed for a third region", err, "Throttling")
}
