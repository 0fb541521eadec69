package e2e_test

// End-to-end harness: the real api.Handler over a real service and bbolt
// store, served by httptest and called through the real aws-sdk-go-v2 KMS
// client (and raw net/http for what the SDK cannot send). Every test gets
// its own environment, so tests run in parallel without sharing state.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/testsupport"
)

const (
	e2eAccount = "111122223333"
	e2eRegion  = "us-east-1"
	// e2eRegion2 and e2eRegion3 are other regions the test server serves.
	e2eRegion2 = "eu-west-1"
	e2eRegion3 = "ap-southeast-2"
)

// e2eStart is where every fake clock starts: a whole number of
// milliseconds, so times survive the epoch-seconds wire format exactly.
var e2eStart = time.Date(2030, time.March, 4, 5, 6, 7, 890_000_000, time.UTC)

var (
	uuidRE  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	hex64RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// kmsEnv is one server and its clients.
type kmsEnv struct {
	svc     *service.Service
	store   store.Store
	path    string // the bbolt file
	srv     *httptest.Server
	client  *kms.Client
	clock   *testsupport.Clock // the service's clock; tests move it instead of sleeping
	rootKey []byte
	root    *keys.RootKey
	creds   identity.AccessKey // the account root's access key
	guard   *leakGuard
	// storeClosed is set by tests that close the store under the server;
	// the cleanup then cannot read the key material to look for it.
	storeClosed bool

	assumerOnce sync.Once
	assumer     *testUser // made by assumerSTS

}

func newKMSEnv(t testing.TB) *kmsEnv {
	t.Helper()
	rk := make([]byte, 32)
	if _, err := rand.Read(rk); err != nil {
		t.Fatal(err)
	}
	return openKMSEnv(t, filepath.Join(t.TempDir(), "kms.db"), rk, testsupport.NewClock(e2eStart))
}

// openKMSEnv starts a service, server and client on the bbolt file at path.
func openKMSEnv(t testing.TB, path string, rk []byte, clock *testsupport.Clock) *kmsEnv {
	t.Helper()
	return openKMSEnvWith(t, path, rk, clock, nil)
}

// openKMSEnvWith is openKMSEnv with the service's configuration changed by
// configure (nil: as it is).
func openKMSEnvWith(t testing.TB, path string, rk []byte, clock *testsupport.Clock, configure func(*service.Config)) *kmsEnv {
	t.Helper()
	return openKMSEnvDir(t, path, rk, clock, configure, nil)
}

// openKMSEnvDir is openKMSEnvWith with the identity directory's
// configuration changed by configureDir too (nil: as it is).
func openKMSEnvDir(t testing.TB, path string, rk []byte, clock *testsupport.Clock, configure func(*service.Config), configureDir func(*identity.Config)) *kmsEnv {
	t.Helper()
	root, err := keys.NewRootKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t, path, root)
	t.Cleanup(func() { st.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := service.Config{Store: st, RootKey: root, Region: e2eRegion, Regions: e2eRegions, Now: clock.Now, Logger: logger}
	if configure != nil {
		configure(&cfg)
	}
	// The directory checks signatures against the real clock, the time
	// the SDK signs with; the service's clock is the fake one. It serves
	// the regions the service serves, as the server wires them.
	dirCfg := identity.Config{Store: st, RootKey: root, Region: cfg.Region, Regions: cfg.Regions, Logger: logger}
	if configureDir != nil {
		configureDir(&dirCfg)
	}
	dir := identity.New(dirCfg)
	if cfg.PrincipalID == nil {
		cfg.PrincipalID = dir.PrincipalID
	}
	svc, err := service.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := identity.BootstrapRoot(context.Background(), st, root, e2eAccount)
	if err != nil {
		t.Fatal(err)
	}
	guard := &leakGuard{next: api.NewHandler(svc, dir, logger)}
	srv := httptest.NewServer(guard)
	t.Cleanup(srv.Close)
	e := &kmsEnv{svc: svc, store: st, path: path, srv: srv, clock: clock, rootKey: rk, guard: guard, root: root, creds: creds}
	e.client = e.clientWith(creds.ID, creds.Secret, "")
	// Registered after the store's Close, so it runs before it.
	t.Cleanup(func() { e.checkNoLeaks(t); guard.checkResponsesConform(t) })
	return e
}

// reopen stands for a restart: it stops e's server, closes its store and
// returns a new environment (service, server, client, empty caches) on the
// same file, root key and clock. The new environment's leak check also
// covers every response e sent.
func (e *kmsEnv) reopen(t testing.TB) *kmsEnv { t.Helper(); return e.reopenEdited(t, nil) }

// reopenEdited is reopen that first runs edit, unless nil, on the closed
// store's file: a store as another build left it.
func (e *kmsEnv) reopenEdited(t testing.TB, edit func(path string)) *kmsEnv {
	t.Helper()
	return e.reopenEditedWith(t, edit, nil)
}

// reopenEditedWith is reopenEdited whose new service's configuration is
// changed by configure (nil: as it is).
func (e *kmsEnv) reopenEditedWith(t testing.TB, edit func(path string), configure func(*service.Config)) *kmsEnv {
	t.Helper()
	e.srv.Close()
	e.storeClosed = true
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(e.path)
	}
	next := openKMSEnvWith(t, e.path, e.rootKey, e.clock, configure)
	if a := e.assumer; a != nil {
		// The user that assumes roles is in the store: sign for it anew.
		next.assumerOnce.Do(func() {
			next.assumer = &testUser{name: a.name, akid: a.akid, secret: a.secret, iam: next.iamClient(a.akid, a.secret, ""),
				sts: next.stsClient(a.akid, a.secret, ""), kms: next.clientWith(a.akid, a.secret, "")}
		})
	}
	e.guard.mu.Lock()
	next.guard.bodies = append(next.guard.bodies, e.guard.bodies...)
	next.guard.kms = append(next.guard.kms, e.guard.kms...)
	e.guard.mu.Unlock()
	return next
}

// expectNoTagsOrGrants checks that key id has no tags and no grants:
// the refused calls that would have added them changed nothing.
func (e *kmsEnv) expectNoTagsOrGrants(t testing.TB, id string) {
	t.Helper()
	ctx := context.Background()
	tags, err := e.client.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(id)})
	if err != nil || len(tags.Tags) != 0 {
		t.Errorf("tags %+v (%v), want none", tags, err)
	}
	grants, err := e.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(id)})
	if err != nil || len(grants.Grants) != 0 {
		t.Errorf("grants %+v (%v), want none", grants, err)
	}
}

