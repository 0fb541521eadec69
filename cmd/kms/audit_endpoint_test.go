package main_test

// Black-box tests of `kms audit verify --endpoint` and `kms audit events
// --endpoint`: the trail of a running server, read over its API with the
// credentials of the AWS environment, checked and listed as the files or
// the database would be.

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store/boltstore"
)

// endpointEnv is the environment of an audit command that asks s: its dev
// credentials and region, and no other AWS configuration.
func endpointEnv(t *testing.T, s *server) []string {
	t.Helper()
	return baseEnv("AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(s.Dir, "credentials"), "AWS_REGION="+s.Region,
		"AWS_CONFIG_FILE="+filepath.Join(t.TempDir(), "no-config"), "AWS_EC2_METADATA_DISABLED=true")
}

// encryptCalls makes n Encrypt calls on s and returns their request ids.
func encryptCalls(t *testing.T, s *server, n int) []string {
	t.Helper()
	ctx := testCtx(t)
	c := s.client(t)
	ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	var ids []string
	for range n {
		out, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte("audited")})
		noErr(t, err, "Encrypt")
		ids = append(ids, okRequestID(out.ResultMetadata))
	}
	_, err = c.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1)})
	noErr(t, err, "ListKeys")
	return ids
}

var verifiedRE = regexp.MustCompile(`^OK: (\d+) records, hash chain intact; (\d+) signed digests verify\.\n$`)

// verified returns the counts of verify's OK line, or -1s.
func verified(out string) (records, digests int) {
	m := verifiedRE.FindStringSubmatch(out)
	if m == nil {
		return -1, -1
	}
	records, _ = strconv.Atoi(m[1])
	digests, _ = strconv.Atoi(m[2])
	return records, digests
}

