package main_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAWSCLIThrottling: with --rate-limit, the aws command line gets each
// service's own throttling error once an account's bucket for that service
// is empty, and a service's calls do not empty another's bucket.
func TestAWSCLIThrottling(t *testing.T) {
	t.Parallel()
	bin := requireAWS(t)
	// A bucket of 2 that refills once in 1,000 s: the third call of each
	// service is throttled, however slowly the command line starts.
	s := startServer(t, filepath.Join(t.TempDir(), "data"), baseEnv(), "--dev", "--rate-limit", "0.001", "--rate-burst", "2")
	a := newAWSCLI(t, bin, s)
	a.env = append(a.env, "AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard")
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(a.bin, append(args, "--endpoint-url", a.url)...)
		cmd.Env, cmd.Dir = a.env, a.dir
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		if _, exited := err.(*exec.ExitError); err != nil && !exited {
			t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
		}
		return errb.String(), cmd.ProcessState.ExitCode()
	}
	for _, c := range []struct {
		call []string
		want []string // in the third call's error
	}{
		{[]string{"kms", "list-keys"}, []string{"(ThrottlingException)", "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."}},
		{[]string{"iam", "list-users"}, []string{"(Throttling)", "Rate exceeded"}},
		{[]string{"sts", "get-caller-identity"}, []string{"(Throttling)", "Rate exceeded"}},
	} {
		name := strings.Join(c.call, " ")
		for i := range 2 {
			if errOut, code := run(c.call...); code != 0 {
				t.Fatalf("aws %s, call %d of a burst of 2: exit %d\n%s", name, i+1, code, errOut)
			}
		}
		errOut, code := run(c.call...)
		if code != 254 && code != 255 {
			t.Errorf("aws %s, the third call: exit %d, want a service error\n%s", name, code, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("aws %s, the third call: stderr lacks %q:\n%s", name, w, errOut)
			}
		}
	}
}