// openStore opens the bbolt file at path with its records authenticated
// under root, as the server opens its store (internal/authstore).
func openStore(t testing.TB, path string, root *keys.RootKey) store.Store {
	t.Helper()
	raw, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := authstore.Open(context.Background(), raw, root, true)
	if err != nil {
		raw.Close()
		t.Fatal(err)
	}
	return st
}

// editStore runs fn in a transaction on the bbolt file at path, which no
// server has open, with its records authenticated under root: a store as
// another build left it.
func editStore(t testing.TB, path string, root *keys.RootKey, fn func(store.Tx) error) {
	t.Helper()
	st := openStore(t, path, root)
	defer st.Close()
	if err := st.Update(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// clientAs returns an SDK client signed as the root of another account.
func (e *kmsEnv) clientAs(t testing.TB, account string) *kms.Client {
	t.Helper()
	creds, err := identity.BootstrapRoot(context.Background(), e.store, e.root, account)
	if err != nil {
		t.Fatal(err)
	}
	return e.clientWith(creds.ID, creds.Secret, "")
}

// e2eRegions are the regions the test server serves.
var e2eRegions = []string{e2eRegion, e2eRegion2, e2eRegion3, "us-west-2"}

// clientWith returns an SDK client of e's server signing with the given
// credentials.
func (e *kmsEnv) clientWith(akid, secret, token string) *kms.Client {
	return e.clientIn(e2eRegion, akid, secret, token)
}

// clientIn returns an SDK client of e's server for region, signing with
// the given credentials.
func (e *kmsEnv) clientIn(region, akid, secret, token string) *kms.Client {
	return kms.New(kms.Options{
		Region:           region,
		BaseEndpoint:     aws.String(e.srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, token),
		RetryMaxAttempts: 1,
		HTTPClient:       testsupport.SDKHTTPClient(e.srv.Client()),
	})
}

// iamClient returns an SDK IAM client of e's server (the AWS Query
// protocol on the same endpoint) signing with the given credentials.
func (e *kmsEnv) iamClient(akid, secret, token string) *iam.Client {
	return iam.New(iam.Options{
		Region:           e2eRegion,
		BaseEndpoint:     aws.String(e.srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, token),
		RetryMaxAttempts: 1,
		HTTPClient:       testsupport.SDKHTTPClient(e.srv.Client()),
	})
}

// stsClient is iamClient for STS.
func (e *kmsEnv) stsClient(akid, secret, token string) *sts.Client {
	return sts.New(sts.Options{
		Region:           e2eRegion,
		BaseEndpoint:     aws.String(e.srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, token),
		RetryMaxAttempts: 1,
		HTTPClient:       testsupport.SDKHTTPClient(e.srv.Client()),
	})
}

func (e *kmsEnv) keyARN(id string) string {
	return "arn:aws:kms:" + e2eRegion + ":" + e2eAccount + ":key/" + id
}

func (e *kmsEnv) aliasARN(name string) string {
	return "arn:aws:kms:" + e2eRegion + ":" + e2eAccount + ":" + name
}

// createKey creates a key through the SDK and returns its metadata.
func (e *kmsEnv) createKey(t testing.TB, in *kms.CreateKeyInput) *types.KeyMetadata {
	t.Helper()
	if in == nil {
		in = &kms.CreateKeyInput{}
	}
	out, err := e.client.CreateKey(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return out.KeyMetadata
}

// newKey creates a default symmetric key and returns its id.
func (e *kmsEnv) newKey(t testing.TB) string {
	t.Helper()
	return aws.ToString(e.createKey(t, nil).KeyId)
}

func (e *kmsEnv) createAlias(t testing.TB, name, target string) {
	t.Helper()
	if _, err := e.client.CreateAlias(context.Background(), &kms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: aws.String(target)}); err != nil {
		t.Fatalf("CreateAlias %s -> %s: %v", name, target, err)
	}
}

func (e *kmsEnv) describe(t testing.TB, keyID string) *types.KeyMetadata {
	t.Helper()
	out, err := e.client.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		t.Fatalf("DescribeKey %s: %v", keyID, err)
	}
	return out.KeyMetadata
}

func (e *kmsEnv) encrypt(t testing.TB, keyID string, pt []byte, ec map[string]string) *kms.EncryptOutput {
	t.Helper()
	out, err := e.client.Encrypt(context.Background(), &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: pt, EncryptionContext: ec})
	if err != nil {
		t.Fatalf("Encrypt with %s: %v", keyID, err)
	}
	return out
}

