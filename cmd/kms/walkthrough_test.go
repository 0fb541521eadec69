package main_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// TestWalkthroughScript runs scripts/walkthrough.sh, the key administrator
// and key user demo of the README, against a dev server, the way a user
// would: with the aws CLI, the dev credentials file and nothing else of
// theirs.
func TestWalkthroughScript(t *testing.T) {
	t.Parallel()
	awsBin := requireAWS(t)
	s := startDev(t, t.TempDir())
	output, env := runScript(t, s, "walkthrough.sh")

	lines := strings.Split(strings.TrimRight(output, "\n"), "\n")
	if last := lines[len(lines)-1]; last != "walkthrough passed" {
		t.Errorf("last line is %q, want %q\n%s", last, "walkthrough passed", output)
	}
	// The script checks each refusal itself; make sure all four happened.
	for _, op := range []string{"Encrypt", "Decrypt", "DisableKey", "PutKeyPolicy"} {
		want := "refused: An error occurred (AccessDeniedException) when calling the " + op + " operation"
		if !strings.Contains(output, want) {
			t.Errorf("output lacks %q\n%s", want, output)
		}
	}

	// The user's access key, made inactive, was refused as an unknown one.
	if want := "refused: An error occurred (UnrecognizedClientException) when calling the Decrypt operation"; !strings.Contains(output, want) {
		t.Errorf("output lacks %q\n%s", want, output)
	}

	// What it leaves behind: its key pending deletion, no IAM users.
	c := s.client(t)
	keys, err := c.ListKeys(testCtx(t), &kms.ListKeysInput{})
	noErr(t, err, "ListKeys")
	if len(keys.Keys) != 1 {
		t.Fatalf("ListKeys: %d keys after the walkthrough, want its one key", len(keys.Keys))
	}
	d, err := c.DescribeKey(testCtx(t), &kms.DescribeKeyInput{KeyId: keys.Keys[0].KeyId})
	noErr(t, err, "DescribeKey")
	if d.KeyMetadata.KeyState != types.KeyStatePendingDeletion {
		t.Errorf("the walkthrough's key is %s, want PendingDeletion", d.KeyMetadata.KeyState)
	}
	users := exec.Command(awsBin, "iam", "list-users", "--endpoint-url", s.URL, "--query", "Users[].UserName", "--output", "text")
	users.Env = env
	got, err := users.CombinedOutput()
	if err != nil {
		t.Fatalf("aws iam list-users: %v\n%s", err, got)
	}
	if strings.TrimSpace(string(got)) != "" {
		t.Errorf("aws iam list-users after the walkthrough: %q, want none", got)
	}
}

// runScript runs scripts/NAME with bash against the dev server s, as a
// user would: the aws CLI configured by the environment alone, with the
// dev credentials file and a home of its own. It fails the test if the
// script fails, and returns what it printed and the environment it had.
func runScript(t *testing.T, s *server, name string) (output string, env []string) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("the script: %v", err)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed to run %s: %v", script, err)
	}
	home := t.TempDir()
	config := filepath.Join(home, "config")
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env = baseEnv(
		"HOME="+home,
		"AWS_CONFIG_FILE="+config,
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(s.Dir, "credentials"),
		"AWS_ENDPOINT_URL="+s.URL,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_PAGER=",
		"AWS_EC2_METADATA_DISABLED=true",
		"TMPDIR="+t.TempDir(),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, script)
	cmd.Env, cmd.Dir = env, t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("bash %s: %v after %v\n%s", script, err, elapsed.Round(time.Millisecond), out.String())
	}
	t.Logf("%s took %v", name, elapsed.Round(time.Millisecond))
	return out.String(), env
}
