package main_test

// Black-box tests of the audit trail with the real binary: `kms audit
// verify` finds an edited, removed or moved record; `kms audit events`
// prints the records and its filters select the right ones; the trail
// keeps every acknowledged call across a SIGKILL under load; --follow
// prints records written after it started. The same for a cluster's
// trail in PostgreSQL (--storage), written through the audit package.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/middleware"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/store/pgstore"
	"github.com/openkms/kms/internal/store/pgtest"
	"github.com/openkms/kms/internal/testsupport"
)

// auditEvent is the part of a printed record the tests look at.
type auditEvent struct {
	EventVersion string `json:"eventVersion"`
	UserIdentity struct {
		Type        string `json:"type"`
		ARN         string `json:"arn"`
		AccountID   string `json:"accountId"`
		AccessKeyID string `json:"accessKeyId"`
	} `json:"userIdentity"`
	EventTime         string          `json:"eventTime"`
	EventSource       string          `json:"eventSource"`
	EventName         string          `json:"eventName"`
	AWSRegion         string          `json:"awsRegion"`
	SourceIPAddress   string          `json:"sourceIPAddress"`
	RequestParameters json.RawMessage `json:"requestParameters"`
	ErrorCode         string          `json:"errorCode"`
	RequestID         string          `json:"requestID"`
	EventID           string          `json:"eventID"`
	ReadOnly          bool            `json:"readOnly"`
	Resources         []struct {
		ARN string `json:"ARN"`
	} `json:"resources"`
	AdditionalEventData json.RawMessage `json:"additionalEventData"`
	Sequence            uint64          `json:"sequence"`
	PrevHash            string          `json:"previousHash"`
}

// auditJSON runs `kms audit events --data-dir dir --json args...` and
// returns the records it printed, checking that each line is one JSON
// object with the CloudTrail fields.
func auditJSON(t *testing.T, dir string, args ...string) []auditEvent {
	t.Helper()
	code, stdout, stderr := runToExit(t, baseEnv(), append([]string{"audit", "events", "--data-dir", dir, "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("kms audit events --json %v: exit %d\nstderr:\n%s", args, code, stderr)
	}
	var out []auditEvent
	if stdout == "" {
		return nil
	}
	for i, ln := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("events --json line %d is not a JSON object: %v: %q", i+1, err, ln)
		}
		for _, f := range []string{"eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
			"sourceIPAddress", "userAgent", "requestParameters", "responseElements", "requestID", "eventID", "readOnly",
			"eventType", "sequence", "previousHash"} {
			if _, ok := m[f]; !ok {
				t.Errorf("events --json line %d lacks %q: %s", i+1, f, ln)
			}
		}
		var ev auditEvent
		if err := json.Unmarshal([]byte(ln), &ev); err != nil {
			t.Fatalf("events --json line %d: %v", i+1, err)
		}
		out = append(out, ev)
	}
	return out
}

// auditVerify runs `kms audit verify --data-dir dir`.
func auditVerify(t *testing.T, dir string) (int, string) {
	t.Helper()
	code, stdout, stderr := runToExit(t, baseEnv(), "audit", "verify", "--data-dir", dir)
	return code, stdout + stderr
}

// auditVerifyLive runs `kms audit verify --data-dir dir --live`, for the
// trail of a server running on dir.
func auditVerifyLive(t *testing.T, dir string) (int, string) {
	t.Helper()
	code, stdout, stderr := runToExit(t, baseEnv(), "audit", "verify", "--data-dir", dir, "--live")
	return code, stdout + stderr
}

func okRequestID(md middleware.Metadata) string {
	id, _ := awsmiddleware.GetRequestIDMetadata(md)
	return id
}

func failedRequestID(t *testing.T, err error) string {
	t.Helper()
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.ServiceRequestID() == "" {
		t.Fatalf("no request id on %v", err)
	}
	return re.ServiceRequestID()
}

// auditLines reads the log of dir as lines (without their newlines).
func auditLines(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	// A running server's active segment ends in zeros it writes its
	// next records over (docs/audit.md, "Segments").
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("audit.log does not end with a complete line (%d bytes)", len(b))
	}
	return strings.Split(string(b[:len(b)-1]), "\n")
}

