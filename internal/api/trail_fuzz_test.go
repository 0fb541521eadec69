package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store/boltstore"
)

// The operations that read the audit trail over the API, fuzzed through
// the real handler against a real trail: a data directory's, several
// segments of records of two accounts and of calls no account made, and
// an empty last one (a crash just after a roll), with digests and their
// public key.

const (
	trailAuditor = "111122223333" // the auditor account (WithAuditorAccounts)
	trailOther   = "444455556666"
	trailPrefix  = "OpenKMSAudit_20261127."
	// trailNoOp is an operation under the trail's prefix that the server
	// does not have.
	trailNoOp = "GetAuditRecord"
)

// trailOpNames are the operations the fuzzer picks from: the trail's, and
// one it does not have.
var trailOpNames = []string{"ListAuditChains", "GetAuditRecords", "GetAuditDigests", "GetAuditPublicKey", trailNoOp}

// FuzzTrailHandler sends arbitrary bodies to the audit trail's read
// operations, signed by principals of two accounts: each answer is a
// well-formed success that holds exactly the page the documented paging
// gives (docs/audit.md, "Reading the trail over the API"), records of the
// caller's own account only unless it is an auditor of all accounts, or
// an AWS-shaped error of a type the call may meet, with its status. No
// answer is a panic or a 5xx, and no call changes the trail's files.
func FuzzTrailHandler(f *testing.F) {
	fx := newTrailFixture(f)
	bodies := []string{
		`{}`,
		``,
		`{"Chain":"","AfterSequence":0,"Limit":1000}`,
		`{"AfterSequence":3,"Limit":2}`,
		`{"AfterSequence":` + fmt.Sprint(len(fx.records)-1) + `,"Limit":1}`,
		`{"AfterSequence":` + fmt.Sprint(len(fx.records)) + `}`,
		`{"AfterSequence":9223372036854775807,"Limit":1}`,
		`{"AfterSequence":-1}`,
		`{"Limit":1001}`,
		`{"Limit":-1}`,
		`{"Limit":"1"}`,
		`{"Chain":"kms-a-3f9a1c2b4d5e6f70"}`,
		`{"chain":"","afterSequence":1,"limit":1}`,
		`{"Chain":"\ud800"}`,
		`{"Other":1}`,
		`[]`,
		`{"Limit":1e3}`,
	}
	for op := range trailOpNames {
		for who := range fx.callers {
			for _, b := range bodies {
				f.Add(uint8(op), uint8(who), []byte(b))
			}
		}
	}
	f.Fuzz(func(t *testing.T, op, who uint8, body []byte) {
		name := trailOpNames[int(op)%len(trailOpNames)]
		c := fx.callers[int(who)%len(fx.callers)]
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Header.Set("X-Amz-Target", trailPrefix+name)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		signRequest(t, req, c.creds, "kms", body)
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, req)
		if err := fx.recorder.failure(); err != nil {
			t.Fatalf("%s by %s %q: the call's record: %v", name, c.name, body, err)
		}
		if fx.trailDigest(t) != fx.files {
			t.Fatalf("%s by %s %q: the trail's files changed", name, c.name, body)
		}
		if rec.Header().Get("x-amzn-RequestId") == "" {
			t.Fatalf("%s by %s %q: no request id", name, c.name, body)
		}
		if rec.Code != http.StatusOK {
			fx.checkError(t, name, c, body, rec)
			return
		}
		if c.sees == "" || name == trailNoOp {
			t.Fatalf("%s by %s %q: 200 %s", name, c.name, body, rec.Body)
		}
		fx.checkAnswer(t, name, c, body, rec.Body.Bytes())
	})
}

// trailCaller is a principal the fuzzer signs with, and whose records it
// may read: "*" for every record, an account for that account's, "" for
// none (it is refused).
type trailCaller struct {
	name  string
	creds aws.Credentials
	sees  string
}

