package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// requirePythonBoto3 returns a python3 that imports boto3.
func requirePythonBoto3(t *testing.T) string {
	t.Helper()
	if python, err := exec.LookPath("python3"); err == nil {
		if exec.Command(python, "-c", "import boto3").Run() == nil {
			return python
		}
	}
	msg := "python3 with boto3 installed is needed for this test"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// boto3Ran matches unittest's count of the cases it ran.
var boto3Ran = regexp.MustCompile(`(?m)^Ran (\d+) tests? in `)

// boto3 drives the built server as a Python user would: the main paths,
// its paginators, its modelled exceptions, what AWS's server refuses when
// botocore's own validation is off, its retries, and ML-KEM keys (with
// botocore's model and the additions it predates, newerCLIModel). The
// cases are in test/boto3/kms_boto3.py.
func TestBoto3(t *testing.T) {
	t.Parallel()
	python := requirePythonBoto3(t)
	script, err := filepath.Abs(filepath.Join("..", "..", "test", "boto3", "kms_boto3.py"))
	if err != nil {
		t.Fatal(err)
	}
	s := startDev(t, t.TempDir())
	id, secret := devCredentials(t, s.Dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, script)
	cmd.Env = append(baseEnv(), "AWS_ACCESS_KEY_ID="+id, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_DEFAULT_REGION="+s.Region, "AWS_ENDPOINT_URL="+s.URL, "HOME="+t.TempDir(),
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
		"PYTHONDONTWRITEBYTECODE=1", "AWS_DATA_PATH="+newerCLIModel(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	m := boto3Ran.FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s printed no count of the cases it ran:\n%s", script, out)
	}
	if n, _ := strconv.Atoi(string(m[1])); n < 30 {
		t.Fatalf("%s ran %d cases, want them all:\n%s", script, n, out)
	}
}
