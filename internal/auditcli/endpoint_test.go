package auditcli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openkms/kms/internal/audit"
)

// fakeTrail serves the audit operations from chains held in memory, in
// pages of two lines, and checks that each request is signed for kms.
type fakeTrail struct {
	t       *testing.T
	mu      sync.Mutex
	records map[string][]audit.Row
	digests map[string][]audit.Row
	keys    map[string]string
	deny    bool
	calls   []string
	// throttle is how many calls are answered ThrottlingException before
	// the others are served.
	throttle int
}

func (f *fakeTrail) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "OpenKMSAudit_20261127.")
	auth := r.Header.Get("Authorization")
	if !ok || !strings.Contains(auth, "/us-west-2/kms/aws4_request") || !strings.Contains(auth, "Credential=AKIDFAKE/") {
		f.t.Errorf("request %q signed %q", r.Header.Get("X-Amz-Target"), auth)
	}
	f.calls = append(f.calls, op)
	if f.throttle > 0 {
		f.throttle--
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"ThrottlingException","message":"You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."}`)
		return
	}
	if f.deny {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"AccessDeniedException","message":"User: arn:aws:iam::111122223333:user/u is not authorized to perform: cloudtrail:LookupEvents"}`)
		return
	}
	var in struct {
		Chain         string
		AfterSequence int64
	}
	json.NewDecoder(r.Body).Decode(&in)
	page := func(rows []audit.Row) (out []trailLine, more bool) {
		for _, row := range rows {
			if row.Seq <= in.AfterSequence {
				continue
			}
			if len(out) == 2 {
				return out, true
			}
			out = append(out, trailLine{row.Seq, string(row.Line)})
		}
		return out, false
	}
	var out any
	switch op {
	case "ListAuditChains":
		var chains []string
		for c := range f.records {
			chains = append(chains, c)
		}
		slices.Sort(chains)
		out = map[string]any{"Chains": chains}
	case "GetAuditRecords":
		lines, more := page(f.records[in.Chain])
		out = map[string]any{"Records": lines, "Truncated": more}
	case "GetAuditDigests":
		lines, more := page(f.digests[in.Chain])
		out = map[string]any{"Digests": lines, "Truncated": more}
	case "GetAuditPublicKey":
		out = map[string]any{"PublicKey": f.keys[in.Chain]}
	}
	json.NewEncoder(w).Encode(out)
}

// chainOf writes n records at the given times through a log file, with a
// digest after the third, and returns them as rows of a database chain.
func chainOf(t *testing.T, key ed25519.PrivateKey, times ...string) (records, digests []audit.Row) {
	t.Helper()
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := audit.OpenDigester(filepath.Join(dir, "digests"), key)
	if err != nil {
		t.Fatal(err)
	}
	for i, tm := range times {
		if err := l.Append(event("Encrypt", tm, alice, key1, "")); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			d.Write(l, time.Now())
		}
	}
	l.Close()
	d.Close()
	for _, f := range []string{"audit.log", "digests"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for ln := range bytes.Lines(b) {
			row := audit.Row{Seq: int64(len(records) + 1), Line: bytes.TrimSuffix(ln, []byte("\n"))}
			if f == "digests" {
				var dg audit.Digest
				json.Unmarshal(row.Line, &dg)
				row.Seq = int64(dg.Sequence)
				digests = append(digests, row)
				continue
			}
			records = append(records, row)
		}
	}
	return records, digests
}

// event is a record with what the filters look at.
func event(name, tm, principal, key, errorCode string) *audit.Record {
	r := &audit.Record{EventVersion: "1.11", EventName: name, EventTime: tm, EventSource: "kms.amazonaws.com",
		EventType: "AwsApiCall", ErrorCode: errorCode, RequestID: name + "@" + tm,
		UserIdentity:      audit.UserIdentity{Type: "IAMUser", ARN: principal},
		RequestParameters: json.RawMessage(`{}`), ResponseElements: json.RawMessage("null")}
	if key != "" {
		r.Resources = []audit.Resource{{Type: "AWS::KMS::Key", ARN: key}}
	}
	return r
}

const (
	alice = "arn:aws:iam::111122223333:user/alice"
	key1  = "arn:aws:kms:us-east-1:111122223333:key/k1"
)

