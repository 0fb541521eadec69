package e2e_test

// End-to-end tests of the audit operations (trail.go): the real handler
// with an audit log, called with signed requests as `kms audit verify
// --endpoint` makes them.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/auditcli"
	"github.com/openkms/kms/internal/identity"
)

// newTrailEnv is newAuditedEnv serving its trail; it returns the data
// directory that holds audit.log.
// accountRoot makes account's root in e's store and returns its
// credentials.
func (e *kmsEnv) accountRoot(t *testing.T, account string) aws.Credentials {
	t.Helper()
	k, err := identity.BootstrapRoot(context.Background(), e.store, e.root, account)
	if err != nil {
		t.Fatal(err)
	}
	return aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}
}

func newTrailEnv(t *testing.T) (*kmsEnv, string) {
	t.Helper()
	e, logPath := newAuditedEnv(t)
	dir := filepath.Dir(logPath)
	e.guard.next.(*api.Handler).WithTrailReader(audit.NewFileTrail(dir))
	return e, dir
}

// trailCall posts body to the audit operation op, signed with the given
// credentials.
func (e *kmsEnv) trailCall(t testing.TB, creds aws.Credentials, op, body string) rawResponse {
	t.Helper()
	return e.trailCallIn(t, e2eRegion, creds, op, body)
}

// trailCallIn is trailCall signed for region.
func (e *kmsEnv) trailCallIn(t testing.TB, region string, creds aws.Credentials, op, body string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", "OpenKMSAudit_20261127."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kms", region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: b.Bytes()}
}

func (e *kmsEnv) rootCreds() aws.Credentials {
	return aws.Credentials{AccessKeyID: e.creds.ID, SecretAccessKey: e.creds.Secret}
}

// trailPage is the answer of GetAuditRecords and GetAuditDigests.
type trailPage struct {
	Records, Digests []struct {
		Sequence int64
		Line     string
	}
	Truncated bool
}

func decodeOK[T any](t testing.TB, r rawResponse) T {
	t.Helper()
	var out T
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("answer %q: %v", r.body, err)
	}
	return out
}

func fileLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// The root reads the chain page by page: every line once, in order, as
// the file holds it; the chains, digests and key as stored.
func TestTrailReadByRoot(t *testing.T) {
	t.Parallel()
	e, dir := newTrailEnv(t)
	key := e.newKey(t)
	for range 5 {
		e.encrypt(t, key, []byte("x"), nil)
	}
	before := len(fileLines(t, filepath.Join(dir, "audit.log")))

	chains := decodeOK[struct{ Chains []string }](t, e.trailCall(t, e.rootCreds(), "ListAuditChains", `{}`))
	if len(chains.Chains) != 1 || chains.Chains[0] != "" {
		t.Errorf("ListAuditChains: %q, want the file's one chain %q", chains.Chains, "")
	}
	var got []string
	after, pages := int64(0), 0
	for {
		p := decodeOK[trailPage](t, e.trailCall(t, e.rootCreds(), "GetAuditRecords", `{"Chain":"","AfterSequence":`+jsonInt(after)+`,"Limit":2}`))
		pages++
		if len(p.Records) > 2 {
			t.Fatalf("a page of %d records with Limit 2", len(p.Records))
		}
		for _, r := range p.Records {
			if r.Sequence != after+1 {
				t.Fatalf("record at position %d after %d", r.Sequence, after)
			}
			after = r.Sequence
			got = append(got, r.Line)
		}
		if !p.Truncated {
			break
		}
	}
	// Each page is itself a call, recorded after it is read.
	lines := fileLines(t, filepath.Join(dir, "audit.log"))
	if len(got) < before || len(got) >= len(lines) || strings.Join(got, "\n") != strings.Join(lines[:len(got)], "\n") {
		t.Fatalf("read %d lines in %d pages; the log held %d before and %d after; they must be its first lines", len(got), pages, before, len(lines))
	}
	if n, problem, err := audit.Verify(strings.NewReader(strings.Join(got, "\n") + "\n")); n != len(got) || problem != nil || err != nil {
		t.Errorf("the lines read do not verify: %d, %+v, %v", n, problem, err)
	}

	// No digests or key yet; then as the files hold them.
	if p := decodeOK[trailPage](t, e.trailCall(t, e.rootCreds(), "GetAuditDigests", `{}`)); len(p.Digests) != 0 || p.Truncated {
		t.Errorf("digests of a trail without any: %+v", p)
	}
	if k := decodeOK[map[string]any](t, e.trailCall(t, e.rootCreds(), "GetAuditPublicKey", `{"Chain":""}`)); len(k) != 0 {
		t.Errorf("the key of a trail without audit.pub: %v", k)
	}
	digests := []string{`{"sequence":1,"hash":"a"}`, `{"sequence":2,"hash":"b"}`, `{"sequence":3,"hash":"c"}`}
	os.WriteFile(filepath.Join(dir, "audit-digests.log"), []byte(strings.Join(digests, "\n")+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "audit.pub"), []byte("PEM\n"), 0o600)
	p := decodeOK[trailPage](t, e.trailCall(t, e.rootCreds(), "GetAuditDigests", `{"AfterSequence":1,"Limit":1}`))
	if len(p.Digests) != 1 || p.Digests[0].Sequence != 2 || p.Digests[0].Line != digests[1] || !p.Truncated {
		t.Errorf("digests after 1, one: %+v", p)
	}
	if k := decodeOK[struct{ PublicKey string }](t, e.trailCall(t, e.rootCreds(), "GetAuditPublicKey", `{}`)); k.PublicKey != "PEM\n" {
		t.Errorf("PublicKey %q", k.PublicKey)
	}
	if p := decodeOK[trailPage](t, e.trailCall(t, e.rootCreds(), "GetAuditRecords", `{"Chain":"kms-a-0011223344556677"}`)); len(p.Records) != 0 || p.Truncated {
		t.Errorf("records of a chain the trail does not hold: %+v", p)
	}

	// The trail covers every account, but another account's root reads
	// none of this one's records.
	other, err := identity.BootstrapRoot(context.Background(), e.store, e.root, "444455556666")
	if err != nil {
		t.Fatal(err)
	}
	p = decodeOK[trailPage](t, e.trailCall(t, aws.Credentials{AccessKeyID: other.ID, SecretAccessKey: other.Secret}, "GetAuditRecords", `{}`))
	for _, r := range p.Records {
		if strings.Contains(r.Line, `"111122223333"`) {
			t.Errorf("another account's root reads this account's record %d", r.Sequence)
		}
	}
}