// trailFixture is the handler that serves a trail, which no call changes,
// and what the trail holds.
type trailFixture struct {
	h        *api.Handler
	recorder *snapshotRecorder
	dir      string
	callers  []trailCaller
	records  []string   // the record lines, position i+1 at i
	owners   [][]string // the accounts of each record
	digests  []string   // the digest lines
	pub      string     // audit.pub
	files    [32]byte   // trailDigest of the trail as written
}

// newTrailFixture writes a trail by serving calls of two accounts (their
// roots, IAM users and a role session, and callers who are no one) with
// small segments, the last one empty, and a digest now and then, then
// returns a handler that serves it and records its own calls elsewhere.
func newTrailFixture(f *testing.F) *trailFixture {
	ctx := context.Background()
	st, err := boltstore.Open(filepath.Join(f.TempDir(), "kms.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	k := make([]byte, 32)
	rand.Read(k)
	root, _ := keys.NewRootKey(k)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	fx := &trailFixture{dir: f.TempDir()}

	trail, err := audit.OpenDir(fx.dir, 16<<10)
	if err != nil {
		f.Fatal(err)
	}
	recorder := audit.NewLogRecorder(trail)
	pubKey, signKey, _ := ed25519.GenerateKey(rand.Reader)
	pem, err := audit.MarshalPublicKey(pubKey)
	if err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fx.dir, "audit.pub"), pem, 0o600); err != nil {
		f.Fatal(err)
	}
	digester, err := audit.OpenDigester(filepath.Join(fx.dir, "audit-digests.log"), signKey)
	if err != nil {
		f.Fatal(err)
	}
	svc, err := service.New(service.Config{Store: st, RootKey: root, Region: "us-east-1", Logger: log, Trail: recorder})
	if err != nil {
		f.Fatal(err)
	}
	dir := identity.New(identity.Config{Store: st, RootKey: root, Region: "us-east-1", Logger: log})
	writer := api.NewHandler(svc, dir, log).WithAudit(recorder, "us-east-1").
		WithTrailReader(audit.NewFileTrail(fx.dir)).WithAuditorAccounts(trailAuditor)
	w := &trailWriter{tb: f, h: writer}

	rootOf := func(account string) aws.Credentials {
		ak, err := identity.BootstrapRoot(ctx, st, root, account)
		if err != nil {
			f.Fatal(err)
		}
		return aws.Credentials{AccessKeyID: ak.ID, SecretAccessKey: ak.Secret}
	}
	aRoot, bRoot := rootOf(trailAuditor), rootOf(trailOther)
	const (
		lookup  = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudtrail:LookupEvents","Resource":"*"}]}`
		readAll = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cloudtrail:LookupEvents","openkms:ReadAllAccountsAuditTrail"],"Resource":"*"}]}`
		useKMS  = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:*","sts:AssumeRole"],"Resource":"*"}]}`
	)
	nobody := w.user(bRoot, "nobody", useKMS)
	fx.callers = []trailCaller{
		{"the auditor account's root", aRoot, "*"},
		{"a reader of the auditor account", w.user(aRoot, "reader", lookup), trailAuditor},
		{"an auditor of all accounts", w.user(aRoot, "auditor", readAll), "*"},
		{"the other account's root", bRoot, trailOther},
		{"a reader of the other account allowed all accounts", w.user(bRoot, "reader", readAll), trailOther},
		{"a user of the other account not allowed to read", nobody, ""},
		{"a role session of the other account", w.session(bRoot, nobody, lookup), trailOther},
	}
	for _, creds := range []aws.Credentials{aRoot, bRoot, aRoot, bRoot} {
		var key struct {
			KeyMetadata struct {
				KeyID string `json:"KeyId"`
			}
		}
		w.kms(creds, "CreateKey", `{"Description":"trail fuzzing"}`, &key)
		for range 4 {
			w.kms(creds, "Encrypt", `{"KeyId":"`+key.KeyMetadata.KeyID+`","Plaintext":"aGVsbG8="}`, nil)
		}
		w.kms(creds, "DescribeKey", `{"KeyId":"alias/none"}`, nil)
		w.send(w.signed(creds, "kms", "TrentService.ListKeys", []byte(`{}`)))
		w.send(w.signed(aws.Credentials{AccessKeyID: "AKIAFUZZNOONE0000000", SecretAccessKey: "x"}, "kms", "TrentService.ListKeys", []byte(`{}`)))
		unsigned := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
		unsigned.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		unsigned.Header.Set("Content-Type", "application/x-amz-json-1.1")
		w.send(unsigned)
		w.send(w.signed(creds, "kms", trailPrefix+"GetAuditRecords", []byte(`{"Limit":2}`)))
		if err := digester.Write(trail, time.Now()); err != nil {
			f.Fatal(err)
		}
	}
	if err := trail.Close(); err != nil {
		f.Fatal(err)
	}
	if err := digester.Close(); err != nil {
		f.Fatal(err)
	}
	// The trail ends in an empty segment, as a server killed just after
	// a roll leaves it: nothing follows a page that ends with the
	// segment before.
	segs, err := audit.Segments(fx.dir)
	if err != nil || len(segs) == 0 {
		f.Fatalf("the trail's segments: %d, %v", len(segs), err)
	}
	if err := os.WriteFile(filepath.Join(fx.dir, audit.SegmentName(segs[len(segs)-1].N+1)), nil, 0o600); err != nil {
		f.Fatal(err)
	}
	fx.load(f)
	fx.files = fx.trailDigest(f)

	// The calls of the fuzzing are recorded, but not into the trail they
	// read: each record is encoded and checked, then dropped.
	fx.recorder = &snapshotRecorder{}
	fx.h = api.NewHandler(svc, dir, log).WithAudit(fx.recorder, "us-east-1").
		WithTrailReader(audit.NewFileTrail(fx.dir)).WithAuditorAccounts(trailAuditor)
	return fx
}

