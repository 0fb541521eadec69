package auditcli_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/auditcli"
	"github.com/openkms/kms/internal/store/pgstore"
	"github.com/openkms/kms/internal/store/pgtest"
)

const (
	alice = "arn:aws:iam::111122223333:user/alice"
	bob   = "arn:aws:iam::111122223333:user/bob"
	key1  = "arn:aws:kms:us-east-1:111122223333:key/k1"
	key2  = "arn:aws:kms:us-east-1:111122223333:key/k2"
)

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

func appendTo(t *testing.T, l *audit.Log, recs ...*audit.Record) {
	t.Helper()
	for _, r := range recs {
		if err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
}

// cluster is a database with two nodes' chains.
type cluster struct {
	dsn  string
	pool *pgxpool.Pool
	a, b *audit.Log
	pub  ed25519.PublicKey
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.Start(t)
	st, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &cluster{dsn: dsn, pool: st.Pool()}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	c.pub = pub
	for _, l := range []**audit.Log{&c.a, &c.b} {
		if *l, err = audit.OpenPostgres(ctx, c.pool, "node"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { (*l).Close() })
	}
	appendTo(t, c.a,
		event("CreateKey", "2026-03-01T10:00:00Z", alice, key1, ""),
		event("Encrypt", "2026-03-01T10:00:03Z", alice, key1, ""),
		event("Decrypt", "2026-03-01T10:00:05Z", bob, key1, "AccessDeniedException"))
	appendTo(t, c.b,
		event("CreateKey", "2026-03-01T10:00:01Z", bob, key2, ""),
		event("Encrypt", "2026-03-01T10:00:04Z", bob, key2, ""),
		event("DescribeKey", "2026-03-01T10:00:02Z", alice, key2, ""))
	for _, l := range []*audit.Log{c.a, c.b} {
		d, err := audit.OpenPostgresDigester(ctx, c.pool, l.Chain(), priv)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Write(l, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// ids runs events with o and returns the request ids of the JSON lines.
func ids(t *testing.T, o auditcli.Options) []string {
	t.Helper()
	o.JSON = true
	var out bytes.Buffer
	if err := auditcli.Events(context.Background(), o, &out); err != nil {
		t.Fatal(err)
	}
	var got []string
	for ln := range strings.Lines(out.String()) {
		var r audit.Record
		if err := json.Unmarshal([]byte(ln), &r); err != nil {
			t.Fatalf("%v: %q", err, ln)
		}
		got = append(got, r.RequestID)
	}
	return got
}

func TestPostgresEventsMergeChainsAndFilter(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	o := auditcli.Options{Storage: c.dsn}
	all := []string{"CreateKey@2026-03-01T10:00:00Z", "CreateKey@2026-03-01T10:00:01Z", "DescribeKey@2026-03-01T10:00:02Z",
		"Encrypt@2026-03-01T10:00:03Z", "Encrypt@2026-03-01T10:00:04Z", "Decrypt@2026-03-01T10:00:05Z"}
	for _, tc := range []struct {
		set  func(*auditcli.Options)
		want []string
	}{
		{func(*auditcli.Options) {}, all},
		{func(o *auditcli.Options) { o.Event = "Encrypt" }, []string{all[3], all[4]}},
		{func(o *auditcli.Options) { o.Principal = alice }, []string{all[0], all[2], all[3]}},
		{func(o *auditcli.Options) { o.Key = "k2" }, []string{all[1], all[2], all[4]}},
		{func(o *auditcli.Options) { o.Key = key1 }, []string{all[0], all[3], all[5]}},
		{func(o *auditcli.Options) { o.ErrorsOnly = true }, []string{all[5]}},
		{func(o *auditcli.Options) { o.Since = "2026-03-01T10:00:02Z" }, all[2:]},
		{func(o *auditcli.Options) { o.Until = "2026-03-01T10:00:02Z" }, all[:2]},
		{func(o *auditcli.Options) {
			o.Since, o.Until, o.Principal = "2026-03-01T10:00:01Z", "2026-03-01T10:00:05Z", bob
		}, []string{all[1], all[4]}},
	} {
		opts := o
		tc.set(&opts)
		if got := ids(t, opts); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: got %v, want %v", opts, got, tc.want)
		}
	}

	// The table names each record's chain.
	var out bytes.Buffer
	if err := auditcli.Events(context.Background(), o, &out); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if hdr := strings.Fields(rows[0]); !slices.Equal(hdr, []string{"CHAIN", "SEQ", "TIME", "EVENT", "PRINCIPAL", "KEY", "SOURCE", "IP", "ERROR"}) {
		t.Errorf("header %q", rows[0])
	}
	if len(rows) != 7 || !strings.HasPrefix(rows[1], c.a.Chain()+" ") || !strings.HasPrefix(rows[2], c.b.Chain()+" ") ||
		!strings.Contains(rows[6], "AccessDeniedException") {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestPostgresVerify(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	verify := func(o auditcli.Options) (string, error) {
		var out bytes.Buffer
		err := auditcli.Verify(ctx, o, &out)
		return out.String(), err
	}
	out, err := verify(auditcli.Options{Storage: c.dsn})
	if err != nil || !strings.Contains(out, "OK: 2 chains, 6 records") || !strings.Contains(out, "2 signed digests verify") {
		t.Fatalf("intact trail: %v\n%s", err, out)
	}
	// The key pinned with --public-key, the right one and another.
	keyFile := filepath.Join(t.TempDir(), "audit.pub")
	pem, _ := audit.MarshalPublicKey(c.pub)
	os.WriteFile(keyFile, pem, 0o600)
	if out, err := verify(auditcli.Options{Storage: c.dsn, PublicKey: keyFile}); err != nil {
		t.Fatalf("pinned key: %v\n%s", err, out)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	pem, _ = audit.MarshalPublicKey(other)
	os.WriteFile(keyFile, pem, 0o600)
	if out, err := verify(auditcli.Options{Storage: c.dsn, PublicKey: keyFile}); !errors.Is(err, auditcli.ErrBroken) || strings.Count(out, "signature") != 2 {
		t.Fatalf("another pinned key: %v\n%s", err, out)
	}

	if _, err := c.pool.Exec(ctx, `UPDATE kms_audit_records SET line = replace(line, 'bob', 'eve') WHERE chain = $1 AND seq = 2`, c.b.Chain()); err != nil {
		t.Fatal(err)
	}
	out, err = verify(auditcli.Options{Storage: c.dsn})
	if !errors.Is(err, auditcli.ErrBroken) || !strings.Contains(out, "chain "+c.b.Chain()+": BROKEN at record 2:") ||
		!strings.Contains(out, "chain "+c.a.Chain()+": OK") || !strings.Contains(out, "BROKEN: 1 of 2 chains") {
		t.Fatalf("an edited record: %v\n%s", err, out)
	}
}

// syncBuffer is an output that the test can wait on.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
	return s.b.Write(p)
}

// waitFor waits until the output contains want.
func (s *syncBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		out, changed := s.b.String(), s.changed
		s.mu.Unlock()
		if strings.Contains(out, want) {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no %q within 10s; output:\n%s", want, out)
		}
	}
}

func TestPostgresFollow(t *testing.T) {
	c := newCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{changed: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- auditcli.Events(ctx, auditcli.Options{Storage: c.dsn, JSON: true, Follow: true, PollInterval: 10 * time.Millisecond}, out)
	}()
	out.waitFor(t, "Decrypt@2026-03-01T10:00:05Z")
	appendTo(t, c.b, event("Sign", "2026-03-01T09:00:00Z", bob, key2, ""))
	out.waitFor(t, "Sign@2026-03-01T09:00:00Z")
	// A node started after the follower.
	l, err := audit.OpenPostgres(context.Background(), c.pool, "late")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendTo(t, l, event("Verify", "2026-03-01T11:00:00Z", bob, key2, ""))
	out.waitFor(t, "Verify@2026-03-01T11:00:00Z")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("follow ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end with its context")
	}
	if n := strings.Count(out.b.String(), "\n"); n != 8 {
		t.Errorf("%d records printed, want 8:\n%s", n, out.b.String())
	}
}

// --output appends JSON lines to a file, from a data directory as from
// PostgreSQL.
func TestOutputAppends(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, l, event("CreateKey", "2026-03-01T10:00:00Z", alice, key1, ""), event("Encrypt", "2026-03-01T10:00:01Z", alice, key1, ""))
	l.Close()
	file := filepath.Join(t.TempDir(), "siem.jsonl")
	var stdout bytes.Buffer
	for range 2 {
		if err := auditcli.Events(context.Background(), auditcli.Options{DataDir: dir, Output: file, Event: "Encrypt"}, &stdout); err != nil {
			t.Fatal(err)
		}
	}
	c := newCluster(t)
	if err := auditcli.Events(context.Background(), auditcli.Options{Storage: c.dsn, Output: file, ErrorsOnly: true}, &stdout); err != nil {
		t.Fatal(err)
	}
	if stdout.Len() != 0 {
		t.Errorf("--output printed to stdout: %q", stdout.String())
	}
	b, _ := os.ReadFile(file)
	var got []string
	for ln := range strings.Lines(string(b)) {
		var r audit.Record
		if err := json.Unmarshal([]byte(ln), &r); err != nil {
			t.Fatalf("%v: %q", err, ln)
		}
		got = append(got, r.RequestID)
	}
	if want := []string{"Encrypt@2026-03-01T10:00:01Z", "Encrypt@2026-03-01T10:00:01Z", "Decrypt@2026-03-01T10:00:05Z"}; !slices.Equal(got, want) {
		t.Fatalf("%s holds %v, want %v", file, got, want)
	}
}

// A run of --output stopped part way through a record (a full disk)
// leaves part of its line: the next run cuts it off before it appends,
// so that every line of the file is a whole record.
func TestOutputCutsAPartialLine(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, l, event("CreateKey", "2026-03-01T10:00:00Z", alice, key1, ""), event("Encrypt", "2026-03-01T10:00:01Z", alice, key1, ""))
	l.Close()
	file := filepath.Join(t.TempDir(), "siem.jsonl")
	var stdout bytes.Buffer
	run := func() {
		t.Helper()
		if err := auditcli.Events(context.Background(), auditcli.Options{DataDir: dir, Output: file}, &stdout); err != nil {
			t.Fatal(err)
		}
	}
	run()
	whole, _ := os.ReadFile(file)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(whole[:len(whole)/3]) // what a write cut short left
	f.Close()
	run()
	b, _ := os.ReadFile(file)
	if !bytes.Equal(b, append(whole, whole...)) {
		t.Fatalf("%s after a run cut short and another:\n%s\nwant the records twice, whole:\n%s", file, b, whole)
	}
}

// An --output file that does not end in what the command writes (the
// wrong file given) is refused and left as it was, not cut.
func TestOutputRefusesAFileOfAnotherKind(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, l, event("CreateKey", "2026-03-01T10:00:00Z", alice, key1, ""))
	l.Close()
	for name, content := range map[string]string{
		"no newline":                    "PermitRootLogin no",
		"a last line that is no record": "# settings\nPermitRootLogin no",
		"one line longer than a record": "{" + strings.Repeat("x", 2<<20),
		"a text file, newline-ended":    "# settings\nPermitRootLogin no\n",
		"a blank last line":             "{\"eventVersion\":\"1.11\"}\n\n",
		"a JSON line cut, then ended":   "{\"eventVersion\":\"1.11\"}\n{\"event\n",
		"a long line, ended":            "{" + strings.Repeat("x", 2<<20) + "}\n",
	} {
		file := filepath.Join(t.TempDir(), "config")
		os.WriteFile(file, []byte(content), 0o600)
		err := auditcli.Events(context.Background(), auditcli.Options{DataDir: dir, Output: file}, new(bytes.Buffer))
		if err == nil || !strings.Contains(err.Error(), "give --output a file of its own") {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
		if b, _ := os.ReadFile(file); string(b) != content {
			t.Errorf("%s: the refused file was changed", name)
		}
	}
}

func TestSourceChoice(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	if err := auditcli.Verify(ctx, auditcli.Options{DataDir: t.TempDir(), Storage: "postgres://localhost/x"}, &out); err == nil {
		t.Error("--data-dir and --storage together were accepted")
	}
	if err := auditcli.Verify(ctx, auditcli.Options{}, &out); err == nil {
		t.Error("no source was accepted")
	}
	err := auditcli.Events(ctx, auditcli.Options{Storage: "postgres://kms:s3cret@127.0.0.1:1/kms?connect_timeout=5"}, &out)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("an unreachable database: %v", err)
	}
}

