package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRegionsWalkthroughScript runs scripts/regions-walkthrough.sh, the
// README's multi-Region walkthrough, against a dev server with the aws CLI
// (--region per call), then reads the audit trail: each call is recorded
// in the region it was made in.
func TestRegionsWalkthroughScript(t *testing.T) {
	t.Parallel()
	requireAWS(t)
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "regions-walkthrough.sh"))
	if err != nil {
		t.Fatal(err)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed to run %s: %v", script, err)
	}
	s := startDev(t, t.TempDir())
	home := t.TempDir()
	config := filepath.Join(home, "config")
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := baseEnv(
		"HOME="+home,
		"AWS_CONFIG_FILE="+config,
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(s.Dir, "credentials"),
		"AWS_ENDPOINT_URL="+s.URL,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"TMPDIR="+t.TempDir(),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, script, s.URL)
	cmd.Env, cmd.Dir = env, t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("bash %s: %v\n%s", script, err, out.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if last := lines[len(lines)-1]; last != "regions walkthrough passed" {
		t.Fatalf("last line is %q\n%s", last, out.String())
	}

	// The trail: every call in the region its signature named.
	code, events, errOut := runToExit(t, baseEnv(), "audit", "events", "--data-dir", s.Dir, "--json")
	if code != 0 {
		t.Fatalf("kms audit events: exit %d\n%s", code, errOut)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(events), "\n") {
		var ev struct {
			EventName string `json:"eventName"`
			AWSRegion string `json:"awsRegion"`
			Resources []struct {
				ARN string `json:"ARN"`
			} `json:"resources"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("an event is not JSON: %v\n%s", err, line)
		}
		seen[ev.EventName+" "+ev.AWSRegion] = true
		for _, r := range ev.Resources {
			if !strings.HasPrefix(r.ARN, "arn:aws:kms:"+ev.AWSRegion+":") && ev.EventName != "ReplicateKey" && ev.EventName != "UpdatePrimaryRegion" {
				t.Errorf("a %s call in %s names the key %s of another region", ev.EventName, ev.AWSRegion, r.ARN)
			}
		}
	}
	for _, want := range []string{
		"CreateKey us-east-1", "ReplicateKey us-east-1", "Decrypt ap-southeast-2", "Decrypt eu-west-1",
		"UpdatePrimaryRegion us-east-1", "RotateKeyOnDemand eu-west-1", "ListKeyRotations ap-southeast-2",
		"DescribeKey eu-west-1", "ScheduleKeyDeletion ap-southeast-2",
	} {
		if !seen[want] {
			t.Errorf("no %s record in the trail", want)
		}
	}
}