// load reads what the trail holds, as the files store it, and checks that
// it is what the fuzzing needs: several segments, two digests, records of
// both accounts and of callers who are no one.
func (fx *trailFixture) load(tb testing.TB) {
	segs, err := audit.Segments(fx.dir)
	if err != nil {
		tb.Fatal(err)
	}
	if len(segs) < 3 {
		tb.Fatalf("the trail has %d segments, want several", len(segs))
	}
	for _, seg := range segs {
		fx.records = append(fx.records, fileLines(tb, seg.Path)...)
	}
	seen := map[string]int{}
	for _, line := range fx.records {
		rec, _, err := audit.ParseLine([]byte(line))
		if err != nil {
			tb.Fatal(err)
		}
		var owners []string
		accounts := []string{rec.UserIdentity.AccountID, rec.RecipientAccountID}
		if rec.ErrorCode != "AccessDeniedException" { // the key owner's too
			for _, r := range rec.Resources {
				accounts = append(accounts, r.AccountID)
			}
		}
		if rec.EventSource == "sts.amazonaws.com" && rec.EventName == "AssumeRole" && rec.ErrorCode == "" { // the role's account's too
			var params struct{ RoleArn string }
			json.Unmarshal(rec.RequestParameters, &params)
			if f := strings.Split(params.RoleArn, ":"); len(f) > 4 {
				accounts = append(accounts, f[4])
			}
		}
		for _, a := range accounts {
			if a != "" && !slices.Contains(owners, a) {
				owners = append(owners, a)
			}
		}
		fx.owners = append(fx.owners, owners)
		seen[strings.Join(owners, ",")]++
	}
	if seen[trailAuditor] == 0 || seen[trailOther] == 0 || seen[""] == 0 {
		tb.Fatalf("records by owner: %v; want some of each account and some of no account", seen)
	}
	fx.digests = fileLines(tb, filepath.Join(fx.dir, "audit-digests.log"))
	if len(fx.digests) < 2 {
		tb.Fatalf("%d digests, want several", len(fx.digests))
	}
	pub, err := os.ReadFile(filepath.Join(fx.dir, "audit.pub"))
	if err != nil {
		tb.Fatal(err)
	}
	fx.pub = string(pub)
}