// The table escapes what a caller can write into a field: a control
// character, an escape sequence or a bidirectional override prints as an
// escape, quoted, so that a record prints as one row of its own columns
// and leaves the terminal as it was. JSON lines are the events as stored.
func TestEventsTableEscapesFields(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	forged := "Decrypt\x1b[31m\n9\t2026-03-01T10:00:09Z\tScheduleKeyDeletion\t" + alice
	bad := event(forged, "2026-03-01T10:00:01Z", "", key1, "AccessDeniedException")
	bad.UserIdentity = audit.UserIdentity{Type: "Unknown", AccessKeyID: "AKIA\u202eEDCBA\u2066\u200f\x7f\u0085"}
	bad.SourceIPAddress = "198.51.100.7\r\x1b]0;title\a"
	appendTo(t, l, event("CreateKey", "2026-03-01T10:00:00Z", alice, key1, ""), bad, event("Encrypt", "2026-03-01T10:00:02Z", bob, key1, ""))
	l.Close()

	var out bytes.Buffer
	if err := auditcli.Events(context.Background(), auditcli.Options{DataDir: dir}, &out); err != nil {
		t.Fatal(err)
	}
	table := out.String()
	if strings.ContainsAny(table, "\x1b\r\t\a\x7f\u0085\u202e\u2066\u200f") {
		t.Errorf("the table holds a control or bidirectional character:\n%q", table)
	}
	rows := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(rows) != 4 {
		t.Fatalf("%d rows, want a header and 3:\n%s", len(rows), table)
	}
	for _, want := range []string{
		strconv.Quote(forged),
		`(Unknown "AKIA\u202eEDCBA\u2066\u200f\x7f\u0085")`,
		`"198.51.100.7\r\x1b]0;title\a"`,
	} {
		if !strings.Contains(rows[2], want) {
			t.Errorf("row of the record %s lacks %s", rows[2], want)
		}
	}
	if got, want := strings.Fields(rows[1]), []string{"1", "2026-03-01T10:00:00Z", "CreateKey", alice, "k1"}; !slices.Equal(got, want) {
		t.Errorf("row 1: %q, want %q", got, want)
	}
	if got, want := strings.Fields(rows[3]), []string{"3", "2026-03-01T10:00:02Z", "Encrypt", bob, "k1"}; !slices.Equal(got, want) {
		t.Errorf("row 3: %q, want %q", got, want)
	}

	out.Reset()
	if err := auditcli.Events(context.Background(), auditcli.Options{DataDir: dir, JSON: true, Event: forged}, &out); err != nil {
		t.Fatal(err)
	}
	var got audit.Record
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.EventName != forged || got.SourceIPAddress != bad.SourceIPAddress ||
		!strings.Contains(out.String(), `\u001b[31m\n`) || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("--json: %v, %q", err, out.String())
	}
}

