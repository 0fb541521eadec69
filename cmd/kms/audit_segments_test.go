package main_test

// The segmented trail with the real binary: a server with tiny segments
// writes several, `kms audit verify` checks them as one chain and names a
// removed, reordered or edited segment, archived segments verify apart
// and with the data directory, and `kms audit export` writes exactly the
// records of a time range as JSON lines and as a CloudTrail file.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/openkms/kms/internal/audit"
)

// copyAuditDir copies the regular files of dir (the trail and the key
// store) into a new directory.
func copyAuditDir(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	entries, err := os.ReadDir(dir)
	noErr(t, err, "read %s", dir)
	for _, e := range entries {
		if e.Type().IsRegular() {
			copyFile(t, filepath.Join(dir, e.Name()), filepath.Join(out, e.Name()))
		}
	}
	return out
}

// segmentedServerDir runs a dev server with 4 KiB segments through calls
// and stops it, and returns its data directory and segments.
func segmentedServerDir(t *testing.T) (string, []audit.Segment) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := testCtx(t)
	s := startServer(t, dir, baseEnv(), "--dev", "--audit-segment-bytes", "4096")
	c := s.client(t)
	key, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	for range 40 {
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyMetadata.KeyId, Plaintext: []byte("segmented")})
		noErr(t, err, "Encrypt")
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	segs, err := audit.Segments(dir)
	noErr(t, err, "segments")
	if len(segs) < 4 {
		t.Fatalf("%d segments after 41 calls with 4 KiB segments, want several", len(segs))
	}
	for _, sg := range segs[:len(segs)-1] {
		if fi, _ := os.Stat(sg.Path); fi.Size() > 4096 {
			t.Errorf("%s holds %d bytes, over --audit-segment-bytes", sg.Name(), fi.Size())
		}
	}
	return dir, segs
}

func TestAuditSegmentsVerify(t *testing.T) {
	t.Parallel()
	dir, segs := segmentedServerDir(t)
	if code, out := auditVerify(t, dir); code != 0 || !strings.HasPrefix(out, "OK: 41 records") {
		t.Fatalf("verify of a segmented trail: exit %d\n%s", code, out)
	}
	if n := len(auditJSON(t, dir)); n != 41 {
		t.Fatalf("events: %d records across the segments, want 41", n)
	}
	mid := len(segs) / 2
	for _, tc := range []struct {
		name   string
		tamper func(d string)
		want   string
	}{
		{"first segment removed", func(d string) { os.Remove(filepath.Join(d, segs[0].Name())) }, "segment 1 (audit.log) is missing"},
		{"middle segment removed", func(d string) { os.Remove(filepath.Join(d, segs[mid].Name())) }, "is missing"},
		{"last segment removed", func(d string) { os.Remove(filepath.Join(d, segs[len(segs)-1].Name())) }, "records were cut off"},
		{"segments swapped", func(d string) {
			a, b := filepath.Join(d, segs[1].Name()), filepath.Join(d, segs[2].Name())
			tmp := a + ".tmp"
			os.Rename(a, tmp)
			os.Rename(b, a)
			os.Rename(tmp, b)
		}, "(" + segs[1].Name() + ", line 1)"},
		{"segment edited", func(d string) {
			p := filepath.Join(d, segs[mid].Name())
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`"Encrypt"`), []byte(`"Decrypt"`), 1), 0o600)
		}, "it was edited"},
		{"segment replaced by another", func(d string) {
			copyFile(t, filepath.Join(d, segs[1].Name()), filepath.Join(d, segs[mid].Name()))
		}, "BROKEN"},
	} {
		d := copyAuditDir(t, dir)
		tc.tamper(d)
		code, out := auditVerify(t, d)
		if code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, want 1 and %q\n%s", tc.name, code, tc.want, out)
		}
	}
}