// tamperedCopy writes lines as the audit.log of a new directory that also
// holds dir's other audit files (public key, digests), and returns it.
func tamperedCopy(t *testing.T, dir string, lines []string) string {
	t.Helper()
	out := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), "audit") && e.Name() != "audit.log" {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(out, e.Name()), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(out, "audit.log"), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

var brokenLineRE = regexp.MustCompile(`BROKEN.*\bline (\d+)\b`)

func TestAuditVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := testCtx(t)
	s := startDev(t, dir)
	c := s.client(t)
	ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	for i := range 4 {
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte(fmt.Sprint("p", i))})
		noErr(t, err, "Encrypt")
	}
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: ck.KeyMetadata.KeyId})
	noErr(t, err, "DescribeKey")
	const n = 6

	// Readable while the server runs.
	if code, out := auditVerifyLive(t, dir); code != 0 || !strings.HasPrefix(out, "OK") || !strings.Contains(out, fmt.Sprintf("%d records", n)) {
		t.Errorf("verify of a running server's trail: exit %d\n%s", code, out)
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}
	if code, out := auditVerify(t, dir); code != 0 || !strings.HasPrefix(out, "OK") || !strings.Contains(out, fmt.Sprintf("%d records", n)) {
		t.Fatalf("verify of an intact trail: exit %d, want 0 and OK with %d records\n%s", code, n, out)
	}
	lines := auditLines(t, dir)
	if len(lines) != n {
		t.Fatalf("audit.log has %d lines, want %d", len(lines), n)
	}
	if !strings.Contains(lines[2], `"eventName":"Encrypt"`) {
		t.Fatalf("line 3 is not the first Encrypt: %s", lines[2])
	}

	edited := slices.Clone(lines)
	edited[2] = strings.Replace(edited[2], `"eventName":"Encrypt"`, `"eventName":"Encrypu"`, 1)

	// An edit whose line hash is recomputed: the next record's previousHash
	// no longer matches.
	rehashed := slices.Clone(edited)
	{
		var ln struct {
			Hash  string          `json:"hash"`
			Event json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal([]byte(rehashed[2]), &ln); err != nil {
			t.Fatal(err)
		}
		var prev struct {
			Hash string `json:"hash"`
		}
		json.Unmarshal([]byte(lines[1]), &prev)
		sum := sha256.Sum256(append([]byte(prev.Hash), ln.Event...))
		rehashed[2] = `{"hash":"` + hex.EncodeToString(sum[:]) + `","event":` + string(ln.Event) + `}`
	}

	removed := slices.Delete(slices.Clone(lines), 2, 3)
	swapped := slices.Clone(lines)
	swapped[2], swapped[3] = swapped[3], swapped[2]

	for _, tc := range []struct {
		name  string
		lines []string
		line  int
	}{
		{"one character of an eventName", edited, 3},
		{"an edited record with its hash recomputed", rehashed, 4},
		{"a removed record", removed, 3},
		{"two records swapped", swapped, 3},
		{"the first record removed", lines[1:], 1},
	} {
		d := tamperedCopy(t, dir, tc.lines)
		code, out := auditVerify(t, d)
		m := brokenLineRE.FindStringSubmatch(out)
		if code != 1 || m == nil || m[1] != fmt.Sprint(tc.line) {
			t.Errorf("%s: exit %d, want 1 with BROKEN naming line %d:\n%s", tc.name, code, tc.line, out)
		}
	}

	// The server refuses to start on a damaged trail rather than extending
	// it.
	if err := os.WriteFile(filepath.Join(dir, "audit.log"), []byte(strings.Join(swapped, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runToExit(t, baseEnv(), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir)
	if code == 0 || strings.Contains(stdout, "listening") || !strings.Contains(stderr, "audit") {
		t.Errorf("server on a damaged trail: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// Cutting off the newest record is invisible to the chain; the signed
	// digests (if this build writes them) must catch it.
	if fi, err := os.Stat(filepath.Join(dir, "audit-digests.log")); err == nil && fi.Size() > 0 {
		d := tamperedCopy(t, dir, lines[:n-1])
		if code, out := auditVerify(t, d); code != 1 || !strings.Contains(out, "BROKEN") {
			t.Errorf("the newest record cut off, with digests present: exit %d, want 1 and BROKEN\n%s", code, out)
		}
	} else {
		t.Logf("no audit-digests.log: truncation of the newest records is not checked")
	}
}

// call is one SDK call the filters test made, and what it should match.
type call struct {
	reqID     string
	event     string
	principal string // userIdentity.arn
	keyID     string // the key whose ARN the record must carry, if any
	failed    bool
	late      bool // after the time boundary
}

func TestAuditEventsFilters(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := testCtx(t)
	s := startDev(t, dir)
	c := s.client(t)
	rootARN := "arn:aws:iam::111122223333:root"
	rootID, rootSecret := devCredentials(t, dir)
	ic := iam.New(iam.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider(rootID, rootSecret, ""), RetryMaxAttempts: 1, HTTPClient: testsupport.SDKHTTPClient(nil)})
	var calls []call

	cu, err := ic.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("auditor")})
	noErr(t, err, "CreateUser")
	calls = append(calls, call{reqID: okRequestID(cu.ResultMetadata), event: "CreateUser", principal: rootARN})
	pp, err := ic.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("auditor"), PolicyName: aws.String("kms"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`)})
	noErr(t, err, "PutUserPolicy")
	calls = append(calls, call{reqID: okRequestID(pp.ResultMetadata), event: "PutUserPolicy", principal: rootARN})
	ak, err := ic.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("auditor")})
	noErr(t, err, "CreateAccessKey")
	calls = append(calls, call{reqID: okRequestID(ak.ResultMetadata), event: "CreateAccessKey", principal: rootARN})
	userARN := "arn:aws:iam::111122223333:user/auditor"
	uc := kms.New(kms.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(*ak.AccessKey.AccessKeyId, *ak.AccessKey.SecretAccessKey, ""), HTTPClient: testsupport.SDKHTTPClient(nil)})
	stranger := kms.New(kms.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAZZZZZZZZZZZZZZZZ", "nope-nope-nope-nope-nope-nope-nope-nope0", ""), HTTPClient: testsupport.SDKHTTPClient(nil)})

	ck1, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	k1, k1ARN := *ck1.KeyMetadata.KeyId, *ck1.KeyMetadata.Arn
	calls = append(calls, call{reqID: okRequestID(ck1.ResultMetadata), event: "CreateKey", principal: rootARN, keyID: k1})
	ck2, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	k2, k2ARN := *ck2.KeyMetadata.KeyId, *ck2.KeyMetadata.Arn
	calls = append(calls, call{reqID: okRequestID(ck2.ResultMetadata), event: "CreateKey", principal: rootARN, keyID: k2})

	enc := func(cl *kms.Client, principal, key, keyID string, ec map[string]string, late bool) []byte {
		out, err := cl.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key), Plaintext: []byte("x"), EncryptionContext: ec})
		noErr(t, err, "Encrypt %s as %s", key, principal)
		calls = append(calls, call{reqID: okRequestID(out.ResultMetadata), event: "Encrypt", principal: principal, keyID: keyID, late: late})
		return out.CiphertextBlob
	}
	blob := enc(c, rootARN, k1, k1, map[string]string{"a": "b"}, false)
	enc(c, rootARN, k2ARN, k2, nil, false)
	enc(uc, userARN, k1ARN, k1, nil, false)
	dk, err := uc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k2)})
	noErr(t, err, "DescribeKey as the user")
	calls = append(calls, call{reqID: okRequestID(dk.ResultMetadata), event: "DescribeKey", principal: userARN, keyID: k2})
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"a": "c"}})
	if apiErrorCode(err) != "InvalidCiphertextException" {
		t.Fatalf("Decrypt with a wrong context: %v", err)
	}
	// The key its ciphertext names was found before the ciphertext failed
	// to authenticate: the record names it.
	calls = append(calls, call{reqID: failedRequestID(t, err), event: "Decrypt", principal: rootARN, keyID: k1, failed: true})
	_, err = stranger.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(k1)})
	if apiErrorCode(err) != "UnrecognizedClientException" {
		t.Fatalf("DescribeKey with an unknown access key: %v", err)
	}
	calls = append(calls, call{reqID: failedRequestID(t, err), event: "DescribeKey", failed: true})

	// Cross a whole-second boundary: every record so far is before it,
	// every record from here on at or after it.
	boundary := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(boundary) + 20*time.Millisecond)

	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"a": "b"}})
	noErr(t, err, "Decrypt")
	calls = append(calls, call{reqID: okRequestID(dec.ResultMetadata), event: "Decrypt", principal: rootARN, keyID: k1, late: true})
	dis, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(k1ARN)})
	noErr(t, err, "DisableKey")
	calls = append(calls, call{reqID: okRequestID(dis.ResultMetadata), event: "DisableKey", principal: rootARN, keyID: k1, late: true})
	_, err = uc.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(k1ARN), Plaintext: []byte("x")})
	if apiErrorCode(err) != "DisabledException" {
		t.Fatalf("Encrypt on a disabled key: %v", err)
	}
	calls = append(calls, call{reqID: failedRequestID(t, err), event: "Encrypt", principal: userARN, keyID: k1, failed: true, late: true})
	enc(uc, userARN, k2, k2, nil, true)

	// All records, in order, one per call.
	all := auditJSON(t, dir)
	if len(all) != len(calls) {
		t.Fatalf("events --json printed %d records, want %d", len(all), len(calls))
	}
	for i, ev := range all {
		cl := calls[i]
		if ev.Sequence != uint64(i+1) || ev.RequestID != cl.reqID || ev.EventName != cl.event || ev.UserIdentity.ARN != cl.principal || (ev.ErrorCode != "") != cl.failed {
			t.Errorf("record %d: seq %d %s %s by %q error %q; want %s %s by %q failed=%v", i+1, ev.Sequence, ev.EventName, ev.RequestID,
				ev.UserIdentity.ARN, ev.ErrorCode, cl.event, cl.reqID, cl.principal, cl.failed)
		}
		if cl.keyID != "" && (len(ev.Resources) == 0 || !strings.HasSuffix(ev.Resources[0].ARN, ":key/"+cl.keyID)) {
			t.Errorf("record %d (%s): resources %+v, want the key %s", i+1, ev.EventName, ev.Resources, cl.keyID)
		}
		tm, err := time.Parse(time.RFC3339, ev.EventTime)
		if err != nil || tm.Before(boundary) != !cl.late {
			t.Errorf("record %d (%s): eventTime %s, boundary %s, late=%v", i+1, ev.EventName, ev.EventTime, boundary.Format(time.RFC3339), cl.late)
		}
	}

	// Each filter selects exactly the calls it should.
	selectIDs := func(keep func(call) bool) []string {
		var ids []string
		for _, cl := range calls {
			if keep(cl) {
				ids = append(ids, cl.reqID)
			}
		}
		return ids
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--event", "Decrypt"}, selectIDs(func(c call) bool { return c.event == "Decrypt" })},
		{[]string{"--event", "CreateUser"}, selectIDs(func(c call) bool { return c.event == "CreateUser" })},
		{[]string{"--event", "NoSuchOperation"}, nil},
		{[]string{"--errors"}, selectIDs(func(c call) bool { return c.failed })},
		{[]string{"--key", k1}, selectIDs(func(c call) bool { return c.keyID == k1 })},
		{[]string{"--key", k2ARN}, selectIDs(func(c call) bool { return c.keyID == k2 })},
		{[]string{"--principal", userARN}, selectIDs(func(c call) bool { return c.principal == userARN })},
		{[]string{"--principal", rootARN}, selectIDs(func(c call) bool { return c.principal == rootARN })},
		{[]string{"--since", boundary.Format(time.RFC3339)}, selectIDs(func(c call) bool { return c.late })},
		{[]string{"--until", boundary.Format(time.RFC3339)}, selectIDs(func(c call) bool { return !c.late })},
		{[]string{"--since", boundary.Add(-time.Hour).Format(time.RFC3339), "--until", boundary.Add(time.Hour).Format(time.RFC3339)}, selectIDs(func(call) bool { return true })},
		{[]string{"--event", "Encrypt", "--principal", userARN}, selectIDs(func(c call) bool { return c.event == "Encrypt" && c.principal == userARN })},
		{[]string{"--key", k1, "--errors"}, selectIDs(func(c call) bool { return c.keyID == k1 && c.failed })},
		{[]string{"--key", k1, "--since", boundary.Format(time.RFC3339)}, selectIDs(func(c call) bool { return c.keyID == k1 && c.late })},
	} {
		var got []string
		for _, ev := range auditJSON(t, dir, tc.args...) {
			got = append(got, ev.RequestID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("events %v: got %d records %v, want %d %v", tc.args, len(got), got, len(tc.want), tc.want)
		}
	}

	// A bad time is refused.
	if code, _, stderr := runToExit(t, baseEnv(), "audit", "events", "--data-dir", dir, "--since", "yesterday"); code == 0 || !strings.Contains(stderr, "--since") {
		t.Errorf("--since yesterday: exit %d, stderr %q", code, stderr)
	}

	// The table: a header and one row per record.
	code, stdout, stderr := runToExit(t, baseEnv(), "audit", "events", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("events (table): exit %d\n%s", code, stderr)
	}
	rows := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if hdr := strings.Fields(rows[0]); !slices.Equal(hdr, []string{"SEQ", "TIME", "EVENT", "PRINCIPAL", "KEY", "SOURCE", "IP", "ERROR"}) {
		t.Errorf("table header %q", rows[0])
	}
	if len(rows) != 1+len(calls) {
		t.Fatalf("table has %d rows, want %d:\n%s", len(rows)-1, len(calls), stdout)
	}
	for i, row := range rows[1:] {
		f := strings.Fields(row)
		ev := all[i]
		if len(f) < 5 || f[0] != fmt.Sprint(i+1) || f[1] != ev.EventTime || f[2] != ev.EventName {
			t.Errorf("table row %d %q does not show record %d %s %s", i+1, row, i+1, ev.EventTime, ev.EventName)
			continue
		}
		if ev.UserIdentity.ARN != "" && f[3] != ev.UserIdentity.ARN {
			t.Errorf("table row %d %q: principal %q, want %s", i+1, row, f[3], ev.UserIdentity.ARN)
		}
		if ev.ErrorCode != "" && f[len(f)-1] != ev.ErrorCode {
			t.Errorf("table row %d %q: last column %q, want the error %s", i+1, row, f[len(f)-1], ev.ErrorCode)
		}
		if calls[i].keyID != "" && !strings.Contains(row, calls[i].keyID) {
			t.Errorf("table row %d %q does not show the key %s", i+1, row, calls[i].keyID)
		}
		if !strings.Contains(row, "127.0.0.1") {
			t.Errorf("table row %d %q does not show the source IP", i+1, row)
		}
	}
	if !strings.Contains(stdout, "AKIAZZZZZZZZZZZZZZZZ") {
		t.Errorf("the table does not name the unknown access key of the failed call:\n%s", stdout)
	}
	// Filters apply to the table too.
	if code, stdout, _ := runToExit(t, baseEnv(), "audit", "events", "--data-dir", dir, "--errors"); code != 0 || strings.Count(stdout, "\n") != 1+len(selectIDs(func(c call) bool { return c.failed })) {
		t.Errorf("events --errors (table): exit %d\n%s", code, stdout)
	}
}

// TestAuditSurvivesSIGKILLUnderLoad: every call the server acknowledged is
// in the trail after a SIGKILL in the middle of a load, and the restarted
// server continues the chain. It holds in the relaxed mode too, whose
// records are written to the kernel before the answer.
func TestAuditSurvivesSIGKILLUnderLoad(t *testing.T) {
	t.Parallel()
	t.Run("always", func(t *testing.T) { t.Parallel(); auditSurvivesSIGKILL(t, 0) })
	t.Run("interval", func(t *testing.T) {
		t.Parallel()
		auditSurvivesSIGKILL(t, 0, "--audit-sync=interval", "--audit-sync-interval=1s")
	})
	// Tiny segments: the kill may land in a roll.
	t.Run("segments", func(t *testing.T) { t.Parallel(); auditSurvivesSIGKILL(t, 0, "--audit-segment-bytes=4096") })
	// An active segment past the 8 MiB from which a start checks it in
	// pieces, one per core, the last one ending in the torn line.
	t.Run("large segment", func(t *testing.T) { t.Parallel(); auditSurvivesSIGKILL(t, 9<<20) })
}

// prefillTrail writes records into the trail of the data directory dir
// until its active segment holds at least n bytes, as a server would have.
func prefillTrail(t *testing.T, dir string, n int64) {
	t.Helper()
	noErr(t, os.MkdirAll(dir, 0o700), "make the data directory")
	l, err := audit.OpenDir(dir, 0)
	noErr(t, err, "open the trail")
	l.SyncEvery(time.Hour) // Close syncs it
	for i := 0; ; i++ {
		if i%1000 == 0 {
			segs, err := audit.Segments(dir)
			noErr(t, err, "segments")
			if fi, err := os.Stat(segs[len(segs)-1].Path); err == nil && fi.Size() >= n {
				break
			}
		}
		err := l.Append(&audit.Record{EventVersion: "1.11", EventTime: audit.FormatTime(time.Now()), EventSource: "kms.amazonaws.com",
			EventName: "Encrypt", UserIdentity: audit.UserIdentity{Type: "Root"}, RequestID: fmt.Sprintf("prefill-%d", i),
			EventID: fmt.Sprintf("prefill-%d", i), EventType: "AwsApiCall", EventCategory: "Management"})
		noErr(t, err, "append")
	}
	noErr(t, l.Close(), "close the trail")
}

// auditSurvivesSIGKILL runs the load on a server started with extra, its
// trail first filled to prefill bytes (0: none).
func auditSurvivesSIGKILL(t *testing.T, prefill int64, extra ...string) {
	dir := filepath.Join(t.TempDir(), "data")
	ctx := testCtx(t)
	if prefill > 0 {
		// A server makes the key store first: one refuses to start a new
		// store beside a trail.
		stopServer(t, startServer(t, dir, baseEnv(), append([]string{"--dev"}, extra...)...))
		prefillTrail(t, dir, prefill)
	}
	s := startServer(t, dir, baseEnv(), append([]string{"--dev"}, extra...)...)
	c := s.client(t)
	ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	keyID := ck.KeyMetadata.KeyId

	const workers, each, killAfter = 8, 300, 400
	var (
		mu     sync.Mutex
		acked  []string
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	reached := make(chan struct{})
	var once sync.Once
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				out, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: keyID, Plaintext: []byte("under load")})
				if err != nil {
					failed.Add(1)
					return // the server is gone
				}
				id := okRequestID(out.ResultMetadata)
				mu.Lock()
				acked = append(acked, id)
				n := len(acked)
				mu.Unlock()
				if id == "" {
					t.Error("a successful call without a request id")
				}
				if n >= killAfter {
					once.Do(func() { close(reached) })
				}
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-reached:
	case <-allDone:
	case <-time.After(20 * time.Second):
		t.Fatal("the load did not reach the kill point")
	}
	s.kill()
	wg.Wait()
	mu.Lock()
	n := len(acked)
	mu.Unlock()
	t.Logf("%d calls acknowledged before SIGKILL, %d workers saw the server go", n, failed.Load())
	if failed.Load() == 0 {
		t.Logf("every call finished before the kill: the crash did not land mid-load")
	}

	// A write torn by the crash leaves a partial last line; make sure there
	// is one, as a record never acknowledged would be: right after the
	// records, over the zeros the server writes ahead of them.
	segs, err := audit.Segments(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments: %v %v", segs, err)
	}
	if slices.Contains(extra, "--audit-segment-bytes=4096") && len(segs) < 10 {
		t.Errorf("%d segments of 4 KiB for %d calls, want many", len(segs), n)
	}
	f, err := os.OpenFile(segs[len(segs)-1].Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	end, err := audit.SegmentDataLength(f)
	noErr(t, err, "find the end of the records")
	if fi, err := f.Stat(); err != nil || fi.Size() == end && !slices.Contains(extra, "--audit-segment-bytes=4096") {
		t.Errorf("the killed server's segment holds no zeros after its %d bytes of records (%v)", end, err)
	}
	if _, err := f.WriteAt([]byte(`{"hash":"0123456789abcdef","event":{"eventVersion":"1.11","userIdent`), end); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s = startServer(t, dir, baseEnv(), append([]string{"--dev"}, extra...)...)
	after, err := s.client(t).Encrypt(ctx, &kms.EncryptInput{KeyId: keyID, Plaintext: []byte("after the crash")})
	noErr(t, err, "Encrypt after the restart")
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("SIGTERM: exit %d", code)
	}

	if code, out := auditVerify(t, dir); code != 0 || !strings.HasPrefix(out, "OK") {
		t.Errorf("verify after SIGKILL and restart: exit %d\n%s", code, out)
	}
	events := auditJSON(t, dir)
	logged := map[string]int{}
	for i, ev := range events {
		if ev.Sequence != uint64(i+1) {
			t.Errorf("record %d has sequence %d", i+1, ev.Sequence)
		}
		logged[ev.RequestID]++
	}
	missing := 0
	for _, id := range acked {
		if logged[id] != 1 {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged request %s appears %d times in the trail", id, logged[id])
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged requests are not in the trail once", missing, n)
	}
	if last := events[len(events)-1]; last.RequestID != okRequestID(after.ResultMetadata) {
		t.Errorf("the last record is %s %s, want the call after the restart", last.EventName, last.RequestID)
	}
	if len(events) < n+2 {
		t.Errorf("%d records for %d acknowledged calls + CreateKey + one after restart", len(events), n)
	}
}

// TestAuditEventsFollow: `kms audit events --follow` prints a record
// written after it started, in JSON and in the table.
func TestAuditEventsFollow(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := testCtx(t)
	s := startDev(t, dir)
	c := s.client(t)
	ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	first := okRequestID(ck.ResultMetadata)

	type follower struct {
		name  string
		lines chan string
		done  chan struct{} // closed when the process has exited
	}
	fctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := func(name string, args ...string) *follower {
		cmd := exec.CommandContext(fctx, kmsBin, append([]string{"audit", "events", "--data-dir", dir, "--follow"}, args...)...)
		cmd.Env = baseEnv()
		cmd.WaitDelay = 2 * time.Second
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		f := &follower{name: name, lines: make(chan string, 100), done: make(chan struct{})}
		go func() {
			defer r.Close()
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				f.lines <- sc.Text()
			}
			close(f.lines)
		}()
		go func() {
			cmd.Wait()
			close(f.done)
		}()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-f.done
			if t.Failed() {
				t.Logf("%s follower stderr:\n%s", name, stderr.String())
			}
		})
		return f
	}
	waitFor := func(f *follower, what string, match func(string) bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case ln, ok := <-f.lines:
				if !ok {
					t.Fatalf("%s follower exited before printing %s", f.name, what)
				}
				if match(ln) {
					return
				}
			case <-deadline:
				t.Fatalf("%s follower printed no %s within 10s", f.name, what)
			}
		}
	}
	jf := start("json", "--json")
	tf := start("table")
	waitFor(jf, "the existing record", func(ln string) bool { return strings.Contains(ln, first) })
	waitFor(tf, "the existing record", func(ln string) bool { return strings.HasPrefix(ln, "1 ") && strings.Contains(ln, "CreateKey") })

	out, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte("followed")})
	noErr(t, err, "Encrypt")
	id := okRequestID(out.ResultMetadata)
	waitFor(jf, "the new record "+id, func(ln string) bool {
		var ev auditEvent
		return json.Unmarshal([]byte(ln), &ev) == nil && ev.RequestID == id && ev.EventName == "Encrypt" && ev.Sequence == 2
	})
	waitFor(tf, "the new record's row", func(ln string) bool { return strings.HasPrefix(ln, "2 ") && strings.Contains(ln, "Encrypt") })

	// A follower ends when its context does.
	cancel()
	select {
	case <-jf.done:
	case <-time.After(5 * time.Second):
		t.Error("the follower did not end with its context")
	}
}