// Each account reads only its own records over the API: a root, or a
// user allowed cloudtrail:LookupEvents, of any account sees the records
// its account made or received, not another's key policies and encryption
// contexts. The records of every account, and of calls no account made,
// only a principal of an auditor account reads: its root, or a user
// allowed openkms:ReadAllAccountsAuditTrail. Another account cannot grant
// itself that.
func TestTrailScopedToAccount(t *testing.T) {
	t.Parallel()
	e, _ := newTrailEnv(t)
	h := e.guard.next.(*api.Handler)
	ctx := context.Background()
	a := e.rootCreds()
	b := e.accountRoot(t, "444455556666")
	aKey := e.newKey(t)
	e.encrypt(t, aKey, []byte("a"), map[string]string{"secret-context": "of-account-a"})
	bClient := e.clientWith(b.AccessKeyID, b.SecretAccessKey, "")
	if _, err := bClient.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("of-account-b")}); err != nil {
		t.Fatal(err)
	}
	e.rawRequest(t, "POST", "/", map[string]string{"X-Unsigned": "1", "X-Amz-Target": "TrentService.ListKeys",
		"Content-Type": "application/x-amz-json-1.1"}, strings.NewReader(`{}`))
	auditorOfAll := e.newUser(t, "auditor-all", allowDoc("*", "cloudtrail:LookupEvents", "openkms:ReadAllAccountsAuditTrail"))
	auditorOfA := e.newUser(t, "auditor-a", allowDoc("*", "cloudtrail:LookupEvents"))
	creds := func(u *testUser) aws.Credentials {
		return aws.Credentials{AccessKeyID: u.akid, SecretAccessKey: u.secret}
	}

	// seen reads every record c may read, a few a page, and returns what
	// they hold. Each read is itself recorded: pages of two made every
	// case read about as many records as all the cases before it.
	seen := func(c aws.Credentials) (accounts map[string]bool, unauth bool, all string) {
		accounts = map[string]bool{}
		var sb strings.Builder
		after := int64(0)
		for {
			p := decodeOK[trailPage](t, e.trailCall(t, c, "GetAuditRecords", `{"AfterSequence":`+jsonInt(after)+`,"Limit":5}`))
			for _, r := range p.Records {
				var ln struct {
					Event audit.Record `json:"event"`
				}
				if err := json.Unmarshal([]byte(r.Line), &ln); err != nil {
					t.Fatal(err)
				}
				accounts[ln.Event.UserIdentity.AccountID] = true
				accounts[ln.Event.RecipientAccountID] = true
				if ln.Event.UserIdentity.Type == "Unknown" {
					unauth = true
				}
				sb.WriteString(r.Line)
				after = r.Sequence
			}
			if !p.Truncated {
				return accounts, unauth, sb.String()
			}
		}
	}
	for _, tc := range []struct {
		name    string
		creds   aws.Credentials
		auditor string // the auditor account set on the handler
		want    []string
		unauth  bool
	}{
		{"root of A", a, "", []string{"111122223333"}, false},
		{"root of B", b, "", []string{"444455556666"}, false},
		{"user of A allowed LookupEvents", creds(auditorOfA), "", []string{"111122223333"}, false},
		{"user of A allowed all, A not an auditor account", creds(auditorOfAll), "", []string{"111122223333"}, false},
		{"root of B, A the auditor account", b, "111122223333", []string{"444455556666"}, false},
		{"user of A allowed LookupEvents only, A the auditor account", creds(auditorOfA), "111122223333", []string{"111122223333"}, false},
		{"user of A allowed all, A the auditor account", creds(auditorOfAll), "111122223333", []string{"111122223333", "444455556666"}, true},
		{"root of A, A the auditor account", a, "111122223333", []string{"111122223333", "444455556666"}, true},
	} {
		h.WithAuditorAccounts(tc.auditor)
		accounts, unauth, all := seen(tc.creds)
		delete(accounts, "")
		var got []string
		for acct := range accounts {
			got = append(got, acct)
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(tc.want, ",") || unauth != tc.unauth {
			t.Errorf("%s: reads records of accounts %v (unauthenticated: %v), want %v (%v)", tc.name, got, unauth, tc.want, tc.unauth)
		}
		if !slices.Contains(tc.want, "111122223333") && strings.Contains(all, "of-account-a") {
			t.Errorf("%s: reads account A's encryption context", tc.name)
		}
	}
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Only roots and principals whose identity policies allow
// cloudtrail:LookupEvents read the trail; every call, refused or not, is
// recorded.
func TestTrailAuthorization(t *testing.T) {
	t.Parallel()
	e, dir := newTrailEnv(t)
	const allowed = "arn:aws:iam::111122223333:user/auditor"
	plain := e.newUser(t, "plain")
	kmsOnly := e.newUser(t, "kms-only", allowDoc("*", "kms:*"))
	auditor := e.newUser(t, "auditor", allowDoc("*", "cloudtrail:LookupEvents"))
	denied := e.newUser(t, "denied", allowDoc("*", "cloudtrail:*"), policyDoc("Deny", "*", "cloudtrail:LookupEvents"))
	creds := func(u *testUser) aws.Credentials {
		return aws.Credentials{AccessKeyID: u.akid, SecretAccessKey: u.secret}
	}

	for _, u := range []*testUser{plain, kmsOnly} {
		for _, op := range []string{"ListAuditChains", "GetAuditRecords", "GetAuditDigests", "GetAuditPublicKey"} {
			expectRawError(t, e.trailCall(t, creds(u), op, `{}`), http.StatusBadRequest, "AccessDeniedException",
				"User: "+userARNOf(u.name)+" is not authorized to perform: cloudtrail:LookupEvents because no identity-based policy allows the cloudtrail:LookupEvents action")
		}
	}
	expectRawError(t, e.trailCall(t, creds(denied), "GetAuditRecords", `{}`), http.StatusBadRequest, "AccessDeniedException",
		"User: "+userARNOf("denied")+" is not authorized to perform: cloudtrail:LookupEvents with an explicit deny in an identity-based policy")
	p := decodeOK[trailPage](t, e.trailCall(t, creds(auditor), "GetAuditRecords", `{}`))
	if len(p.Records) == 0 {
		t.Fatal("the auditor read no records")
	}

	recs, _ := auditRecords(t, filepath.Join(dir, "audit.log"))
	var refused, read int
	for _, r := range recs {
		if r.EventSource != "cloudtrail.amazonaws.com" {
			continue
		}
		if !r.ReadOnly {
			t.Errorf("%s is not recorded read-only", r.EventName)
		}
		switch {
		case r.UserIdentity.ARN == allowed && r.EventName == "GetAuditRecords" && r.ErrorCode == "":
			read++
		case r.ErrorCode == "AccessDeniedException" && strings.HasPrefix(r.ErrorMessage, "User: ") && strings.Contains(r.ErrorMessage, "cloudtrail:LookupEvents"):
			refused++ // the error type the client got, in JSON 1.1 form
		default:
			t.Errorf("unexpected record %s by %s: %s %s", r.EventName, r.UserIdentity.ARN, r.ErrorCode, r.ErrorMessage)
		}
	}
	if read != 1 || refused != 9 {
		t.Errorf("%d reads and %d refusals recorded, want 1 and 9", read, refused)
	}
}

// Reading the trail is a call made in the region its signature is scoped
// to (aws:RequestedRegion), as a KMS call is: an auditor allowed in one
// region reads there, and nowhere else.
func TestTrailRequestedRegion(t *testing.T) {
	t.Parallel()
	e, _ := newTrailEnv(t)
	inEU := e.newUser(t, "auditor-eu", kpDoc(kpIdentity("Allow", []string{"*"}, "cloudtrail:LookupEvents").with(
		map[string]any{"StringEquals": map[string]any{"aws:RequestedRegion": e2eRegion2}})))
	creds := aws.Credentials{AccessKeyID: inEU.akid, SecretAccessKey: inEU.secret}
	if p := decodeOK[trailPage](t, e.trailCallIn(t, e2eRegion2, creds, "GetAuditRecords", `{}`)); len(p.Records) == 0 {
		t.Error("the auditor read no records in its region")
	}
	expectRawError(t, e.trailCallIn(t, e2eRegion, creds, "GetAuditRecords", `{}`), http.StatusBadRequest, "AccessDeniedException",
		"User: "+userARNOf("auditor-eu")+" is not authorized to perform: cloudtrail:LookupEvents because no identity-based policy allows the cloudtrail:LookupEvents action")
}

// Requests that are not signed, name no operation of ours or ask for a
// page out of bounds fail as AWS services fail them.
func TestTrailRequestErrors(t *testing.T) {
	t.Parallel()
	e, _ := newTrailEnv(t)
	r := e.rawRequest(t, http.MethodPost, "/", map[string]string{"X-Unsigned": "1",
		"X-Amz-Target": "OpenKMSAudit_20261127.GetAuditRecords", "Content-Type": "application/x-amz-json-1.1"}, strings.NewReader(`{}`))
	expectRawError(t, r, http.StatusBadRequest, "MissingAuthenticationTokenException", "")
	bad := e.rootCreds()
	bad.SecretAccessKey = "wrong" + bad.SecretAccessKey[5:]
	expectRawError(t, e.trailCall(t, bad, "GetAuditRecords", `{}`), http.StatusBadRequest, "InvalidSignatureException", "")
	expectRawError(t, e.trailCall(t, e.rootCreds(), "DeleteAuditTrail", `{}`), http.StatusBadRequest, "UnknownOperationException",
		`Unknown operation "OpenKMSAudit_20261127.DeleteAuditTrail".`)
	for body, msg := range map[string]string{
		`{"Limit":1001}`:       "Limit must be between 1 and 1000.",
		`{"Limit":-1}`:         "Limit must be between 1 and 1000.",
		`{"AfterSequence":-1}`: "AfterSequence must be at least 0.",
	} {
		expectRawError(t, e.trailCall(t, e.rootCreds(), "GetAuditRecords", body), http.StatusBadRequest, "ValidationException", msg)
	}
	expectRawError(t, e.trailCall(t, e.rootCreds(), "GetAuditDigests", `{"Chain":7}`), http.StatusBadRequest, "SerializationException", "")

	// A server that does not serve its trail says so, to those who may
	// read it.
	plain := newKMSEnv(t)
	expectRawError(t, plain.trailCall(t, plain.rootCreds(), "ListAuditChains", `{}`), http.StatusBadRequest, "UnsupportedOperationException",
		"This server does not serve its audit trail.")
}

// countingTrail is a trail whose record lines read are counted.
type countingTrail struct {
	*audit.FileTrail
	mu           sync.Mutex
	lines, bytes int
}

func (c *countingTrail) Records(ctx context.Context, chain string, after int64, limit, maxBytes int) ([]audit.Row, bool, error) {
	rows, more, err := c.FileTrail.Records(ctx, chain, after, limit, maxBytes)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines += len(rows)
	for _, r := range rows {
		c.bytes += len(r.Line)
	}
	return rows, more, err
}

// take returns the lines and bytes read since the last take.
func (c *countingTrail) take() (lines, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines, bytes = c.lines, c.bytes
	c.lines, c.bytes = 0, 0
	return lines, bytes
}

// writeTrailLines writes a data directory whose audit.log holds n records
// of account other, each padded to about size bytes, and then one of
// account acct; it returns the directory.
func writeTrailLines(t *testing.T, n, size int, other, acct string) string {
	t.Helper()
	dir := t.TempDir()
	var b bytes.Buffer
	line := func(account, desc string) {
		b.WriteString(`{"hash":"` + strings.Repeat("0", 64) + `","event":{"eventVersion":"1.11","userIdentity":{"type":"Root","accountId":"` + account +
			`"},"eventTime":"2026-03-01T10:00:00Z","eventName":"CreateKey","requestParameters":{"description":"` + desc + `"},"recipientAccountId":"` + account + `"}}` + "\n")
	}
	pad := strings.Repeat("p", max(size-300, 0))
	for range n {
		line(other, pad)
	}
	line(acct, "the one "+acct+" may see")
	if err := os.WriteFile(filepath.Join(dir, "audit.log"), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A reader who may see few of the records does not make one call read
// the whole trail: a call reads at most 10,000 lines and 4 MiB of them,
// and says where it stopped (LastSequence), even on a page with no
// records, so that the next call goes on from there. Paging so reaches
// the record the reader may see; kms audit events --endpoint does too.
func TestTrailScanIsBounded(t *testing.T) {
	e, _ := newTrailEnv(t)
	h := e.guard.next.(*api.Handler)
	const other = "444455556666"
	for _, tc := range []struct {
		name       string
		n, size    int
		firstLast  int64 // the LastSequence of the first page
		maxLines   int
		maxBytes   int
		wantPages  int
		lineBudget bool
	}{
		{name: "small lines", n: 25000, size: 300, firstLast: 10000, maxLines: 10000, wantPages: 3},
		{name: "large lines", n: 3000, size: 3000, maxLines: 10000, maxBytes: 4<<20 + 4000, wantPages: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeTrailLines(t, tc.n, tc.size, other, e2eAccount)
			ct := &countingTrail{FileTrail: audit.NewFileTrail(dir)}
			h.WithTrailReader(ct)
			var found []string
			after, pages := int64(0), 0
			for {
				ct.take()
				p := decodeOK[struct {
					Records      []struct{ Sequence int64 }
					Truncated    bool
					LastSequence int64
				}](t, e.trailCall(t, e.rootCreds(), "GetAuditRecords", `{"AfterSequence":`+jsonInt(after)+`,"Limit":1}`))
				pages++
				lines, size := ct.take()
				if lines > tc.maxLines || (tc.maxBytes > 0 && size > tc.maxBytes) {
					t.Fatalf("page %d read %d lines, %d bytes; want at most %d lines, %d bytes", pages, lines, size, tc.maxLines, tc.maxBytes)
				}
				if pages == 1 && (len(p.Records) != 0 || !p.Truncated || (tc.firstLast != 0 && p.LastSequence != tc.firstLast)) {
					t.Fatalf("the first page: %d records, truncated %v, LastSequence %d; want none, true, %d", len(p.Records), p.Truncated, p.LastSequence, tc.firstLast)
				}
				if p.LastSequence <= after && p.Truncated {
					t.Fatalf("page %d: LastSequence %d after %d", pages, p.LastSequence, after)
				}
				for _, r := range p.Records {
					found = append(found, jsonInt(r.Sequence))
				}
				after = p.LastSequence
				if !p.Truncated || pages > 10 {
					break
				}
			}
			if want := jsonInt(int64(tc.n + 1)); strings.Join(found, ",") != want || pages != tc.wantPages || after != int64(tc.n+1) {
				t.Errorf("found records %v in %d pages, ending at %d; want [%s] in %d pages", found, pages, after, want, tc.wantPages)
			}

			// kms audit events --endpoint goes on past empty pages.
			t.Setenv("AWS_ACCESS_KEY_ID", e.creds.ID)
			t.Setenv("AWS_SECRET_ACCESS_KEY", e.creds.Secret)
			t.Setenv("AWS_REGION", e2eRegion)
			t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
			var out bytes.Buffer
			if err := auditcli.Events(context.Background(), auditcli.Options{Endpoint: e.srv.URL, JSON: true}, &out); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(out.String()); strings.Count(got, "\n") != 0 || !strings.Contains(got, "the one "+e2eAccount+" may see") {
				t.Errorf("kms audit events --endpoint printed %.300q, want the one record", got)
			}
		})
	}
}

// Reading the trail is rate limited per account as other calls are, in a
// bucket of its own: an account past its limit is refused with
// ThrottlingException, signed or through the console, and the refusal is
// recorded; another account, and the same account's KMS calls, are not
// held back.
func TestTrailCallsAreRateLimited(t *testing.T) {
	t.Parallel()
	e, dir := newTrailEnv(t)
	h := e.guard.next.(*api.Handler)
	other, err := identity.BootstrapRoot(context.Background(), e.store, e.root, "444455556666")
	if err != nil {
		t.Fatal(err)
	}
	h.WithRateLimit(0.001, 3) // no token comes back during the test
	const throttled = "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
	for i, op := range []string{"ListAuditChains", "GetAuditRecords", "GetAuditDigests"} {
		if r := e.trailCall(t, e.rootCreds(), op, `{}`); r.status != http.StatusOK {
			t.Fatalf("call %d within the burst: status %d: %s", i+1, r.status, r.body)
		}
	}
	expectRawError(t, e.trailCall(t, e.rootCreds(), "GetAuditRecords", `{}`), http.StatusBadRequest, "ThrottlingException", throttled)
	expectRawError(t, e.trailCall(t, e.rootCreds(), "GetAuditPublicKey", `{}`), http.StatusBadRequest, "ThrottlingException", throttled)

	// Through the console, the same bucket.
	req := httptest.NewRequest(http.MethodPost, "/console/api/audit", nil)
	root := &identity.Principal{Type: identity.TypeRoot, Account: e2eAccount, ARN: identity.RootARN(e2eAccount), UserID: e2eAccount}
	_, err = h.Invoke(req, api.Call{Principal: root, UserAgent: "openkms-console/1", Service: api.ServiceTrail, Operation: "ListAuditChains", Input: json.RawMessage(`{}`)})
	var ce *api.CallError
	if !errors.As(err, &ce) || ce.Type != "ThrottlingException" {
		t.Errorf("a console trail call past the limit: %v, want ThrottlingException", err)
	}

	// Another account, and this account's KMS calls, go on.
	if r := e.trailCall(t, aws.Credentials{AccessKeyID: other.ID, SecretAccessKey: other.Secret}, "ListAuditChains", `{}`); r.status != http.StatusOK {
		t.Errorf("another account's trail call: status %d: %s", r.status, r.body)
	}
	if _, err := e.client.ListKeys(context.Background(), &kms.ListKeysInput{}); err != nil {
		t.Errorf("a KMS call of the account whose trail reading is throttled: %v", err)
	}

	recs, _ := auditRecords(t, filepath.Join(dir, "audit.log"))
	n := 0
	for _, r := range recs {
		if r.EventSource == "cloudtrail.amazonaws.com" && r.ErrorCode == "ThrottlingException" && r.UserIdentity.AccountID == e2eAccount {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d throttled trail calls recorded, want 3", n)
	}
}

// visibleTrail reads every record c may read over the API, a page at a
// time, and returns their lines joined.
func (e *kmsEnv) visibleTrail(t *testing.T, c aws.Credentials) string {
	t.Helper()
	var sb strings.Builder
	after := int64(0)
	for {
		p := decodeOK[trailPage](t, e.trailCall(t, c, "GetAuditRecords", `{"AfterSequence":`+jsonInt(after)+`}`))
		for _, r := range p.Records {
			sb.WriteString(r.Line)
			sb.WriteByte('\n')
			after = r.Sequence
		}
		if !p.Truncated {
			return sb.String()
		}
	}
}

// A call of one account made with another account's key is the key
// owner's to read too, as AWS logs a cross-account operation in both
// accounts; one refused for access only the caller's, as AWS logs it.
// A third account reads neither.
func TestTrailKeyOwnerReadsCrossAccountUse(t *testing.T) {
	t.Parallel()
	e, _ := newTrailEnv(t)
	ctx := context.Background()
	b := e.accountRoot(t, "444455556666")
	c := e.accountRoot(t, "777788889999")
	k := e.newKey(t)
	arn := e.keyARN(k)
	e.kpPutKeyPolicy(t, e.client, k, kpDoc(kpRootStmt(), kpAllow("arn:aws:iam::444455556666:root", "kms:Encrypt")), false)
	bClient := e.clientWith(b.AccessKeyID, b.SecretAccessKey, "")
	if _, err := kpEncrypt(bClient, arn, map[string]string{"use": "allowed-cross-account"}); err != nil {
		t.Fatal(err)
	}
	_, err := bClient.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn), KeySpec: "AES_256",
		EncryptionContext: map[string]string{"use": "denied-cross-account"}})
	expectAPIErrorCode(t, err, "AccessDeniedException")

	for _, tc := range []struct {
		name            string
		creds           aws.Credentials
		allowed, denied bool
	}{
		{"the key's owner", e.rootCreds(), true, false},
		{"the caller", b, true, true},
		{"a third account", c, false, false},
	} {
		all := e.visibleTrail(t, tc.creds)
		if got := strings.Contains(all, "allowed-cross-account"); got != tc.allowed {
			t.Errorf("%s reads the cross-account Encrypt: %v, want %v", tc.name, got, tc.allowed)
		}
		if got := strings.Contains(all, "denied-cross-account"); got != tc.denied {
			t.Errorf("%s reads the cross-account call refused for access: %v, want %v", tc.name, got, tc.denied)
		}
	}
}

