package e2e_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/openkms/kms/internal/testsupport"
)

// iamClientIn is iamClient signing for region.
func (e *kmsEnv) iamClientIn(region, akid, secret string) *iam.Client {
	return iam.New(iam.Options{
		Region:           region,
		BaseEndpoint:     aws.String(e.srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       testsupport.SDKHTTPClient(e.srv.Client()),
	})
}

// stsClientIn is stsClient signing for region.
func (e *kmsEnv) stsClientIn(region, akid, secret string) *sts.Client {
	return sts.New(sts.Options{
		Region:           region,
		BaseEndpoint:     aws.String(e.srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       testsupport.SDKHTTPClient(e.srv.Client()),
	})
}

// aws:RequestedRegion in IAM and STS decisions is AWS's: IAM is a global
// service whose calls are made in us-east-1, whatever region the client
// signs for; an STS call is made in the region it is signed for. So a
// principal kept out of every region but eu-west-1 is kept out of IAM,
// and of STS outside eu-west-1, and one allowed only in us-east-1 may use
// IAM, and STS there.
func TestE2ERequestedRegionIAMAndSTS(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	e.createRole(t, "target", trustAccount)
	assume := &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("target")), RoleSessionName: aws.String("session")}

	onlyEU := e.newUser(t, "only-eu", kpDoc(
		kpIdentity("Allow", []string{"*"}, "*"),
		kpIdentity("Deny", []string{"*"}, "*").with(map[string]any{"StringNotEquals": map[string]any{"aws:RequestedRegion": e2eRegion2}})))
	for _, region := range []string{e2eRegion, e2eRegion2} {
		_, err := e.iamClientIn(region, onlyEU.akid, onlyEU.secret).ListUsers(ctx, &iam.ListUsersInput{})
		expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
			"User: "+userARNOf("only-eu")+" is not authorized to perform: iam:ListUsers on resource: arn:aws:iam::"+e2eAccount+":user/ with an explicit deny in an identity-based policy")
		_, err = e.iamClientIn(region, onlyEU.akid, onlyEU.secret).CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("made-by-only-eu")})
		expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	}
	if _, err := e.rootIAM().GetUser(ctx, &iam.GetUserInput{UserName: aws.String("made-by-only-eu")}); err == nil {
		t.Fatal("a user denied IAM made a user")
	}
	_, err := e.stsClientIn(e2eRegion, onlyEU.akid, onlyEU.secret).AssumeRole(ctx, assume)
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	if _, err := e.stsClientIn(e2eRegion2, onlyEU.akid, onlyEU.secret).AssumeRole(ctx, assume); err != nil {
		t.Errorf("AssumeRole in eu-west-1, the one region allowed: %v", err)
	}

	// A deny of us-east-1 covers IAM, whatever region its client signs for.
	notInUS := e.newUser(t, "not-in-us", kpDoc(
		kpIdentity("Allow", []string{"*"}, "*"),
		kpIdentity("Deny", []string{"*"}, "*").with(map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": e2eRegion}})))
	for _, region := range []string{e2eRegion, e2eRegion2} {
		_, err := e.iamClientIn(region, notInUS.akid, notInUS.secret).CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("only-eu")})
		expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
			"User: "+userARNOf("not-in-us")+" is not authorized to perform: iam:CreateAccessKey on resource: user only-eu with an explicit deny in an identity-based policy")
	}
	keys, err := e.rootIAM().ListAccessKeys(ctx, &iam.ListAccessKeysInput{UserName: aws.String("only-eu")})
	if err != nil || len(keys.AccessKeyMetadata) != 1 {
		t.Fatalf("only-eu has %d access keys (%v) after refused CreateAccessKeys, want its one", len(keys.AccessKeyMetadata), err)
	}
	_, err = e.stsClientIn(e2eRegion, notInUS.akid, notInUS.secret).AssumeRole(ctx, assume)
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied", "")
	if _, err := e.stsClientIn(e2eRegion2, notInUS.akid, notInUS.secret).AssumeRole(ctx, assume); err != nil {
		t.Errorf("AssumeRole in eu-west-1, not denied: %v", err)
	}

	onlyUS := e.newUser(t, "only-us", kpDoc(
		kpIdentity("Allow", []string{"*"}, "*").with(map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": e2eRegion}})))
	for _, region := range []string{e2eRegion, e2eRegion2} {
		if _, err := e.iamClientIn(region, onlyUS.akid, onlyUS.secret).ListUsers(ctx, &iam.ListUsersInput{}); err != nil {
			t.Errorf("ListUsers signed for %s, IAM being in us-east-1: %v", region, err)
		}
	}
	if _, err := e.stsClientIn(e2eRegion, onlyUS.akid, onlyUS.secret).AssumeRole(ctx, assume); err != nil {
		t.Errorf("AssumeRole in us-east-1, the one region allowed: %v", err)
	}
	_, err = e.stsClientIn(e2eRegion2, onlyUS.akid, onlyUS.secret).AssumeRole(ctx, assume)
	expectIAMError(t, err, http.StatusForbidden, "AccessDenied",
		"User: "+userARNOf("only-us")+" is not authorized to perform: sts:AssumeRole on resource: "+roleARNOf("target"))
}