func (e *kmsEnv) decrypt(t testing.TB, blob []byte, ec map[string]string) *kms.DecryptOutput {
	t.Helper()
	out, err := e.client.Decrypt(context.Background(), &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	return out
}

func (e *kmsEnv) disable(t testing.TB, keyID string) {
	t.Helper()
	if _, err := e.client.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatalf("DisableKey: %v", err)
	}
}

func (e *kmsEnv) scheduleDeletion(t testing.TB, keyID string, days int32) *kms.ScheduleKeyDeletionOutput {
	t.Helper()
	out, err := e.client.ScheduleKeyDeletion(context.Background(), &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyID), PendingWindowInDays: aws.Int32(days)})
	if err != nil {
		t.Fatalf("ScheduleKeyDeletion: %v", err)
	}
	return out
}

// listAllAliases pages through ListAliases with the SDK paginator.
func (e *kmsEnv) listAllAliases(t testing.TB, in *kms.ListAliasesInput) []types.AliasListEntry {
	t.Helper()
	if in == nil {
		in = &kms.ListAliasesInput{}
	}
	var all []types.AliasListEntry
	p := kms.NewListAliasesPaginator(e.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("ListAliases: %v", err)
		}
		all = append(all, page.Aliases...)
	}
	return all
}

func (e *kmsEnv) listAllKeys(t testing.TB) []types.KeyListEntry {
	t.Helper()
	var all []types.KeyListEntry
	p := kms.NewListKeysPaginator(e.client, &kms.ListKeysInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		all = append(all, page.Keys...)
	}
	return all
}

// ---- errors ----------------------------------------------------------------

// expectAPIError checks that err is the AWS error code with exactly the
// message msg, sent with HTTP 400 and a request id, and returns it.
func expectAPIError(t testing.TB, err error, code, msg string) smithy.APIError {
	t.Helper()
	ae := expectAPIErrorCode(t, err, code)
	if ae != nil && ae.ErrorMessage() != msg {
		t.Errorf("%s message:\n got %q\nwant %q", code, ae.ErrorMessage(), msg)
	}
	return ae
}