func TestAuditEndpointVerifyAndEvents(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	s := startDev(t, dir)
	encrypts := encryptCalls(t, s, 3)
	env := endpointEnv(t, s)

	code, out, errOut := runToExit(t, env, "audit", "verify", "--endpoint", s.URL)
	// At least the calls above: CreateKey, 3 Encrypt, ListKeys.
	if n, _ := verified(out); code != 0 || n < 5 {
		t.Fatalf("verify --endpoint: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runToExit(t, env, "audit", "events", "--endpoint", s.URL, "--json", "--event", "Encrypt")
	if got := requestIDs(t, out); code != 0 || !slices.Equal(got, encrypts) {
		t.Fatalf("events --endpoint --json --event Encrypt: exit %d, %v, want %v\n%s", code, got, encrypts, errOut)
	}
	// The reads are calls like any other, recorded by the server.
	code, out, errOut = runToExit(t, env, "audit", "events", "--endpoint", s.URL, "--event", "GetAuditRecords")
	if code != 0 || !strings.Contains(out, "arn:aws:iam::") || strings.Count(out, "GetAuditRecords") < 2 {
		t.Errorf("events --endpoint lists no earlier reads: exit %d\n%s%s", code, out, errOut)
	}

	// After a restart the trail has a digest, checked with the server's
	// key or a pinned one.
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	s = startDev(t, dir)
	code, out, errOut = runToExit(t, env, "audit", "verify", "--endpoint", s.URL, "--public-key", filepath.Join(dir, "audit.pub"))
	if n, digests := verified(out); code != 0 || n < 5 || digests < 1 {
		t.Fatalf("verify --endpoint --public-key audit.pub after a restart: exit %d\n%s%s", code, out, errOut)
	}
	local, _ := auditVerifyLive(t, dir)
	if local != 0 {
		t.Errorf("verify --data-dir of the same trail: exit %d", local)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	pemKey, _ := audit.MarshalPublicKey(other)
	keyFile := filepath.Join(t.TempDir(), "other.pub")
	noErr(t, os.WriteFile(keyFile, pemKey, 0o600), "write key")
	code, out, _ = runToExit(t, env, "audit", "verify", "--endpoint", s.URL, "--public-key", keyFile)
	if code != 1 || !strings.Contains(out, "BROKEN: digest 1 has a signature that does not verify") {
		t.Errorf("verify --endpoint with another key: exit %d\n%s", code, out)
	}

	// Refusals: unknown credentials, and --endpoint with another source.
	creds := filepath.Join(t.TempDir(), "credentials")
	noErr(t, os.WriteFile(creds, []byte("[default]\naws_access_key_id = AKIAEXAMPLEEXAMPLE00\naws_secret_access_key = not-a-secret\n"), 0o600), "write credentials")
	code, _, errOut = runToExit(t, append(env, "AWS_SHARED_CREDENTIALS_FILE="+creds), "audit", "verify", "--endpoint", s.URL)
	if code != 1 || !strings.Contains(errOut, "UnrecognizedClientException") {
		t.Errorf("verify --endpoint with unknown credentials: exit %d\n%s", code, errOut)
	}
	code, _, errOut = runToExit(t, env, "audit", "events", "--endpoint", s.URL, "--data-dir", dir)
	if code == 0 || !strings.Contains(errOut, "endpoint") {
		t.Errorf("--endpoint with --data-dir: exit %d\n%s", code, errOut)
	}
}

// Over the endpoint of one node, verify covers the chain of every node of
// a cluster, and finds a record edited in the database.
func TestAuditEndpointCluster(t *testing.T) {
	t.Parallel()
	nodes, dsn := startCluster(t, 2)
	var encrypts []string
	for _, s := range nodes {
		encrypts = append(encrypts, encryptCalls(t, s, 2)...)
	}
	env := endpointEnv(t, nodes[0])

	code, local, errOut := runToExit(t, baseEnv(), "audit", "verify", "--storage", dsn)
	if code != 0 {
		t.Fatalf("verify --storage: exit %d\n%s%s", code, local, errOut)
	}
	chains := regexp.MustCompile(`(?m)^chain (\S+): OK`).FindAllStringSubmatch(local, -1)
	if len(chains) != 2 {
		t.Fatalf("verify --storage names %d chains, want 2:\n%s", len(chains), local)
	}
	code, out, errOut := runToExit(t, env, "audit", "verify", "--endpoint", nodes[0].URL)
	if code != 0 || !strings.Contains(out, "OK: 2 chains, ") {
		t.Fatalf("verify --endpoint: exit %d\n%s%s", code, out, errOut)
	}
	for _, c := range chains {
		if !strings.Contains(out, "chain "+c[1]+": OK: ") {
			t.Errorf("verify --endpoint does not report chain %s:\n%s", c[1], out)
		}
	}
	code, out, errOut = runToExit(t, env, "audit", "events", "--endpoint", nodes[1].URL, "--json", "--event", "Encrypt")
	if got := requestIDs(t, out); code != 0 || !slices.Equal(sorted(got), sorted(encrypts)) {
		t.Errorf("events --endpoint --json --event Encrypt: exit %d, %v, want %v\n%s", code, got, encrypts, errOut)
	}

	// Edit a record of the first chain while the servers run.
	ctx := testCtx(t)
	pool, err := pgxpool.New(ctx, dsn)
	noErr(t, err, "connect")
	defer pool.Close()
	chain := chains[0][1]
	_, err = pool.Exec(ctx, `UPDATE kms_audit_records SET line = replace(line, '"eventVersion":"1.11"', '"eventVersion":"1.12"') WHERE chain = $1 AND seq = 1`, chain)
	noErr(t, err, "edit a record")
	code, out, errOut = runToExit(t, env, "audit", "verify", "--endpoint", nodes[1].URL)
	if want := "chain " + chain + ": BROKEN at record 1: hash does not match the record (it was edited); 0 records before it verify."; code != 1 ||
		!strings.Contains(out, want) || !strings.Contains(out, "chain "+chains[1][1]+": OK: ") || !strings.Contains(out, "BROKEN: 1 of 2 chains do not verify.") {
		t.Errorf("verify --endpoint of an edited trail: exit %d, want 1 and %q\n%s%s", code, want, out, errOut)
	}
	// The console's verify, which the server runs itself, finds it too.
	id, secret := devCredentials(t, nodes[0].Dir)
	cc := signInConsole(t, nodes[1], id, secret)
	var v verifyAnswer
	if status := cc.post("audit/verify", nil, &v); status != http.StatusOK {
		t.Fatalf("audit/verify: %d", status)
	}
	var broken, intact int
	for _, c := range v.Chains {
		switch {
		case len(c.Problems) == 1 && strings.Contains(c.Problems[0], "hash does not match the record (it was edited)"):
			broken++
		case len(c.Problems) == 0 && c.Records >= 2:
			intact++
		}
	}
	if v.Verified || broken != 1 || intact != 1 {
		t.Errorf("the console's verify of an edited cluster trail: %+v, want one chain broken and one intact", v)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// Anyone can send invalid UTF-8 and lone surrogates in a request, signed
// or not; the trail must stay valid JSON that verifies the same from the
// files and over the endpoint. And a verify of a trail with two edits
// reports both, so that the first does not hide the second.
func TestAuditInvalidUTF8AndEveryBreak(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	s := startDev(t, dir)
	encryptCalls(t, s, 2)
	for _, body := range []string{
		"{\"KeyId\":\"k\",\"Plaintext\":\"AA==\",\"EncryptionContext\":{\"a\":\"\xff\xfe\"}}",
		`{"KeyId":"k","Plaintext":"AA==","EncryptionContext":{"a":"\udc00"}}`,
	} {
		req, err := http.NewRequest("POST", s.URL+"/", strings.NewReader(body))
		noErr(t, err, "request")
		req.Header.Set("X-Amz-Target", "TrentService.Encrypt")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := http.DefaultClient.Do(req)
		noErr(t, err, "unsigned Encrypt")
		resp.Body.Close()
	}
	env := endpointEnv(t, s)
	code, out, errOut := runToExit(t, env, "audit", "verify", "--endpoint", s.URL)
	if n, _ := verified(out); code != 0 || n < 6 {
		t.Fatalf("verify --endpoint after invalid UTF-8: exit %d\n%s%s", code, out, errOut)
	}
	if code, out := auditVerifyLive(t, dir); code != 0 {
		t.Fatalf("verify --data-dir after invalid UTF-8: exit %d\n%s", code, out)
	}
	lines := auditLines(t, dir)
	for _, i := range []int{1, 4} {
		lines[i] = strings.Replace(lines[i], `"eventVersion":"1.11"`, `"eventVersion":"1.12"`, 1)
	}
	code, out = auditVerify(t, tamperedCopy(t, dir, lines))
	if code != 1 || !strings.Contains(out, "BROKEN at record 2 (line 2)") || !strings.Contains(out, "also BROKEN at record 5: hash does not match") {
		t.Errorf("verify of a trail edited at records 2 and 5: exit %d, want 1 and both breaks\n%s", code, out)
	}
}

// Over the endpoint each account reads only its own records: the root of a
// second account on a dev server lists none of the dev account's calls
// (its keys' encryption contexts among them) and its verify cannot check
// a chain it sees only part of; the dev account, the auditor account of a
// dev server, reads and verifies them all.
func TestAuditEndpointAccountsAreSeparate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	s := startDev(t, dir)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	rootText, err := os.ReadFile(filepath.Join(dir, "root.key"))
	noErr(t, err, "read root.key")
	root, err := keys.ParseRootKey(rootText)
	noErr(t, err, "parse root.key")
	raw, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	noErr(t, err, "open kms.db")
	st, _, err := authstore.Open(testCtx(t), raw, root, true)
	noErr(t, err, "open kms.db as the server does")
	other, err := identity.BootstrapRoot(testCtx(t), st, root, "444455556666")
	noErr(t, err, "make a second account")
	noErr(t, st.Close(), "close kms.db")

	s = startDev(t, dir)
	ctx := testCtx(t)
	c := s.client(t)
	ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	noErr(t, err, "CreateKey")
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte("x"),
		EncryptionContext: map[string]string{"tenant": "dev-account-secret"}})
	noErr(t, err, "Encrypt")

	creds := filepath.Join(t.TempDir(), "credentials")
	noErr(t, os.WriteFile(creds, []byte("[default]\naws_access_key_id = "+other.ID+"\naws_secret_access_key = "+other.Secret+"\n"), 0o600), "write credentials")
	otherEnv := append(endpointEnv(t, s), "AWS_SHARED_CREDENTIALS_FILE="+creds)
	code, out, errOut := runToExit(t, otherEnv, "audit", "events", "--endpoint", s.URL, "--json")
	if code != 0 || strings.Contains(out, "111122223333") || strings.Contains(out, "dev-account-secret") || !strings.Contains(out, "444455556666") {
		t.Errorf("events --endpoint as another account's root: exit %d, want only its own records\n%s%s", code, out, errOut)
	}
	code, out, _ = runToExit(t, otherEnv, "audit", "verify", "--endpoint", s.URL)
	if code != 1 {
		t.Errorf("verify --endpoint of a part of the chain: exit %d, want 1\n%s", code, out)
	}
	// Nor does the console check the whole trail for it: its answer
	// would count every account's records, and each check reads them all.
	var refused struct {
		Type string `json:"__type"`
	}
	if status := signInConsole(t, s, other.ID, other.Secret).post("audit/verify", nil, &refused); status != http.StatusBadRequest || refused.Type != "AccessDeniedException" {
		t.Errorf("the console's verify as another account's root: %d %q, want AccessDeniedException", status, refused.Type)
	}

	env := endpointEnv(t, s)
	code, out, errOut = runToExit(t, env, "audit", "events", "--endpoint", s.URL, "--json")
	if code != 0 || !strings.Contains(out, "dev-account-secret") || !strings.Contains(out, "444455556666") {
		t.Errorf("events --endpoint as the auditor account's root: exit %d, want every account's records\n%s%s", code, out, errOut)
	}
	code, out, errOut = runToExit(t, env, "audit", "verify", "--endpoint", s.URL)
	if n, _ := verified(out); code != 0 || n < 4 {
		t.Errorf("verify --endpoint as the auditor account's root: exit %d\n%s%s", code, out, errOut)
	}
	id, secret := devCredentials(t, dir)
	var v verifyAnswer
	if status := signInConsole(t, s, id, secret).post("audit/verify", nil, &v); status != http.StatusOK || !v.Verified {
		t.Errorf("the console's verify as the auditor account's root: %d %+v", status, v)
	}
}

// verify --endpoint checks a log file's records as it reads them: a
// record edited in an older segment, which a server's start does not
// read, is found over the endpoint as from the files, and the records
// after it are still checked.
func TestAuditEndpointFindsAnEditedSegment(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	s := startServer(t, dir, baseEnv(), "--dev", "--audit-segment-bytes", "4096")
	encryptCalls(t, s, 30)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("server exit %d", code)
	}
	segs, err := audit.Segments(dir)
	noErr(t, err, "list the segments")
	if len(segs) < 4 {
		t.Fatalf("%d segments, want 4 or more", len(segs))
	}
	b, err := os.ReadFile(segs[0].Path)
	noErr(t, err, "read audit.log")
	lines := strings.SplitAfter(string(b), "\n")
	lines[1] = strings.Replace(lines[1], `"eventVersion":"1.11"`, `"eventVersion":"1.12"`, 1)
	noErr(t, os.WriteFile(segs[0].Path, []byte(strings.Join(lines, "")), 0o600), "edit record 2")

	s = startServer(t, dir, baseEnv(), "--dev", "--audit-segment-bytes", "4096")
	code, out, errOut := runToExit(t, endpointEnv(t, s), "audit", "verify", "--endpoint", s.URL)
	if code != 1 || !strings.Contains(out, "BROKEN at record 2 (line 2): hash does not match the record (it was edited)") ||
		!strings.Contains(out, "1 records before it verify") || strings.Contains(out, "also BROKEN") {
		t.Fatalf("verify --endpoint of a trail edited at record 2: exit %d, want 1 and that break alone\n%s%s", code, out, errOut)
	}
	if code, out := auditVerifyLive(t, dir); code != 1 || !strings.Contains(out, "BROKEN at record 2 (line 2): hash does not match the record (it was edited) (audit.log, line 2)") {
		t.Fatalf("verify --data-dir of the same trail: exit %d\n%s", code, out)
	}
}