// fileLines returns the lines of a trail file, as SegmentData reads it
// (a segment's space written ahead as zeros is not its content).
func fileLines(tb testing.TB, path string) []string {
	file, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer file.Close()
	b, err := io.ReadAll(audit.SegmentData(file))
	if err != nil {
		tb.Fatal(err)
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		tb.Fatalf("%s ends in a partial line", path)
	}
	return strings.Split(string(b[:len(b)-1]), "\n")
}

// trailDigest hashes the names and contents of the files of the trail's
// directory.
func (fx *trailFixture) trailDigest(tb testing.TB) [32]byte {
	entries, err := os.ReadDir(fx.dir)
	if err != nil {
		tb.Fatal(err)
	}
	h := sha256.New()
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(fx.dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(h, "%q %d\n", e.Name(), len(b))
		h.Write(b)
	}
	return [32]byte(h.Sum(nil))
}

// checkError checks a refusal: an AWS JSON error whose type the call may
// meet, with its status and a message.
func (fx *trailFixture) checkError(t *testing.T, name string, c trailCaller, body []byte, rec *httptest.ResponseRecorder) {
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Message == "" {
		t.Fatalf("%s by %s %q: status %d with body %q", name, c.name, body, rec.Code, rec.Body)
	}
	want := map[string]int{"SerializationException": 400, "ValidationException": 400, "RequestEntityTooLargeException": 413}
	switch {
	case name == trailNoOp:
		want = map[string]int{"UnknownOperationException": 400}
	case c.sees == "":
		want = map[string]int{"AccessDeniedException": 400}
	}
	if status, ok := want[e.Type]; !ok || status != rec.Code {
		t.Fatalf("%s by %s %q: status %d with %s: %s", name, c.name, body, rec.Code, e.Type, e.Message)
	}
}

// pageAnswer is the answer of GetAuditRecords and GetAuditDigests.
type pageAnswer struct {
	Records, Digests []struct {
		Sequence int64
		Line     string
	}
	Truncated    bool
	LastSequence int64
}

