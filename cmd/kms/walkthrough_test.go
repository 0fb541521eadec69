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

// TestWalkthroughScriptLeftoverUsers runs scripts/walkthrough.sh where
// a reader of the README has made its users already: it stops before it
// changes anything, saying how to remove them, as the README says.
func TestWalkthroughScriptLeftoverUsers(t *testing.T) {
	t.Parallel()
	awsBin := requireAWS(t)
	s := startDev(t, t.TempDir())
	_, err := s.client(t).CreateKey(testCtx(t), &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	env := scriptEnv(t, s)
	aws := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(awsBin, append(args, "--endpoint-url", s.URL)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	aws("iam", "create-user", "--user-name", "myKeyManager")

	output, err := runScriptIn(t, env, "walkthrough.sh")
	if err == nil {
		t.Fatalf("the walkthrough passed with myKeyManager left over\n%s", output)
	}
	for _, want := range []string{
		"walkthrough: myKeyManager is left over from an earlier run; remove it with",
		"aws iam delete-user --user-name myKeyManager",
	} {
		if !strings.Contains(output, want) {
			t.Errorf("output lacks %q\n%s", want, output)
		}
	}
	if got := aws("iam", "list-users", "--query", "Users[].UserName", "--output", "text"); got != "myKeyManager" {
		t.Errorf("users after the refused walkthrough: %q, want only myKeyManager", got)
	}
	if got := aws("kms", "list-keys", "--query", "length(Keys)", "--output", "text"); got != "1" {
		t.Errorf("keys after the refused walkthrough: %s, want the one made before it", got)
	}
}

// runScript runs scripts/NAME with bash against the dev server s, as a
// user would: the aws CLI configured by the environment alone, with the
// dev credentials file and a home of its own. It fails the test if the
// script fails, and returns what it printed and the environment it had.
func runScript(t *testing.T, s *server, name string) (output string, env []string) {
	t.Helper()
	env = scriptEnv(t, s)
	output, err := runScriptIn(t, env, name)
	if err != nil {
		t.Fatalf("bash %s: %v\n%s", name, err, output)
	}
	return output, env
}

// scriptEnv is the environment of a user of the dev server s: the aws
// CLI configured by the environment alone, with the dev credentials file
// and a home of its own.
func scriptEnv(t *testing.T, s *server) []string {
	t.Helper()
	home := t.TempDir()
	config := filepath.Join(home, "config")
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return baseEnv(
		"HOME="+home,
		"AWS_CONFIG_FILE="+config,
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(s.Dir, "credentials"),
		"AWS_ENDPOINT_URL="+s.URL,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_PAGER=",
		"AWS_EC2_METADATA_DISABLED=true",
		"TMPDIR="+t.TempDir(),
	)
}

// runScriptIn runs scripts/NAME with bash in the environment env, and
// returns what it printed and how it ended.
func runScriptIn(t *testing.T, env []string, name string) (string, error) {
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
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, script)
	cmd.Env, cmd.Dir = env, t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err = cmd.Run()
	t.Logf("%s took %v", name, time.Since(start).Round(time.Millisecond))
	return out.String(), err
}