// expectAPIErrorPrefix is expectAPIError for messages checked by prefix.
func expectAPIErrorPrefix(t testing.TB, err error, code, prefix string) smithy.APIError {
	t.Helper()
	ae := expectAPIErrorCode(t, err, code)
	if ae != nil && !strings.HasPrefix(ae.ErrorMessage(), prefix) {
		t.Errorf("%s message:\n got %q\nwant prefix %q", code, ae.ErrorMessage(), prefix)
	}
	return ae
}

func expectAPIErrorCode(t testing.TB, err error, code string) smithy.APIError {
	t.Helper()
	if err == nil {
		t.Errorf("got success, want %s", code)
		return nil
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Errorf("got %v (%T), want API error %s", err, err, code)
		return nil
	}
	if ae.ErrorCode() != code {
		t.Errorf("got %s (%q), want %s", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	if s := httpStatus(err); s != http.StatusBadRequest {
		t.Errorf("%s: HTTP status %d, want 400", code, s)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.ServiceRequestID() == "" {
		t.Errorf("%s: no x-amzn-RequestId on the error response", code)
	}
	return ae
}

// expectTyped checks that err unwraps to the SDK's typed error T.
func expectTyped[T error](t testing.TB, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Errorf("got %v (%T), want %T", err, err, target)
	}
	return target
}

func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func requestID(md middleware.Metadata) string {
	id, _ := awsmiddleware.GetRequestIDMetadata(md)
	return id
}

// ---- raw HTTP --------------------------------------------------------------

type rawResponse struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body as a JSON object.
func (r rawResponse) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response body is not a JSON object: %v: %q", err, r.body)
	}
	return m
}

// rawRequest sends method / with the given headers and body, signed with
// the root's credentials unless hdr has "X-Unsigned".
func (e *kmsEnv) rawRequest(t testing.TB, method, path string, hdr map[string]string, body io.Reader) rawResponse {
	t.Helper()
	return e.rawRequestAs(t, e.creds, method, path, hdr, body)
}

// rawRequestAs is rawRequest signed with creds.
func (e *kmsEnv) rawRequestAs(t testing.TB, creds identity.AccessKey, method, path string, hdr map[string]string, body io.Reader) rawResponse {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = io.ReadAll(body); err != nil {
			t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	unsigned := false
	for k, v := range hdr {
		if k == "X-Unsigned" {
			unsigned = true
			continue
		}
		req.Header.Set(k, v)
	}
	switch body.(type) {
	case nil, *strings.Reader, *bytes.Reader, *bytes.Buffer:
	default: // a reader of unknown length: keep the request chunked
		req.ContentLength = -1
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = nil
	}
	if !unsigned {
		sum := sha256.Sum256(b)
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: creds.ID, SecretAccessKey: creds.Secret},
			req, hex.EncodeToString(sum[:]), "kms", e2eRegion, time.Now())
		if err != nil {
			t.Fatal(err)
		}
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: out}
}

// rawCall posts body to operation op as an SDK would.
func (e *kmsEnv) rawCall(t testing.TB, op, body string) rawResponse {
	t.Helper()
	return e.rawCallAs(t, e.creds, op, body)
}

// rawCallAs is rawCall signed with creds.
func (e *kmsEnv) rawCallAs(t testing.TB, creds identity.AccessKey, op, body string) rawResponse {
	t.Helper()
	return e.rawRequestAs(t, creds, http.MethodPost, "/", map[string]string{
		"X-Amz-Target": "TrentService." + op,
		"Content-Type": "application/x-amz-json-1.1",
	}, strings.NewReader(body))
}

// expectRawError checks a raw error response: status, the AWS JSON error
// shape, Content-Type and request id. msg "-" means the body must have no
// message member.
func expectRawError(t testing.TB, r rawResponse, status int, typ, msg string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d (body %q)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Errorf("Content-Type %q, want application/x-amz-json-1.1", ct)
	}
	if r.header.Get("X-Amzn-Requestid") == "" {
		t.Errorf("no x-amzn-RequestId header")
	}
	m := r.json(t)
	if m["__type"] != typ {
		t.Errorf("__type %v, want %s (body %q)", m["__type"], typ, r.body)
	}
	switch msg {
	case "-":
		if _, ok := m["message"]; ok {
			t.Errorf("error has a message %q, want none", m["message"])
		}
	case "":
		if s, _ := m["message"].(string); s == "" {
			t.Errorf("error has no message")
		}
	default:
		if m["message"] != msg {
			t.Errorf("message:\n got %q\nwant %q", m["message"], msg)
		}
	}
}