// auditCluster is a PostgreSQL database holding the audit chains of two
// nodes, written through the audit package as two servers would.
type auditCluster struct {
	dsn   string
	pool  *pgxpool.Pool
	nodes []*audit.Log
	pub   ed25519.PublicKey
}

func newAuditCluster(t *testing.T) *auditCluster {
	t.Helper()
	ctx := testCtx(t)
	dsn := pgtest.Start(t)
	st, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	c := &auditCluster{dsn: dsn, pool: st.Pool(), pub: pub}
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for n := range 2 {
		l, err := audit.OpenPostgres(ctx, c.pool, fmt.Sprint("node", n))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		d, err := audit.OpenPostgresDigester(ctx, c.pool, l.Chain(), priv)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			// Node 0 at even seconds, node 1 at odd ones: merged in time
			// order, the records alternate between the chains.
			c.append(t, l, fmt.Sprintf("n%d-r%d", n, i+1), start.Add(time.Duration(2*i+n)*time.Second))
			if i == 3 {
				noErr(t, d.Write(l, time.Now()), "digest")
			}
		}
		c.nodes = append(c.nodes, l)
	}
	return c
}

func (c *auditCluster) append(t *testing.T, l *audit.Log, requestID string, at time.Time) {
	t.Helper()
	r := &audit.Record{EventVersion: "1.11", EventName: "Encrypt", EventTime: audit.FormatTime(at), EventSource: "kms.amazonaws.com",
		EventType: "AwsApiCall", RequestID: requestID, UserIdentity: audit.UserIdentity{Type: "Root", ARN: "arn:aws:iam::111122223333:root"},
		RequestParameters: json.RawMessage(`{"keyId":"k"}`), ResponseElements: json.RawMessage("null")}
	noErr(t, l.Append(r), "append")
}