// A Decrypt or ReEncrypt of a ciphertext under another account's key,
// which the caller may not use, is answered without the key's ARN or
// account; its record, which the caller's account reads, names neither.
func TestTrailHidesTheKeyADeniedCiphertextNames(t *testing.T) {
	t.Parallel()
	e, _ := newTrailEnv(t)
	ctx := context.Background()
	b := e.accountRoot(t, "444455556666")
	k := e.newKey(t)
	blob := e.encrypt(t, k, []byte("x"), nil).CiphertextBlob
	bClient := e.clientWith(b.AccessKeyID, b.SecretAccessKey, "")
	_, err := bClient.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob})
	expectAPIError(t, err, "AccessDeniedException", ciphertextKeyMsg)
	bKey, err := bClient.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bClient.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: blob, DestinationKeyId: bKey.KeyMetadata.KeyId})
	expectAPIError(t, err, "AccessDeniedException", ciphertextKeyMsg)

	all := e.visibleTrail(t, b)
	for _, name := range []string{"Decrypt", "ReEncrypt"} {
		if !strings.Contains(all, `"eventName":"`+name+`"`) {
			t.Errorf("the caller does not read the record of its %s", name)
		}
	}
	if strings.Contains(all, k) || strings.Contains(all, e2eAccount) {
		t.Errorf("the caller reads the key its ciphertext names, or its account, in its records:\n%s", all)
	}
}