// startFake serves f and points the AWS configuration at static
// credentials.
func startFake(t *testing.T, f *fakeTrail) string {
	f.t = t
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "us-west-2")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestEndpointDatabaseTrail(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	a, da := chainOf(t, priv, "2026-03-01T10:00:00Z", "2026-03-01T10:00:02Z", "2026-03-01T10:00:04Z", "2026-03-01T10:00:06Z", "2026-03-01T10:00:08Z")
	b, db := chainOf(t, priv, "2026-03-01T10:00:01Z", "2026-03-01T10:00:03Z", "2026-03-01T10:00:05Z")
	pemKey, _ := audit.MarshalPublicKey(pub)
	f := &fakeTrail{
		records: map[string][]audit.Row{"node-a": a, "node-b": b},
		digests: map[string][]audit.Row{"node-a": da, "node-b": db},
		keys:    map[string]string{"node-a": string(pemKey), "node-b": string(pemKey)},
	}
	o := Options{Endpoint: startFake(t, f)}
	ctx := context.Background()

	var out bytes.Buffer
	if err := Verify(ctx, o, &out); err != nil {
		t.Fatalf("Verify: %v\n%s", err, &out)
	}
	if want := "chain node-a: OK: 5 records, hash chain intact; 1 signed digests verify.\n" +
		"chain node-b: OK: 3 records, hash chain intact; 1 signed digests verify.\n" +
		"OK: 2 chains, 8 records, hash chains intact; 2 signed digests verify.\n"; out.String() != want {
		t.Errorf("Verify:\n%s\nwant\n%s", &out, want)
	}

	// The records merged across the chains in time order, in pages.
	src, err := openSource(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	collect := func(r record) error { got = append(got, r.chain+"@"+r.rec.EventTime[17:19]); return nil }
	if err := src.next(ctx, nil, collect); err != nil {
		t.Fatal(err)
	}
	want := []string{"node-a@00", "node-b@01", "node-a@02", "node-b@03", "node-a@04", "node-b@05", "node-a@06", "node-a@08"}
	if !slices.Equal(got, want) || !src.chains() {
		t.Errorf("next: %v, want %v", got, want)
	}
	// Then only what was written since, a new chain's too.
	c, _ := chainOf(t, priv, "2026-03-01T09:00:00Z")
	f.mu.Lock()
	f.records["node-b"] = append(f.records["node-b"], a[4]) // a line, whatever it holds, at position 4
	f.records["node-b"][3].Seq = 4
	f.records["node-c"] = c
	f.mu.Unlock()
	got = nil
	if err := src.next(ctx, nil, collect); err != nil {
		t.Fatal(err)
	}
	if want := []string{"node-c@00", "node-b@08"}; !slices.Equal(got, want) {
		t.Errorf("the second next: %v, want %v", got, want)
	}

	// A removed row is reported in VerifyPostgres's words.
	f.mu.Lock()
	f.records["node-b"] = slices.Delete(f.records["node-b"], 1, 2)
	f.mu.Unlock()
	out.Reset()
	if err := Verify(ctx, o, &out); err != ErrBroken || !strings.Contains(out.String(), "chain node-b: BROKEN at record 2: record 2 is missing (a row was removed); 1 records before it verify.\n") {
		t.Errorf("Verify of a chain with a row removed: %v\n%s", err, &out)
	}
}

func TestEndpointErrors(t *testing.T) {
	f := &fakeTrail{deny: true}
	o := Options{Endpoint: startFake(t, f)}
	err := Verify(context.Background(), o, new(bytes.Buffer))
	if want := "ListAuditChains: AccessDeniedException: User: arn:aws:iam::111122223333:user/u is not authorized to perform: cloudtrail:LookupEvents"; err == nil || err.Error() != want {
		t.Errorf("Verify when refused: %v, want %q", err, want)
	}
	for _, bad := range []string{"localhost:8080", "ftp://host/", "http://"} {
		if _, err := openSource(context.Background(), Options{Endpoint: bad}); err == nil || !strings.Contains(err.Error(), "--endpoint") {
			t.Errorf("--endpoint %q: %v", bad, err)
		}
	}
	if _, err := openSource(context.Background(), Options{Endpoint: "http://h", DataDir: "d"}); err == nil {
		t.Error("--endpoint with --data-dir: no error")
	}
}

// A call the server throttles is made again after a wait; one throttled
// past the retries fails with the server's words.
func TestEndpointThrottled(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	a, da := chainOf(t, priv, "2026-03-01T10:00:00Z", "2026-03-01T10:00:02Z", "2026-03-01T10:00:04Z")
	pemKey, _ := audit.MarshalPublicKey(pub)
	f := &fakeTrail{
		records: map[string][]audit.Row{"node-a": a}, digests: map[string][]audit.Row{"node-a": da},
		keys: map[string]string{"node-a": string(pemKey)}, throttle: maxThrottled,
	}
	o := Options{Endpoint: startFake(t, f), throttleWait: time.Millisecond}
	var out bytes.Buffer
	if err := Verify(context.Background(), o, &out); err != nil {
		t.Fatalf("Verify: %v\n%s", err, &out)
	}
	if !strings.HasPrefix(out.String(), "chain node-a: OK: 3 records") || len(f.calls) < maxThrottled+1 {
		t.Errorf("Verify after %d throttled calls (%d in all): %s", maxThrottled, len(f.calls), &out)
	}

	f.mu.Lock()
	f.throttle = maxThrottled + 1
	f.mu.Unlock()
	err := Verify(context.Background(), o, new(bytes.Buffer))
	if want := "ListAuditChains: ThrottlingException: You have exceeded the rate"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Verify throttled past the retries: %v, want %q...", err, want)
	}
}