func (c *auditCluster) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := c.pool.Exec(testCtx(t), sql, args...)
	noErr(t, err, "%s", sql)
}

// requestIDs returns the requestID of each JSON line.
func requestIDs(t *testing.T, out string) []string {
	t.Helper()
	var ids []string
	for ln := range strings.Lines(out) {
		var ev auditEvent
		if err := json.Unmarshal([]byte(ln), &ev); err != nil {
			t.Fatalf("not a JSON event: %q", ln)
		}
		ids = append(ids, ev.RequestID)
	}
	return ids
}

// TestAuditStorageVerify: `kms audit verify --storage` (or KMS_STORAGE)
// checks every node's chain and names the chain and record of a break.
func TestAuditStorageVerify(t *testing.T) {
	t.Parallel()
	c := newAuditCluster(t)
	chain := c.nodes[1].Chain()
	verify := func(env []string, args ...string) (int, string) {
		t.Helper()
		code, stdout, stderr := runToExit(t, env, append([]string{"audit", "verify"}, args...)...)
		return code, stdout + stderr
	}
	if code, out := verify(baseEnv(), "--storage", c.dsn); code != 0 || !strings.Contains(out, "OK: 2 chains, 10 records") || !strings.Contains(out, "2 signed digests verify") {
		t.Fatalf("verify --storage of an intact trail: exit %d\n%s", code, out)
	}
	if code, out := verify(baseEnv("KMS_STORAGE=" + c.dsn)); code != 0 || !strings.Contains(out, "OK: 2 chains") {
		t.Fatalf("verify with KMS_STORAGE: exit %d\n%s", code, out)
	}
	// An explicit --data-dir wins over KMS_STORAGE; both flags together are refused.
	if code, out := verify(baseEnv("KMS_STORAGE="+c.dsn), "--data-dir", t.TempDir()); code == 0 || !strings.Contains(out, "audit.log") {
		t.Errorf("--data-dir with KMS_STORAGE set: exit %d\n%s", code, out)
	}
	if code, out := verify(baseEnv(), "--data-dir", t.TempDir(), "--storage", c.dsn); code == 0 || !strings.Contains(out, "storage") {
		t.Errorf("--data-dir and --storage: exit %d\n%s", code, out)
	}
	// A pinned key: the right one verifies, another does not.
	keyFile := filepath.Join(t.TempDir(), "audit.pub")
	pemKey, _ := audit.MarshalPublicKey(c.pub)
	noErr(t, os.WriteFile(keyFile, pemKey, 0o600), "write key")
	if code, out := verify(baseEnv(), "--storage", c.dsn, "--public-key", keyFile); code != 0 {
		t.Errorf("the right --public-key: exit %d\n%s", code, out)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	pemKey, _ = audit.MarshalPublicKey(other)
	noErr(t, os.WriteFile(keyFile, pemKey, 0o600), "write key")
	if code, out := verify(baseEnv(), "--storage", c.dsn, "--public-key", keyFile); code != 1 || !strings.Contains(out, "signature") {
		t.Errorf("another --public-key: exit %d\n%s", code, out)
	}

	rows, _ := c.pool.Query(testCtx(t), `SELECT line FROM kms_audit_records WHERE chain = $1 ORDER BY seq`, chain)
	orig, err := pgx.CollectRows(rows, pgx.RowTo[string])
	noErr(t, err, "read the chain")
	for _, tc := range []struct {
		name string
		sql  string
		want string // in the output
	}{
		{"an edited line", `UPDATE kms_audit_records SET line = replace(line, '"Encrypt"', '"Encrypu"') WHERE chain = $1 AND seq = 2`,
			"chain " + chain + ": BROKEN at record 2: hash does not match"},
		{"a deleted row", `DELETE FROM kms_audit_records WHERE chain = $1 AND seq = 3`,
			"chain " + chain + ": BROKEN at record 3: record 3 is missing"},
		{"two rows' lines swapped", `UPDATE kms_audit_records r SET line = o.line FROM kms_audit_records o
			WHERE r.chain = $1 AND o.chain = $1 AND ((r.seq = 1 AND o.seq = 2) OR (r.seq = 2 AND o.seq = 1))`,
			"chain " + chain + ": BROKEN at record 1: sequence 2 where 1 was expected"},
		{"the newest rows deleted after a digest", `DELETE FROM kms_audit_records WHERE chain = $1 AND seq >= 4`,
			"chain " + chain + ": BROKEN at the digest of record 4: a digest names record 4, but the chain ends at record 3 (records were cut off)"},
	} {
		c.exec(t, tc.sql, chain)
		code, out := verify(baseEnv(), "--storage", c.dsn)
		if code != 1 || !strings.Contains(out, tc.want) || !strings.Contains(out, "chain "+c.nodes[0].Chain()+": OK") ||
			!strings.Contains(out, "BROKEN: 1 of 2 chains do not verify") {
			t.Errorf("%s: exit %d, want 1 and %q\n%s", tc.name, code, tc.want, out)
		}
		c.exec(t, `DELETE FROM kms_audit_records WHERE chain = $1`, chain)
		c.exec(t, `INSERT INTO kms_audit_records (chain, seq, line)
			SELECT $1, t.i, t.line FROM unnest($2::text[]) WITH ORDINALITY AS t(line, i)`, chain, orig)
	}
	if code, out := verify(baseEnv(), "--storage", c.dsn); code != 0 {
		t.Errorf("after putting the rows back: exit %d\n%s", code, out)
	}
}

// TestAuditStorageEvents: `kms audit events --storage` merges the chains
// in time order, filters, appends to --output, and --follow prints a
// record written after it started.
func TestAuditStorageEvents(t *testing.T) {
	t.Parallel()
	c := newAuditCluster(t)
	var all []string
	for i := range 5 {
		all = append(all, fmt.Sprintf("n0-r%d", i+1), fmt.Sprintf("n1-r%d", i+1))
	}
	code, stdout, stderr := runToExit(t, baseEnv(), "audit", "events", "--storage", c.dsn, "--json")
	if got := requestIDs(t, stdout); code != 0 || !slices.Equal(got, all) {
		t.Fatalf("events --storage --json: exit %d, %v, want %v\n%s", code, got, all, stderr)
	}
	code, stdout, stderr = runToExit(t, baseEnv("KMS_STORAGE="+c.dsn), "audit", "events", "--json",
		"--since", "2026-03-01T10:00:03Z", "--until", "2026-03-01T10:00:06Z")
	if got := requestIDs(t, stdout); code != 0 || !slices.Equal(got, all[3:6]) {
		t.Errorf("events with KMS_STORAGE, --since and --until: exit %d, %v, want %v\n%s", code, got, all[3:6], stderr)
	}

	// --output appends, run after run.
	file := filepath.Join(t.TempDir(), "trail.jsonl")
	for range 2 {
		code, stdout, stderr := runToExit(t, baseEnv(), "audit", "events", "--storage", c.dsn, "--output", file, "--since", "2026-03-01T10:00:08Z")
		if code != 0 || stdout != "" {
			t.Fatalf("events --output: exit %d, stdout %q\n%s", code, stdout, stderr)
		}
	}
	b, err := os.ReadFile(file)
	noErr(t, err, "read --output")
	if got, want := requestIDs(t, string(b)), append(slices.Clone(all[8:]), all[8:]...); !slices.Equal(got, want) {
		t.Errorf("--output file holds %v, want %v", got, want)
	}

	// --follow, in JSON and as a table with the chain column.
	jf := startProc(t, baseEnv(), "audit", "events", "--storage", c.dsn, "--follow", "--json")
	tf := startProc(t, baseEnv(), "audit", "events", "--storage", c.dsn, "--follow")
	jf.waitOutput(regexp.MustCompile(`"requestID":"n1-r5"`), 10*time.Second)
	tf.waitOutput(regexp.MustCompile(`(?m)^CHAIN\s+SEQ\s+TIME`), 10*time.Second)
	c.append(t, c.nodes[0], "late", time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	jf.waitOutput(regexp.MustCompile(`"requestID":"late"`), 10*time.Second)
	tf.waitOutput(regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(c.nodes[0].Chain())+`\s+6\s+2026-03-01T09:00:00Z\s+Encrypt`), 10*time.Second)
}

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	noErr(t, err, "read %s", src)
	noErr(t, os.WriteFile(dst, b, 0o600), "write %s", dst)
}

