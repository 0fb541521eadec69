package main_test

import (
	"strings"
	"testing"
)

// TestKeyQuotaFlag: --key-quota bounds the keys of an account in a region
// in the built server: through the aws CLI, the create-key past it fails
// with LimitExceededException and AWS's kind of message.
func TestKeyQuotaFlag(t *testing.T) {
	t.Parallel()
	bin := requireAWS(t)
	s := startServer(t, t.TempDir(), baseEnv(), "--dev", "--key-quota", "1")
	cli := newAWSCLI(t, bin, s)
	if out, stderr, code := cli.run("create-key"); code != 0 {
		t.Fatalf("the first create-key: exit %d\n%s%s", code, out, stderr)
	}
	_, stderr, code := cli.run("create-key")
	want := "(LimitExceededException) when calling the CreateKey operation: The account 111122223333 already has the maximum of 1 KMS keys in the Region us-east-1."
	if code == 0 || !strings.Contains(string(stderr), want) {
		t.Fatalf("the create-key past --key-quota 1: exit %d\n%s\nwant %q", code, stderr, want)
	}
	if out, stderr, code := cli.run("list-keys", "--query", "length(Keys)"); code != 0 || strings.TrimSpace(string(out)) != "1" {
		t.Fatalf("list-keys after the refusal: exit %d, %s%s", code, out, stderr)
	}
}
