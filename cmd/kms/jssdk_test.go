package main_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
)

// The AWS SDK for JavaScript v3, with its own serializer, SigV4 signer,
// retry logic and error deserializer, gets from the server what it gets
// from AWS KMS: test/sdk-js/kms.js drives keys of every kind, aliases,
// grants, policies and rotation through it and checks the modelled
// exception, status and message of each error a user handles. Signatures
// are also checked with Node's own crypto against GetPublicKey's key.
func TestJavaScriptSDK(t *testing.T) {
	t.Parallel()
	jsDir := requireNodePackage(t, "sdk-js", "@aws-sdk/client-kms")
	s := startDev(t, t.TempDir())
	ctx := testCtx(t)
	id, secret := devCredentials(t, s.Dir)

	// A user with no policy at all: KMS refuses it unless a key policy or
	// a grant names it.
	root := iamClient(s, id, secret)
	u, err := root.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("sdk-js-nobody")})
	noErr(t, err, "CreateUser")
	ak, err := root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: u.User.UserName})
	noErr(t, err, "CreateAccessKey")

	runCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(runCtx, "node", filepath.Join(jsDir, "kms.js"))
	// Only what the script is given: no AWS_* variable or shared file of
	// this machine steers the SDK. The AWS_* set here are for the client
	// that the script configures from the environment alone.
	home := t.TempDir()
	cmd.Env = baseEnv("HOME="+home, "AWS_CONFIG_FILE="+filepath.Join(home, "none"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"),
		"AWS_ENDPOINT_URL="+s.URL, "AWS_REGION="+s.Region,
		"AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret,
		"KMS_ENDPOINT="+s.URL, "KMS_REGION="+s.Region,
		"KMS_ACCESS_KEY_ID="+id, "KMS_SECRET_ACCESS_KEY="+secret,
		"KMS_NOPERM_ARN="+aws.ToString(u.User.Arn),
		"KMS_NOPERM_ACCESS_KEY_ID="+aws.ToString(ak.AccessKey.AccessKeyId),
		"KMS_NOPERM_SECRET_ACCESS_KEY="+aws.ToString(ak.AccessKey.SecretAccessKey))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node kms.js: %v\n%s", err, out.String())
	}
	t.Logf("node kms.js:\n%s", out.String())
}