// digestLines reads dir's audit-digests.log as lines.
func digestLines(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "audit-digests.log"))
	noErr(t, err, "read audit-digests.log")
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// Cutting off the recent end of the trail must not pass: the newest
// records with the newest digests, the digests altogether, or the key
// that checks them. A running server signs its head every few seconds;
// the newest digest is kept as a high-water mark in the key store and in
// audit-head.json, and --expect-at-least anchors the count outside.
func TestAuditVerifyDetectsCutEnd(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := testCtx(t)

	// A running server writes a digest within seconds of a call, and its
	// key store is locked: verify --live says the mark there was not
	// checked; without --live, that it could not be, and fails.
	s := startDev(t, dir)
	_, err := s.client(t).ListKeys(ctx, &kms.ListKeysInput{})
	noErr(t, err, "ListKeys")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if b, _ := os.ReadFile(filepath.Join(dir, "audit-digests.log")); len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no digest 15 s after a call on a running server")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, out := auditVerifyLive(t, dir); code != 0 || !strings.Contains(out, "note: the high-water mark in kms.db was not checked") {
		t.Errorf("verify --live of a running server's trail: exit %d, want 0 and a note that kms.db was not checked\n%s", code, out)
	}
	if code, out := auditVerify(t, dir); code != 1 || !strings.Contains(out, "BROKEN: the high-water mark in kms.db could not be checked: kms.db is locked") {
		t.Errorf("verify of a running server's trail without --live: exit %d, want 1 and that kms.db could not be checked\n%s", code, out)
	}
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	// More runs, each with calls and a digest at shutdown.
	for range 4 {
		s := startDev(t, dir)
		c := s.client(t)
		for range 3 {
			_, err := c.ListKeys(ctx, &kms.ListKeysInput{})
			noErr(t, err, "ListKeys")
		}
		if code := s.stop(syscall.SIGTERM); code != 0 {
			t.Fatalf("server exit %d", code)
		}
	}
	lines, digests := auditLines(t, dir), digestLines(t, dir)
	if len(digests) < 5 || len(lines) < 13 {
		t.Fatalf("%d records and %d digests, want at least 13 and 5", len(lines), len(digests))
	}
	n := len(lines)
	if code, out := auditVerify(t, dir); code != 0 || strings.Contains(out, "note:") {
		t.Fatalf("verify of the intact trail: exit %d\n%s", code, out)
	}
	pub := filepath.Join(t.TempDir(), "audit.pub")
	copyFile(t, filepath.Join(dir, "audit.pub"), pub)

	// cut is a copy of the trail with its first keep records and the
	// digests that name them, and, if withStore, the key store.
	cut := func(keep int, withStore bool, drop ...string) string {
		d := tamperedCopy(t, dir, lines[:keep])
		var kept []string
		for _, ln := range digests {
			var dg struct{ Sequence int }
			noErr(t, json.Unmarshal([]byte(ln), &dg), "digest")
			if dg.Sequence <= keep {
				kept = append(kept, ln)
			}
		}
		noErr(t, os.WriteFile(filepath.Join(d, "audit-digests.log"), []byte(strings.Join(kept, "\n")+"\n"), 0o600), "write digests")
		if len(kept) == 0 {
			os.WriteFile(filepath.Join(d, "audit-digests.log"), nil, 0o600)
		}
		if withStore {
			copyFile(t, filepath.Join(dir, "kms.db"), filepath.Join(d, "kms.db"))
		}
		for _, name := range drop {
			noErr(t, os.Remove(filepath.Join(d, name)), "remove %s", name)
		}
		return d
	}
	var seq3 struct{ Sequence int }
	noErr(t, json.Unmarshal([]byte(digests[len(digests)-4]), &seq3), "digest")
	for _, tc := range []struct {
		name string
		dir  string
		args []string
		want string
	}{
		{"the last three digests and the records after the new last one", cut(seq3.Sequence, true), nil, "high-water mark in kms.db names record"},
		{"the same, without the key store", cut(seq3.Sequence, false), nil, "high-water mark in audit-head.json names record"},
		{"the same, without audit-head.json", cut(seq3.Sequence, true, "audit-head.json"), nil, "high-water mark in kms.db names record"},
		{"audit-digests.log deleted and the log cut to 10 records", cut(10, false, "audit-digests.log", "audit-head.json"), []string{"--public-key", pub}, "no signed digest covers the log"},
		{"audit.pub deleted", cut(n, true, "audit.pub"), nil, "audit.pub is missing"},
		{"the last three digests, their records and every mark, anchored outside", cut(seq3.Sequence, false, "audit-head.json"), []string{"--expect-at-least", fmt.Sprint(n)}, fmt.Sprintf("fewer than the %d expected", n)},
	} {
		code, stdout, stderr := runToExit(t, baseEnv(), append([]string{"audit", "verify", "--data-dir", tc.dir}, tc.args...)...)
		if code != 1 || !strings.Contains(stdout, tc.want) {
			t.Errorf("%s: exit %d, want 1 and %q\n%s%s", tc.name, code, tc.want, stdout, stderr)
		}
	}
	code, stdout, stderr := runToExit(t, baseEnv(), "audit", "verify", "--data-dir", dir, "--expect-at-least", fmt.Sprint(n))
	if code != 0 {
		t.Errorf("--expect-at-least the records the trail holds: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestServerRefusesCutTrail starts the server on data directories whose
// trail was cut, or whose key store was lost, while it was stopped. Each
// start must be refused with the reason, and leave the evidence as it
// was: a server that went on would sign a new digest over the cut and
// overwrite the high-water mark, and verify would then find the trail
// intact.
func TestServerRefusesCutTrail(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := testCtx(t)
	for range 3 {
		s := startDev(t, dir)
		for range 3 {
			_, err := s.client(t).ListKeys(ctx, &kms.ListKeysInput{})
			noErr(t, err, "ListKeys")
		}
		if code := s.stop(syscall.SIGTERM); code != 0 {
			t.Fatalf("server exit %d", code)
		}
	}
	lines, digests := auditLines(t, dir), digestLines(t, dir)
	if len(digests) < 3 {
		t.Fatalf("%d digests, want at least 3", len(digests))
	}
	var second struct{ Sequence int }
	noErr(t, json.Unmarshal([]byte(digests[1]), &second), "digest")

	// copyDir is dir with its audit.log and audit-digests.log replaced, if
	// given, and the named files removed.
	copyDir := func(log, dgs []string, remove ...string) string {
		d := filepath.Join(t.TempDir(), "data")
		noErr(t, os.Mkdir(d, 0o700), "mkdir")
		entries, err := os.ReadDir(dir)
		noErr(t, err, "read dir")
		for _, e := range entries {
			if e.Type().IsRegular() {
				copyFile(t, filepath.Join(dir, e.Name()), filepath.Join(d, e.Name()))
			}
		}
		if log != nil {
			noErr(t, os.WriteFile(filepath.Join(d, "audit.log"), []byte(strings.Join(log, "\n")+"\n"), 0o600), "write log")
		}
		if dgs != nil {
			noErr(t, os.WriteFile(filepath.Join(d, "audit-digests.log"), []byte(strings.Join(dgs, "\n")+"\n"), 0o600), "write digests")
		}
		for _, name := range remove {
			noErr(t, os.Remove(filepath.Join(d, name)), "remove %s", name)
		}
		return d
	}
	noNewline := copyDir(nil, nil)
	whole, err := os.ReadFile(filepath.Join(noNewline, "audit.log"))
	noErr(t, err, "read log")
	noErr(t, os.WriteFile(filepath.Join(noNewline, "audit.log"), whole[:len(whole)-1], 0o600), "write log")
	emptyStore := copyDir(nil, nil)
	noErr(t, os.WriteFile(filepath.Join(emptyStore, "kms.db"), nil, 0o600), "empty kms.db")
	otherPub := copyDir(nil, nil)
	other := filepath.Join(t.TempDir(), "other")
	s := startDev(t, other)
	s.stop(syscall.SIGTERM)
	copyFile(t, filepath.Join(other, "audit.pub"), filepath.Join(otherPub, "audit.pub"))

	for _, tc := range []struct {
		name, dir, want string
	}{
		{"records and digests after the second digest cut, audit-head.json removed",
			copyDir(lines[:second.Sequence], digests[:2], "audit-head.json"), "high-water mark in the key store names record"},
		{"the same, records only",
			copyDir(lines[:second.Sequence], nil), "high-water mark in the key store names record"},
		{"the last record replaced by another",
			copyDir(append(slices.Clone(lines[:len(lines)-1]), lines[len(lines)-2]), nil), "audit trail"},
		{"the newest digests removed", copyDir(nil, digests[:1]), "newest digest in audit-digests.log names record"},
		{"the last newline removed", noNewline, "high-water mark in the key store names record"},
		{"kms.db deleted", copyDir(nil, nil, "kms.db"), "new, empty key store"},
		{"kms.db emptied", emptyStore, "new, empty key store"},
		{"audit.pub of another server", otherPub, "holds another signing key"},
	} {
		before := snapshotDir(t, tc.dir)
		code, stdout, stderr := runToExit(t, baseEnv(), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", tc.dir)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: server exit %d, want a refusal saying %q\n%s%s", tc.name, code, tc.want, stdout, stderr)
		}
		if after := snapshotDir(t, tc.dir); !maps.Equal(before, after) {
			t.Errorf("%s: the refused start changed the data directory", tc.name)
		}
	}
	// The intact trail still starts.
	s = startDev(t, copyDir(nil, nil))
	s.stop(syscall.SIGTERM)
}

// snapshotDir returns the content of each file in dir but kms.db, which
// bbolt rewrites on open, by name.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	noErr(t, err, "read dir")
	files := map[string]string{}
	for _, e := range entries {
		if e.Name() == "kms.db" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		noErr(t, err, "read %s", e.Name())
		files[e.Name()] = string(b)
	}
	return files
}