// ---- secrets never leave ---------------------------------------------------

// leakGuard wraps the handler and keeps every response body so that the
// environment's cleanup can check that neither the root key nor any key
// material ever appeared in one, and that every KMS answer is as AWS's
// model says (checkResponsesConform).
type leakGuard struct {
	next   http.Handler
	mu     sync.Mutex
	bodies [][]byte
	kms    []kmsExchange
}

type recordingWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (w *recordingWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recordingWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.ResponseWriter.Write(b)
}

func (g *leakGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &recordingWriter{ResponseWriter: w}
	g.next.ServeHTTP(rw, r)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.bodies = append(g.bodies, rw.buf.Bytes())
	// A KMS call is one that names a TrentService operation; IAM and STS
	// answer in XML, and other paths are not KMS's.
	if op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService."); ok {
		status := rw.status
		if status == 0 {
			status = http.StatusOK
		}
		g.kms = append(g.kms, kmsExchange{op: op, status: status, body: rw.buf.Bytes()})
	}
}

func (g *leakGuard) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.bodies)
}

// secretForms returns s as raw bytes and in the text encodings a leak would
// most likely take.
func secretForms(s []byte) [][]byte {
	return [][]byte{
		s,
		[]byte(base64.StdEncoding.EncodeToString(s)),
		[]byte(base64.RawStdEncoding.EncodeToString(s)),
		[]byte(base64.RawURLEncoding.EncodeToString(s)),
		[]byte(hex.EncodeToString(s)),
	}
}

// materials opens every stored key version with the root key.
func (e *kmsEnv) materials(t testing.TB) [][]byte {
	t.Helper()
	root, err := keys.NewRootKey(e.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	err = e.store.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte("keyver/"), nil, func(k, v []byte) (bool, error) {
			var rec struct {
				Sealed []byte `json:"sealed"`
			}
			if err := json.Unmarshal(v, &rec); err != nil {
				return false, fmt.Errorf("version record %s: %w", k, err)
			}
			if rec.Sealed == nil {
				return true, nil // imported material that was deleted or expired
			}
			m, err := root.Open(k, rec.Sealed)
			if err != nil {
				return false, fmt.Errorf("version record %s does not open: %w", k, err)
			}
			// The material follows the header that binds it to its key's
			// spec, usage and origin (keyrepo/material.go).
			rest, ok := bytes.CutPrefix(m, []byte("openkms-material-v1\x00"))
			for i := 0; ok && i < 3; i++ {
				_, rest, ok = bytes.Cut(rest, []byte{0})
			}
			if !ok {
				return false, fmt.Errorf("version record %s is not bound to its key's attributes", k)
			}
			out = append(out, rest)
			return true, nil
		})
	})
	if err != nil {
		t.Errorf("reading key material: %v", err)
	}
	return out
}

func (e *kmsEnv) checkNoLeaks(t testing.TB) {
	t.Helper()
	secrets := [][]byte{e.rootKey}
	if !e.storeClosed {
		secrets = append(secrets, e.materials(t)...)
	}
	e.guard.mu.Lock()
	defer e.guard.mu.Unlock()
	for i, body := range e.guard.bodies {
		// Quoted, so that no base64 blob can match by chance.
		if bytes.Contains(bytes.ToLower(body), []byte(`"sealed`)) {
			t.Errorf("response %d mentions sealed data: %q", i, body)
		}
	secrets:
		for _, s := range secrets {
			for _, f := range secretForms(s) {
				if bytes.Contains(body, f) {
					t.Errorf("response %d contains secret key bytes: %q", i, body)
					break secrets
				}
			}
		}
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func mustRandom(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// sameInstant compares times as the wire carries them (milliseconds).
func sameInstant(a time.Time, b *time.Time) bool {
	return b != nil && a.Sub(*b).Abs() < time.Millisecond
}

// ciphertextKeyMsg is AWS's answer to a Decrypt whose key does not exist
// here, or may not be used by a caller of another account.
const ciphertextKeyMsg = "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access."
