package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// iam runs `aws iam ARGS --endpoint-url URL` and returns its output and
// exit code.
func (a *awsCLI) iam(args ...string) (stdout, stderr string, code int) {
	a.t.Helper()
	a.runs++
	cmd := exec.Command(a.bin, append(append([]string{"iam"}, args...), "--endpoint-url", a.url, "--output", "json")...)
	cmd.Env, cmd.Dir = a.env, a.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		a.t.Fatalf("aws iam %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// TestAWSCLILoginProfile manages a console password with the aws command
// line, as an administrator would.
func TestAWSCLILoginProfile(t *testing.T) {
	t.Parallel()
	bin := requireAWS(t)
	s := startDev(t, filepath.Join(t.TempDir(), "data"))
	a := newAWSCLI(t, bin, s)
	mustIAM := func(args ...string) string {
		t.Helper()
		out, errb, code := a.iam(args...)
		if code != 0 {
			t.Fatalf("aws iam %s: exit %d\n%s", strings.Join(args, " "), code, errb)
		}
		return out
	}
	mustIAM("create-user", "--user-name", "dana")
	out := mustIAM("create-login-profile", "--user-name", "dana", "--password", "Console-Pass-42", "--password-reset-required")
	var created struct {
		LoginProfile struct {
			UserName              string
			CreateDate            string
			PasswordResetRequired bool
		}
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.LoginProfile.UserName != "dana" || !created.LoginProfile.PasswordResetRequired {
		t.Fatalf("create-login-profile printed %s (%v)", out, err)
	}
	if strings.Contains(out, "Console-Pass-42") {
		t.Fatal("the password is echoed back")
	}
	mustIAM("get-login-profile", "--user-name", "dana")
	mustIAM("update-login-profile", "--user-name", "dana", "--password", "Console-Pass-43", "--no-password-reset-required")
	_, errb, code := a.iam("create-login-profile", "--user-name", "dana", "--password", "Console-Pass-44")
	if code == 0 || !strings.Contains(errb, "EntityAlreadyExists") {
		t.Fatalf("a second create-login-profile: exit %d\n%s", code, errb)
	}
	_, errb, code = a.iam("update-login-profile", "--user-name", "dana", "--password", "short")
	if code == 0 || !strings.Contains(errb, "PasswordPolicyViolation") {
		t.Fatalf("a short password: exit %d\n%s", code, errb)
	}
	mustIAM("delete-login-profile", "--user-name", "dana")
	_, errb, code = a.iam("get-login-profile", "--user-name", "dana")
	if code == 0 || !strings.Contains(errb, "NoSuchEntity") {
		t.Fatalf("get-login-profile after delete: exit %d\n%s", code, errb)
	}
}

// TestIAMCallsAreRecordedInUSEast1: IAM is a global service, and CloudTrail
// records its calls in us-east-1. A server whose default region is
// eu-west-1 records an IAM call made with the aws command line there, and
// an STS call in the region it was signed for.
func TestIAMCallsAreRecordedInUSEast1(t *testing.T) {
	t.Parallel()
	bin := requireAWS(t)
	dir := filepath.Join(t.TempDir(), "data")
	s := startServer(t, dir, baseEnv(), "--dev", "--region", "eu-west-1")
	a := newAWSCLI(t, bin, s)
	a.env = append(a.env, "AWS_DEFAULT_REGION=eu-west-1")
	if _, errb, code := a.iam("create-user", "--user-name", "recorded"); code != 0 {
		t.Fatalf("aws iam create-user: exit %d\n%s", code, errb)
	}
	sts := exec.Command(a.bin, "sts", "get-caller-identity", "--endpoint-url", a.url)
	sts.Env = a.env
	if out, err := sts.CombinedOutput(); err != nil {
		t.Fatalf("aws sts get-caller-identity: %v\n%s", err, out)
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("kms server exited %d", code)
	}
	trail, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	regions := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(trail)), "\n") {
		var r struct {
			Event struct {
				EventName string `json:"eventName"`
				AWSRegion string `json:"awsRegion"`
			} `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("a record that is not JSON: %v\n%s", err, line)
		}
		regions[r.Event.EventName] = r.Event.AWSRegion
	}
	if regions["CreateUser"] != "us-east-1" || regions["GetCallerIdentity"] != "eu-west-1" {
		t.Errorf("recorded in regions %v, want CreateUser in us-east-1 and GetCallerIdentity in eu-west-1", regions)
	}
}
