package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestRegionsWalkthroughScript runs scripts/regions-walkthrough.sh, the
// README's multi-Region walkthrough, against a dev server with the aws CLI
// (--region per call), then reads the audit trail: each call is recorded
// in the region it was made in.
func TestRegionsWalkthroughScript(t *testing.T) {
	t.Parallel()
	requireAWS(t)
	s := startDev(t, t.TempDir())
	output, _ := runScript(t, s, "regions-walkthrough.sh")
	lines := strings.Split(strings.TrimRight(output, "\n"), "\n")
	if last := lines[len(lines)-1]; last != "regions walkthrough passed" {
		t.Fatalf("last line is %q\n%s", last, output)
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