// The archive procedure of docs/operations.md: copy audit.pub and
// audit-digests.log, then the closed segments, verify the copy with
// --archive, remove the originals, and verify the data directory with
// --archive-dir.
func TestAuditSegmentsArchive(t *testing.T) {
	t.Parallel()
	dir, segs := segmentedServerDir(t)
	archive := t.TempDir()
	for _, name := range []string{"audit.pub", "audit-digests.log"} {
		copyFile(t, filepath.Join(dir, name), filepath.Join(archive, name))
	}
	for _, sg := range segs[:len(segs)-1] {
		copyFile(t, sg.Path, filepath.Join(archive, sg.Name()))
	}
	code, stdout, stderr := runToExit(t, baseEnv(), "audit", "verify", "--data-dir", archive, "--archive")
	if code != 0 || !strings.HasPrefix(stdout, "OK") {
		t.Fatalf("verify --archive: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, sg := range segs[:len(segs)-1] {
		noErr(t, os.Remove(sg.Path), "remove %s", sg.Name())
	}
	if code, out := auditVerify(t, dir); code != 1 || !strings.Contains(out, "give its directory with --archive-dir") {
		t.Errorf("verify without the archive: exit %d\n%s", code, out)
	}
	code, stdout, stderr = runToExit(t, baseEnv(), "audit", "verify", "--data-dir", dir, "--archive-dir", archive)
	if code != 0 || !strings.HasPrefix(stdout, "OK: 41 records") {
		t.Fatalf("verify --archive-dir: exit %d\n%s%s", code, stdout, stderr)
	}
	// The server goes on in the last segment without the archived ones.
	s := startServer(t, dir, baseEnv(), "--dev", "--audit-segment-bytes", "4096")
	_, err := s.client(t).ListKeys(testCtx(t), &kms.ListKeysInput{})
	noErr(t, err, "ListKeys")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	code, stdout, stderr = runToExit(t, baseEnv(), "audit", "verify", "--data-dir", dir, "--archive-dir", archive)
	if code != 0 || !strings.HasPrefix(stdout, "OK: 42 records") {
		t.Fatalf("verify --archive-dir after a restart: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestAuditExport(t *testing.T) {
	t.Parallel()
	dir, _ := segmentedServerDir(t)
	all := auditJSON(t, dir)
	// The range: from the second distinct second of the trail, one second
	// long, or the whole trail's seconds after the first.
	first, _ := time.Parse(audit.TimeFormat, all[0].EventTime)
	last, _ := time.Parse(audit.TimeFormat, all[len(all)-1].EventTime)
	since, until := first.Add(time.Second), last.Add(time.Second)
	if !last.After(first) {
		since, until = first, first.Add(time.Second)
	}
	want := map[string]bool{}
	for _, ev := range all {
		at, _ := time.Parse(audit.TimeFormat, ev.EventTime)
		if !at.Before(since) && at.Before(until) {
			want[ev.EventID] = true
		}
	}
	args := []string{"audit", "export", "--data-dir", dir, "--since", since.Format(time.RFC3339), "--until", until.Format(time.RFC3339)}

	code, stdout, stderr := runToExit(t, baseEnv(), args...)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s", code, stderr)
	}
	got := map[string]bool{}
	for _, ln := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if ln == "" {
			continue
		}
		var ev auditEvent
		noErr(t, json.Unmarshal([]byte(ln), &ev), "jsonl line %q", ln)
		got[ev.EventID] = true
	}
	if len(got) != len(want) {
		t.Fatalf("jsonl export: %d events, want %d (of %d)", len(got), len(want), len(all))
	}
	for id := range want {
		if !got[id] {
			t.Errorf("jsonl export lacks event %s", id)
		}
	}

	file := filepath.Join(t.TempDir(), "trail.json")
	code, _, stderr = runToExit(t, baseEnv(), append(args, "--format", "cloudtrail", "-o", file)...)
	if code != 0 {
		t.Fatalf("export --format cloudtrail: exit %d\n%s", code, stderr)
	}
	b, err := os.ReadFile(file)
	noErr(t, err, "read the export")
	var ct struct {
		Records []struct {
			EventVersion       string `json:"eventVersion"`
			EventSource        string `json:"eventSource"`
			EventName          string `json:"eventName"`
			EventID            string `json:"eventID"`
			EventType          string `json:"eventType"`
			EventCategory      string `json:"eventCategory"`
			ManagementEvent    bool   `json:"managementEvent"`
			RecipientAccountID string `json:"recipientAccountId"`
			UserIdentity       struct {
				ARN string `json:"arn"`
			} `json:"userIdentity"`
			Resources []struct {
				AccountID string `json:"accountId"`
				Type      string `json:"type"`
				ARN       string `json:"ARN"`
			} `json:"resources"`
		}
	}
	noErr(t, json.Unmarshal(b, &ct), "the CloudTrail file")
	if len(ct.Records) != len(want) {
		t.Fatalf("cloudtrail export: %d records, want %d", len(ct.Records), len(want))
	}
	for _, r := range ct.Records {
		if !want[r.EventID] || r.EventVersion != "1.08" || r.EventSource != "kms.amazonaws.com" || r.EventType != "AwsApiCall" ||
			r.EventCategory != "Management" || !r.ManagementEvent || r.RecipientAccountID != "111122223333" || r.UserIdentity.ARN == "" {
			t.Errorf("cloudtrail record %+v", r)
		}
		if r.EventName == "Encrypt" && (len(r.Resources) != 1 || r.Resources[0].Type != "AWS::KMS::Key" || r.Resources[0].AccountID != "111122223333") {
			t.Errorf("cloudtrail Encrypt resources %+v", r.Resources)
		}
	}

	// A broken trail is refused, unless --no-verify.
	segs, _ := audit.Segments(dir)
	noErr(t, os.Remove(segs[1].Path), "remove a segment")
	if code, _, stderr := runToExit(t, baseEnv(), args...); code == 0 || !strings.Contains(stderr, "does not verify") {
		t.Errorf("export of a broken trail: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := runToExit(t, baseEnv(), append(args, "--no-verify")...); code != 0 {
		t.Errorf("export --no-verify: exit %d\n%s", code, stderr)
	}
}

// TestAuditStorageRemovedChain: `kms audit verify --storage` detects a
// node's chain removed whole, with its registry entry or without, once a
// later node has signed a digest.
func TestAuditStorageRemovedChain(t *testing.T) {
	t.Parallel()
	for _, withEntry := range []bool{false, true} {
		c := newAuditCluster(t)
		chain := c.nodes[0].Chain()
		for _, table := range []string{"kms_audit_records", "kms_audit_digests", "kms_audit_keys", "kms_audit_chains"} {
			c.exec(t, `DELETE FROM `+table+` WHERE chain = $1`, chain)
		}
		want := "chain " + chain + ": BROKEN: the chain is entry 1 of the chain registry, but its row in kms_audit_chains is gone"
		if withEntry {
			c.exec(t, `DELETE FROM kms_audit_registry WHERE chain = $1`, chain)
			want = "chain (registry): BROKEN: the chain registry's entry 1 is missing"
		}
		code, stdout, stderr := runToExit(t, baseEnv(), "audit", "verify", "--storage", c.dsn)
		if code != 1 || !strings.Contains(stdout, want) {
			t.Errorf("a chain removed (registry entry removed too: %v): exit %d, want 1 and %q\n%s%s", withEntry, code, want, stdout, stderr)
		}
	}
}

// TestAuditStorageExport: export --storage writes the records of every
// chain in the range, in time order.
func TestAuditStorageExport(t *testing.T) {
	t.Parallel()
	c := newAuditCluster(t)
	// The records are at 10:00:00 + 0..9 s, node 0 at even seconds.
	code, stdout, stderr := runToExit(t, baseEnv(), "audit", "export", "--storage", c.dsn,
		"--since", "2026-03-01T10:00:03Z", "--until", "2026-03-01T10:00:07Z")
	if code != 0 {
		t.Fatalf("export --storage: exit %d\n%s", code, stderr)
	}
	if got, want := requestIDs(t, stdout), []string{"n1-r2", "n0-r3", "n1-r3", "n0-r4"}; !slices.Equal(got, want) {
		t.Errorf("export --storage: %v, want %v", got, want)
	}
	code, stdout, stderr = runToExit(t, baseEnv(), "audit", "export", "--storage", c.dsn, "--format", "cloudtrail",
		"--since", "2026-03-01T10:00:08Z", "--until", "2026-03-01T11:00:00Z")
	var ct struct {
		Records []struct {
			RequestID string `json:"requestID"`
		}
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &ct) != nil || len(ct.Records) != 2 || ct.Records[0].RequestID != "n0-r5" || ct.Records[1].RequestID != "n1-r5" {
		t.Errorf("export --storage --format cloudtrail: exit %d, %+v\n%s%s", code, ct, stdout, stderr)
	}
}