// What a trail holds reaches the report of verify escaped, never as a
// control of the terminal: a chain's name, and a record's eventTime that
// a break's reason quotes, can be written by whoever edits the database
// or answers for the server, and would otherwise overwrite the lines
// that report the break.
func TestVerifyReportEscapesTheTrail(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	a, da := chainOf(t, priv, "2026-03-01T10:00:00Z", "2026-03-01T10:00:02Z", "2026-03-01T10:00:04Z")
	b, _ := chainOf(t, priv, "2020-01-01T00:00:00Z\x1b[1A\x1b[2K\rchain node-b: OK", "2026-03-01T10:00:03Z")
	pemKey, _ := audit.MarshalPublicKey(pub)
	const sly = "node-a\x1b[2K\r\u202e"
	f := &fakeTrail{
		records: map[string][]audit.Row{sly: a, "node-b": b},
		digests: map[string][]audit.Row{sly: da},
		keys:    map[string]string{sly: string(pemKey), "node-b": string(pemKey)},
	}
	var out bytes.Buffer
	err := Verify(context.Background(), Options{Endpoint: startFake(t, f)}, &out)
	if err != ErrBroken {
		t.Fatalf("Verify: %v, want ErrBroken\n%s", err, &out)
	}
	for _, r := range out.String() {
		if r != '\n' && !strconv.IsPrint(r) {
			t.Fatalf("the report holds %U:\n%q", r, &out)
		}
	}
	if !strings.Contains(out.String(), `chain "node-a\x1b[2K\r\u202e": OK`) || !strings.Contains(out.String(), `\x1b[1A`) {
		t.Errorf("the report does not show what the trail holds, escaped:\n%s", &out)
	}
}

// Reading a database's trail through a server, the records are held to be
// merged across chains in time order: only those the filters keep, so
// that --since and the other filters bound the memory of a read of a
// large trail, not only what is printed.
func TestEndpointHoldsOnlyKeptRecords(t *testing.T) {
	const perChain, size = 1000, 12 << 10
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	params, _ := json.Marshal(map[string]string{"description": strings.Repeat("x", size)})
	for i := range perChain {
		r := event("Encrypt", fmt.Sprintf("2026-03-01T10:%02d:%02dZ", i/60%60, i%60), alice, key1, "")
		r.RequestParameters = params
		if err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	b, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []audit.Row
	for ln := range bytes.Lines(b) {
		rows = append(rows, audit.Row{Seq: int64(len(rows) + 1), Line: bytes.TrimSuffix(ln, []byte("\n"))})
	}
	f := &fakeTrail{records: map[string][]audit.Row{"node-a": rows, "node-b": rows}}
	src, err := openSource(context.Background(), Options{Endpoint: startFake(t, f)})
	if err != nil {
		t.Fatal(err)
	}
	b, rows = nil, nil
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap() // the server's rows among it
	var held uint64
	n := 0
	keep := func(r *audit.Record) bool { return r.EventTime == "2026-03-01T10:00:07Z" }
	err = src.next(context.Background(), keep, func(r record) error {
		if n == 0 {
			h := heap()
			held = h - min(h, before)
		}
		n++
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("next: %d records, %v; want the 2 kept", n, err)
	}
	// Both chains' records are 2 x 1000 x 12 KiB = 23 MiB, as read.
	if held > 16<<20 {
		t.Errorf("the heap grew by %d MiB when the kept records are handed out, want under 16", held>>20)
	}
}