// A recovered record says so in the table: its change was made, its call
// not answered.
func TestEventsTableMarksRecoveredRecords(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	recovered := event("TagResource", "2026-03-01T10:00:01Z", alice, key1, "")
	recovered.AdditionalEventData = json.RawMessage(`{"recovered":true}`)
	appendTo(t, l, event("CreateKey", "2026-03-01T10:00:00Z", alice, key1, ""), recovered)
	l.Close()
	var out bytes.Buffer
	if err := auditcli.Events(context.Background(), auditcli.Options{DataDir: dir}, &out); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(rows) != 3 || strings.Contains(rows[1], "recovered") || !strings.Contains(rows[2], "TagResource (recovered)") {
		t.Fatalf("table:\n%s", out.String())
	}
}

// --key takes a key id or key ARN, as records name keys. An alias (its
// name or ARN) is refused with a message that says so, not taken as a key
// no record names: an empty list would read as "never used".
func TestEventsKeyFilterRefusesAnAlias(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, l, event("Encrypt", "2026-03-01T10:00:00Z", alice, key1, ""), event("Encrypt", "2026-03-01T10:00:01Z", bob, key2, ""))
	l.Close()
	for _, k := range []string{"k1", key1} {
		var out bytes.Buffer
		if err := auditcli.Events(context.Background(), auditcli.Options{DataDir: dir, Key: k, JSON: true}, &out); err != nil || strings.Count(out.String(), "\n") != 1 || !strings.Contains(out.String(), key1) {
			t.Errorf("--key %s: %v, %q", k, err, out.String())
		}
	}
	for _, k := range []string{"alias/orders", "arn:aws:kms:us-east-1:111122223333:alias/orders"} {
		var out bytes.Buffer
		err := auditcli.Events(context.Background(), auditcli.Options{DataDir: dir, Key: k}, &out)
		if err == nil || !strings.Contains(err.Error(), "alias") || !strings.Contains(err.Error(), "key id or key ARN") || out.Len() != 0 {
			t.Errorf("--key %s: %v, %q", k, err, out.String())
		}
	}
}
