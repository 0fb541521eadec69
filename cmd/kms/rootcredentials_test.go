package main_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/openkms/kms/internal/testsupport"
)

// iamClient is an IAM client of s signing with id and secret.
func iamClient(s *server, id, secret string) *iam.Client {
	return iam.New(iam.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
}

// rotateRootKey makes the root a second access key with the one in
// credFile, deletes the first with it, and returns the second.
func rotateRootKey(t *testing.T, s *server, credFile string) (id, secret string) {
	t.Helper()
	ctx := testCtx(t)
	first, firstSecret := devCredentials(t, filepath.Dir(credFile))
	ck, err := iamClient(s, first, firstSecret).CreateAccessKey(ctx, &iam.CreateAccessKeyInput{})
	noErr(t, err, "CreateAccessKey")
	id, secret = aws.ToString(ck.AccessKey.AccessKeyId), aws.ToString(ck.AccessKey.SecretAccessKey)
	_, err = iamClient(s, id, secret).DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(first)})
	noErr(t, err, "DeleteAccessKey of the first key")
	return id, secret
}

// rootKeys lists the root's access key ids, signed with id and secret.
func rootKeys(t *testing.T, s *server, id, secret string) []string {
	t.Helper()
	lk, err := iamClient(s, id, secret).ListAccessKeys(testCtx(t), &iam.ListAccessKeysInput{})
	noErr(t, err, "ListAccessKeys")
	var ids []string
	for _, k := range lk.AccessKeyMetadata {
		ids = append(ids, aws.ToString(k.AccessKeyId))
	}
	return ids
}

// TestInitCredentialsOnce: --init-credentials hands the root's secret out
// on the start that initialises the account, and never again: not after
// the root replaced its first key and the file was deleted, when the
// server used to make the root a new key and write it out.
func TestInitCredentialsOnce(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	credFile := filepath.Join(t.TempDir(), "credentials")
	env := baseEnv("KMS_ROOT_KEY=" + base64.StdEncoding.EncodeToString(randBytes(t, 32)))
	s := startServer(t, dir, env, "--init-credentials", credFile)
	s.waitOutput(regexp.MustCompile(`The account root's access key is in `+regexp.QuoteMeta(credFile)+`, written at this first start only`), startTimeout)
	id, secret := rotateRootKey(t, s, credFile)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit code %d", code)
	}
	noErr(t, os.Remove(credFile), "remove the credentials file")

	s = startServer(t, dir, env, "--init-credentials", credFile)
	// The start says that it wrote nothing, rather than leave the
	// operator waiting for the file.
	s.waitOutput(regexp.MustCompile(`--init-credentials: nothing written to `+regexp.QuoteMeta(credFile)+`: the account was initialised before \(at an earlier start`), startTimeout)
	if _, err := os.Stat(credFile); err == nil {
		b, _ := os.ReadFile(credFile)
		t.Errorf("a restart wrote root credentials again:\n%s", b)
	}
	if ids := rootKeys(t, s, id, secret); !slices.Equal(ids, []string{id}) {
		t.Errorf("the root's access keys after a restart are %v, want only %s", ids, id)
	}
}

// TestDevCredentialsAfterRootKeyChanges: a dev server writes DATA_DIR/credentials
// at every start with a key the root has: its first, then, once that is
// deleted, its other one, and never a new one. A root with no key left
// gets none.
func TestDevCredentialsAfterRootKeyChanges(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	credFile := filepath.Join(dir, "credentials")
	s := startDev(t, dir)
	id, secret := rotateRootKey(t, s, credFile)
	s.stop(syscall.SIGTERM)

	s = startDev(t, dir)
	if got, _ := devCredentials(t, dir); got != id {
		t.Errorf("credentials after a restart hold %s, want the root's remaining key %s", got, id)
	}
	if ids := rootKeys(t, s, id, secret); !slices.Equal(ids, []string{id}) {
		t.Errorf("the root's access keys after a restart are %v, want only %s", ids, id)
	}
	_, err := iamClient(s, id, secret).DeleteAccessKey(testCtx(t), &iam.DeleteAccessKeyInput{AccessKeyId: aws.String(id)})
	noErr(t, err, "DeleteAccessKey of the last key")
	s.stop(syscall.SIGTERM)
	before, err := os.ReadFile(credFile)
	noErr(t, err, "read credentials")

	s = startDev(t, dir)
	s.waitOutput(regexp.MustCompile(`no active access key`), startTimeout)
	s.waitLog(regexp.MustCompile(`the account root has no active access key`), startTimeout)
	if after, _ := os.ReadFile(credFile); !bytes.Equal(after, before) {
		t.Errorf("credentials were rewritten for a root without keys:\n%s", after)
	}
	if strings.Contains(s.stdout.String(), "export AWS_SHARED_CREDENTIALS_FILE") {
		t.Errorf("printed how to use credentials it did not write:\n%s", s.stdout)
	}
}