// checkAnswer checks a success against what the trail holds, reading the
// request as the handler did (it accepted it).
func (fx *trailFixture) checkAnswer(t *testing.T, name string, c trailCaller, body, answer []byte) {
	var in struct {
		Chain         string
		AfterSequence int64
		Limit         int
	}
	var read any = &in // what the operation reads of its body
	switch name {
	case "ListAuditChains":
		read = &struct{}{}
	case "GetAuditPublicKey":
		read = &struct{ Chain *string }{&in.Chain}
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, read); err != nil {
			t.Fatalf("%s by %s %q: accepted a body that does not decode: %v", name, c.name, body, err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(answer))
	dec.DisallowUnknownFields()
	switch name {
	case "ListAuditChains":
		var out struct{ Chains []string }
		if err := dec.Decode(&out); err != nil || !slices.Equal(out.Chains, []string{""}) {
			t.Fatalf("%s by %s %q: %s (%v)", name, c.name, body, answer, err)
		}
	case "GetAuditPublicKey":
		var out struct{ PublicKey *string }
		want := &fx.pub
		if in.Chain != "" {
			want = nil
		}
		if err := dec.Decode(&out); err != nil || (out.PublicKey == nil) != (want == nil) || want != nil && *out.PublicKey != *want {
			t.Fatalf("%s by %s %q: %s (%v)", name, c.name, body, answer, err)
		}
	case "GetAuditRecords", "GetAuditDigests":
		var out pageAnswer
		if err := dec.Decode(&out); err != nil {
			t.Fatalf("%s by %s %q: %s (%v)", name, c.name, body, answer, err)
		}
		lines, visible, got := fx.records, func(i int) bool { return c.sees == "*" || slices.Contains(fx.owners[i], c.sees) }, out.Records
		if name == "GetAuditDigests" {
			lines, visible, got = fx.digests, func(int) bool { return true }, out.Digests
		}
		if in.Chain != "" {
			lines = nil
		}
		for _, l := range got {
			if i := l.Sequence - 1; name == "GetAuditRecords" && i >= 0 && i < int64(len(fx.owners)) && !visible(int(i)) {
				t.Fatalf("%s by %s %q: record %d, of accounts %v, handed out", name, c.name, body, l.Sequence, fx.owners[i])
			}
		}
		want := expectedPage(lines, visible, in.AfterSequence, in.Limit)
		if want.Truncated != out.Truncated || want.LastSequence != out.LastSequence || len(want.Records) != len(got) {
			t.Fatalf("%s by %s %q: got %d lines, truncated %v, last %d; want %d, %v, %d",
				name, c.name, body, len(got), out.Truncated, out.LastSequence, len(want.Records), want.Truncated, want.LastSequence)
		}
		for i := range got {
			if got[i] != want.Records[i] {
				t.Fatalf("%s by %s %q: line %d is %d %q, want %d %q", name, c.name, body, i, got[i].Sequence, got[i].Line, want.Records[i].Sequence, want.Records[i].Line)
			}
		}
	}
}

// expectedPage is the page of the lines after position after that the
// documented paging gives a reader who sees the lines visible reports, for
// a trail too small for the bounds of a call's reading: the first limit
// (0: 1000) of them, whether any line follows the last one read, and its
// position (after, if none was read).
func expectedPage(lines []string, visible func(int) bool, after int64, limit int) pageAnswer {
	if limit == 0 {
		limit = 1000
	}
	out := pageAnswer{LastSequence: after, Records: nil}
	for i := max(after, 0); i < int64(len(lines)); i++ {
		out.LastSequence = i + 1
		if !visible(int(i)) {
			continue
		}
		out.Records = append(out.Records, struct {
			Sequence int64
			Line     string
		}{i + 1, lines[i]})
		if len(out.Records) == limit {
			out.Truncated = i+1 < int64(len(lines))
			break
		}
	}
	return out
}

// snapshotRecorder encodes the record of each call and keeps the first
// that is not valid JSON, writing nothing down.
type snapshotRecorder struct {
	mu  sync.Mutex
	err error
}

func (r *snapshotRecorder) Err() error { return nil }

func (r *snapshotRecorder) Record(_ context.Context, e *audit.Event) error {
	b, err := e.Snapshot()
	if err == nil && !json.Valid(b) {
		err = fmt.Errorf("not valid JSON: %q", b)
	}
	if err == nil && e.Source != "cloudtrail.amazonaws.com" {
		err = fmt.Errorf("recorded as a call of %q", e.Source)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
	return nil
}

// failure returns the first record found wrong, and forgets it.
func (r *snapshotRecorder) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.err
	r.err = nil
	return err
}

// trailWriter makes the calls that write the trail being fuzzed.
type trailWriter struct {
	tb testing.TB
	h  http.Handler
}

// signRequest signs req as an AWS SDK would, for service in us-east-1.
func signRequest(tb testing.TB, req *http.Request, creds aws.Credentials, service string, body []byte) {
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, "us-east-1", time.Now()); err != nil {
		tb.Fatal(err)
	}
}

// signed is a request to the KMS endpoint with the target given (empty: a
// form of the IAM or STS query protocol), signed with creds.
func (w *trailWriter) signed(creds aws.Credentials, service, target string, body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	} else {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	}
	signRequest(w.tb, req, creds, service, body)
	return req
}