// A role assumed from another account is the role's account's to read
// too, as AWS logs a cross-account AssumeRole in both accounts: the
// record is where a session's calls are traced back to whoever began it.
// One refused is only the caller's; a third account reads neither.
func TestTrailRoleOwnerReadsCrossAccountAssumeRole(t *testing.T) {
	t.Parallel()
	e, _ := newTrailEnv(t)
	ctx := context.Background()
	b := e.accountRoot(t, "444455556666")
	c := e.accountRoot(t, "777788889999")
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"sts:AssumeRole"}]}`
	if _, err := e.rootIAM().CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("shared"), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	roleARN := "arn:aws:iam::" + e2eAccount + ":role/shared"
	// Roots assume no roles: a user of each other account, allowed to.
	assumer := func(root aws.Credentials) aws.Credentials {
		t.Helper()
		c := e.iamClient(root.AccessKeyID, root.SecretAccessKey, "")
		if _, err := c.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("assumer")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("assumer"), PolicyName: aws.String("p"),
			PolicyDocument: aws.String(policyDoc("Allow", roleARN, "sts:AssumeRole"))}); err != nil {
			t.Fatal(err)
		}
		k, err := c.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("assumer")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.Credentials{AccessKeyID: aws.ToString(k.AccessKey.AccessKeyId), SecretAccessKey: aws.ToString(k.AccessKey.SecretAccessKey)}
	}
	bu, cu := assumer(b), assumer(c)
	if _, err := e.stsClient(bu.AccessKeyID, bu.SecretAccessKey, "").AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("from-b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.stsClient(cu.AccessKeyID, cu.SecretAccessKey, "").AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("from-c")}); err == nil {
		t.Fatal("a role assumed by an account its trust policy does not name")
	}
	for _, tc := range []struct {
		name         string
		creds        aws.Credentials
		fromB, fromC bool
	}{
		{"the role's account", e.rootCreds(), true, false},
		{"the caller", b, true, false},
		{"the refused caller", c, false, true},
	} {
		all := e.visibleTrail(t, tc.creds)
		if got := strings.Contains(all, `"roleSessionName":"from-b"`); got != tc.fromB {
			t.Errorf("%s reads the cross-account AssumeRole: %v, want %v", tc.name, got, tc.fromB)
		}
		if got := strings.Contains(all, `"roleSessionName":"from-c"`); got != tc.fromC {
			t.Errorf("%s reads the refused cross-account AssumeRole: %v, want %v", tc.name, got, tc.fromC)
		}
	}
}