// send serves req and returns the status and body of the answer.
func (w *trailWriter) send(req *http.Request) (int, []byte) {
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		w.tb.Fatalf("%s: %d %s", req.Header.Get("X-Amz-Target"), rec.Code, rec.Body)
	}
	return rec.Code, rec.Body.Bytes()
}

// kms makes a KMS call and decodes its answer into out (if not nil); a
// refusal is a call of the trail's too.
func (w *trailWriter) kms(creds aws.Credentials, op, body string, out any) {
	code, b := w.send(w.signed(creds, "kms", "TrentService."+op, []byte(body)))
	if out == nil {
		return
	}
	if code != http.StatusOK || json.Unmarshal(b, out) != nil {
		w.tb.Fatalf("%s: %d %s", op, code, b)
	}
}

// query makes an IAM or STS call, which must succeed, and decodes its XML
// answer into out.
func (w *trailWriter) query(creds aws.Credentials, service string, form url.Values, out any) {
	code, b := w.send(w.signed(creds, service, "", []byte(form.Encode())))
	if code != http.StatusOK || xml.Unmarshal(b, out) != nil {
		w.tb.Fatalf("%s %s: %d %s", service, form.Get("Action"), code, b)
	}
}

// user makes an IAM user of the account of creds with the one policy
// given, and returns an access key of it.
func (w *trailWriter) user(creds aws.Credentials, name, policy string) aws.Credentials {
	var none struct{}
	w.query(creds, "iam", url.Values{"Action": {"CreateUser"}, "Version": {"2010-05-08"}, "UserName": {name}}, &none)
	w.query(creds, "iam", url.Values{"Action": {"PutUserPolicy"}, "Version": {"2010-05-08"}, "UserName": {name},
		"PolicyName": {"p"}, "PolicyDocument": {policy}}, &none)
	var out struct {
		Key struct {
			ID     string `xml:"AccessKeyId"`
			Secret string `xml:"SecretAccessKey"`
		} `xml:"CreateAccessKeyResult>AccessKey"`
	}
	w.query(creds, "iam", url.Values{"Action": {"CreateAccessKey"}, "Version": {"2010-05-08"}, "UserName": {name}}, &out)
	return aws.Credentials{AccessKeyID: out.Key.ID, SecretAccessKey: out.Key.Secret}
}

// session makes a role of the other account with the one policy given,
// which its user nobody may assume, and returns the credentials of a
// session of it that nobody assumed, for the longest a session lasts (12
// hours: a fuzzing run longer than that meets ExpiredTokenException).
func (w *trailWriter) session(creds, nobody aws.Credentials, policy string) aws.Credentials {
	var none struct{}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + trailOther + `:user/nobody"},"Action":"sts:AssumeRole"}]}`
	w.query(creds, "iam", url.Values{"Action": {"CreateRole"}, "Version": {"2010-05-08"}, "RoleName": {"trail"},
		"AssumeRolePolicyDocument": {trust}, "MaxSessionDuration": {"43200"}}, &none)
	w.query(creds, "iam", url.Values{"Action": {"PutRolePolicy"}, "Version": {"2010-05-08"}, "RoleName": {"trail"},
		"PolicyName": {"p"}, "PolicyDocument": {policy}}, &none)
	var out struct {
		Creds struct {
			ID     string `xml:"AccessKeyId"`
			Secret string `xml:"SecretAccessKey"`
			Token  string `xml:"SessionToken"`
		} `xml:"AssumeRoleResult>Credentials"`
	}
	w.query(nobody, "sts", url.Values{"Action": {"AssumeRole"}, "Version": {"2011-06-15"},
		"RoleArn": {"arn:aws:iam::" + trailOther + ":role/trail"}, "RoleSessionName": {"fuzz"}, "DurationSeconds": {"43200"}}, &out)
	return aws.Credentials{AccessKeyID: out.Creds.ID, SecretAccessKey: out.Creds.Secret, SessionToken: out.Creds.Token}
}
