package console_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/console"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/testsupport"
)

const (
	account = "111122223333"
	region  = "us-east-1"
)

var start = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

// recorder keeps the events of the calls, in order.
type recorder struct {
	mu       sync.Mutex
	events   []*audit.Event
	requests []*api.Request
	down     error  // the trail cannot record: Err, and Record refuses
	refuse   string // Record refuses the events of this operation
}

func (r *recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.down
}

func (r *recorder) Record(_ context.Context, e *audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down != nil {
		return r.down
	}
	if r.refuse != "" && e.Operation == r.refuse {
		return errors.New("the trail refuses the record of " + e.Operation)
	}
	r.events = append(r.events, e)
	return nil
}

// fail makes the trail refuse records (nil: take them again).
func (r *recorder) fail(err error) {
	r.mu.Lock()
	r.down = err
	r.mu.Unlock()
}

// observe keeps what the API reports to the metrics and request log.
func (r *recorder) observe(req *api.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, req)
}

func (r *recorder) last() *audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == 0 {
		return nil
	}
	return r.events[len(r.events)-1]
}

// env is a console in front of a real API handler, service and directory
// on a bbolt store, with a fake clock for the console's sessions.
type env struct {
	t     testing.TB
	srv   *httptest.Server
	clock *testsupport.Clock
	rec   *recorder
	logs  *lockedBuffer // what the server logged
	api   *api.Handler
	dir   *identity.Directory
	// dirCfg is dir's configuration: another node's directory on the
	// same store is identity.New(dirCfg).
	dirCfg identity.Config
	root   *identity.Principal
	creds  identity.AccessKey
}

// newEnv starts the console; opts change the directory's configuration.
func newEnv(t testing.TB, opts ...func(*identity.Config)) *env {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	k := make([]byte, 32)
	rand.Read(k)
	root, err := keys.NewRootKey(k)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	dirCfg := identity.Config{Store: st, RootKey: root, Region: region, Logger: logger}
	for _, o := range opts {
		o(&dirCfg)
	}
	dir := identity.New(dirCfg)
	svc, err := service.New(service.Config{Store: st, RootKey: root, Region: region, Logger: logger, PrincipalID: dir.PrincipalID})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := identity.BootstrapRoot(context.Background(), st, root, account)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	h := api.NewHandler(svc, dir, logger).WithAudit(rec, region).WithObserver(rec.observe)
	clock := testsupport.NewClock(start)
	c := console.New(console.Config{Backend: h, Directory: dir, Now: clock.Now, Logger: logger})
	mux := http.NewServeMux()
	mux.Handle("/console/", c)
	mux.Handle("/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p, err := dir.SignInWithAccessKey(context.Background(), creds.ID, creds.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, clock: clock, rec: rec, logs: logs, api: h, dir: dir, dirCfg: dirCfg, root: p, creds: creds}
}

// lockedBuffer is a log's output, written and read from several
// goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// browser is a client with its own cookie jar and the CSRF token of its
// session.
type browser struct {
	e    *env
	c    *http.Client
	csrf string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar}}
}

// post sends a console API request and decodes the answer into a map.
func (b *browser) post(path string, body any, hdr ...string) (int, map[string]any) {
	b.e.t.Helper()
	buf, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, b.e.srv.URL+"/console/api/"+path, bytes.NewReader(buf))
	req.Header.Set("Content-Type", "application/json")
	if b.csrf != "" {
		req.Header.Set("X-CSRF-Token", b.csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (b *browser) signInWithKey(akid, secret string) {
	b.e.t.Helper()
	status, out := b.post("signin", map[string]string{"accessKeyId": akid, "secretAccessKey": secret})
	if status != http.StatusOK {
		b.e.t.Fatalf("sign-in: %d %v", status, out)
	}
	b.csrf, _ = out["csrfToken"].(string)
}

func (b *browser) signInWithPassword(user, password string) (int, map[string]any) {
	b.e.t.Helper()
	status, out := b.post("signin", map[string]string{"account": account, "userName": user, "password": password})
	if status == http.StatusOK {
		b.csrf, _ = out["csrfToken"].(string)
	}
	return status, out
}

// createKey creates a key as the root through the console and returns its id.
func (b *browser) createKey() string {
	b.e.t.Helper()
	status, out := b.post("call/kms/CreateKey", map[string]string{"Description": "console test"})
	if status != http.StatusOK {
		b.e.t.Fatalf("CreateKey: %d %v", status, out)
	}
	return out["KeyMetadata"].(map[string]any)["KeyId"].(string)
}

func TestSignInAndCallAsTheRoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)
	if ev := e.rec.last(); ev.Operation != "ConsoleLogin" || ev.Source != "signin.amazonaws.com" || ev.ErrorCode != "" ||
		ev.Identity.ARN != identity.RootARN(account) || ev.UserAgent != console.UserAgent {
		t.Fatalf("sign-in recorded as %+v", ev)
	}
	id := b.createKey()
	ev := e.rec.last()
	if ev.Operation != "CreateKey" || ev.UserAgent != console.UserAgent || ev.Identity.ARN != identity.RootARN(account) || len(ev.Keys()) != 1 {
		t.Fatalf("CreateKey recorded as %+v (keys %v)", ev, ev.Keys())
	}
	status, out := b.post("call/kms/DescribeKey", map[string]string{"KeyId": id})
	if status != http.StatusOK || out["KeyMetadata"].(map[string]any)["KeyState"] != "Enabled" {
		t.Fatalf("DescribeKey: %d %v", status, out)
	}
	status, out = b.post("session", nil)
	if status != http.StatusOK || out["arn"] != identity.RootARN(account) {
		t.Fatalf("session: %d %v", status, out)
	}
}

func TestSessionCookie(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	buf := `{"accessKeyId":"` + e.creds.ID + `","secretAccessKey":"` + e.creds.Secret + `"}`
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/api/signin", strings.NewReader(buf))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if len(cs) != 1 {
		t.Fatalf("%d cookies set", len(cs))
	}
	c := cs[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Path != "/" {
		t.Fatalf("cookie over http: %+v", c)
	}
	if strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age") || strings.Contains(resp.Header.Get("Set-Cookie"), "Expires") {
		t.Fatalf("the session cookie outlives the browser session: %s", resp.Header.Get("Set-Cookie"))
	}
}

func TestSecureCookieOverHTTPS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := e.root
	h := console.New(console.Config{Backend: fakeBackend{}, Directory: fixedDirectory{p}, Secure: true})
	req := httptest.NewRequest(http.MethodPost, "https://kms.example/console/api/signin", strings.NewReader(`{"accessKeyId":"AKIAX","secretAccessKey":"s"}`))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	cs := w.Result().Cookies()
	if w.Code != http.StatusOK || len(cs) != 1 {
		t.Fatalf("%d, cookies %v", w.Code, cs)
	}
	if c := cs[0]; !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || !strings.HasPrefix(c.Name, "__Host-") {
		t.Fatalf("cookie over https: %+v", c)
	}
}

type fakeBackend struct{}

func (fakeBackend) ReadBody(w http.ResponseWriter, r *http.Request, maxBytes int64, _ func(*http.Request) (string, error)) ([]byte, func(), error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
	return b, func() {}, err
}

func (fakeBackend) Invoke(*http.Request, api.Call) (json.RawMessage, error) {
	return json.RawMessage("{}"), nil
}
func (fakeBackend) RecordSignIn(*http.Request, string, *identity.Principal, string, error) error {
	return nil
}
func (fakeBackend) MayChange() error                                              { return nil }
func (fakeBackend) BeginPasswordChange(*http.Request, string) *api.PasswordChange { return nil }
func (fakeBackend) VerifyTrail(context.Context, *identity.Principal) ([]audit.Report, error) {
	return nil, nil
}

type fixedDirectory struct{ p *identity.Principal }

func (d fixedDirectory) SignInWithPassword(context.Context, string, string, string) (*identity.Principal, error) {
	return d.p, nil
}
func (d fixedDirectory) SignInWithAccessKey(context.Context, string, string) (*identity.Principal, error) {
	return d.p, nil
}
func (d fixedDirectory) ChangePasswordAtSignIn(context.Context, string, string, string, string, func() error, func(*identity.Principal)) (*identity.Principal, error) {
	return d.p, nil
}
func (d fixedDirectory) Refresh(context.Context, *identity.Principal) (*identity.Principal, error) {
	return d.p, nil
}

func TestRequestsWithoutASessionOrCSRFTokenAreRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)
	id := b.createKey()
	n := len(e.rec.events)

	// No cookie at all.
	anon := e.browser()
	anon.csrf = b.csrf
	if status, out := anon.post("call/kms/DisableKey", map[string]string{"KeyId": id}); status != http.StatusUnauthorized || out["__type"] != "NotSignedIn" {
		t.Fatalf("without a cookie: %d %v", status, out)
	}
	// The cookie but a wrong CSRF token, and none.
	good := b.csrf
	for _, tok := range []string{good + "x", ""} {
		b.csrf = tok
		if status, out := b.post("call/kms/DisableKey", map[string]string{"KeyId": id}); status != http.StatusForbidden || out["__type"] != "InvalidCsrfToken" {
			t.Fatalf("with CSRF token %q: %d %v", tok, status, out)
		}
	}
	b.csrf = good
	// A foreign origin, a form post.
	if status, _ := b.post("call/kms/DisableKey", map[string]string{"KeyId": id}, "Origin", "https://evil.example"); status != http.StatusForbidden {
		t.Fatalf("from a foreign origin: %d", status)
	}
	if status, _ := b.post("call/kms/DisableKey", map[string]string{"KeyId": id}, "Content-Type", "application/x-www-form-urlencoded"); status != http.StatusUnsupportedMediaType {
		t.Fatalf("as a form: %d", status)
	}
	if len(e.rec.events) != n {
		t.Fatalf("refused requests reached the API: %d events recorded", len(e.rec.events)-n)
	}
	_, out := b.post("call/kms/DescribeKey", map[string]string{"KeyId": id})
	if st := out["KeyMetadata"].(map[string]any)["KeyState"]; st != "Enabled" {
		t.Fatalf("the key is %v after refused requests", st)
	}
}

func TestSessionsExpire(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)
	e.clock.Advance(console.DefaultIdleTimeout)
	if status, out := b.post("call/kms/ListKeys", nil); status != http.StatusUnauthorized || out["__type"] != "NotSignedIn" {
		t.Fatalf("after the idle timeout: %d %v", status, out)
	}

	b.signInWithKey(e.creds.ID, e.creds.Secret)
	for i := 0; i < 12*2; i++ { // 11 h 36 min
		e.clock.Advance(29 * time.Minute)
		b.post("call/kms/ListKeys", nil)
	}
	if status, out := b.post("call/kms/ListKeys", nil); status != http.StatusOK {
		t.Fatalf("a session in use for 11 h 36 min: %d %v", status, out)
	}
	e.clock.Advance(25 * time.Minute)
	if status, _ := b.post("call/kms/ListKeys", nil); status != http.StatusUnauthorized {
		t.Fatalf("a session used for more than 12 hours still answers %d", status)
	}
}

func TestSignOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)
	if status, _ := b.post("signout", nil); status != http.StatusOK {
		t.Fatalf("signout: %d", status)
	}
	if status, _ := b.post("call/kms/ListKeys", nil); status != http.StatusUnauthorized {
		t.Fatalf("after signing out: %d", status)
	}
}

// userWithPassword makes the IAM user name with a login profile of
// password, whose reset is required if reset.
func (e *env) userWithPassword(name, password string, reset bool) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.dir.CreateUser(ctx, e.root, name, ""); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.dir.CreateLoginProfile(ctx, e.root, name, password, reset); err != nil {
		e.t.Fatal(err)
	}
}

func TestFailedSignInsAreAuditedAndRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.userWithPassword("alice", "Correct-Horse-9", false)
	b := e.browser()
	for i := 0; i < 5; i++ {
		status, out := b.signInWithPassword("alice", "wrong-Password-1")
		if status != http.StatusUnauthorized || out["__type"] != "SignInFailed" {
			t.Fatalf("attempt %d: %d %v", i, status, out)
		}
		ev := e.rec.last()
		if ev.Operation != "ConsoleLogin" || ev.ErrorCode == "" || ev.Identity.Type != "" || !strings.Contains(string(ev.Params), "alice") {
			t.Fatalf("failed sign-in recorded as %+v params %s", ev, ev.Params)
		}
		if strings.Contains(string(ev.Params), "wrong-Password") {
			t.Fatal("the password tried is in the trail")
		}
	}
	n := len(e.rec.events)
	status, out := b.signInWithPassword("alice", "Correct-Horse-9")
	if status != http.StatusTooManyRequests {
		t.Fatalf("the right password past the limit: %d %v", status, out)
	}
	if len(e.rec.events) != n+1 || e.rec.last().ErrorCode != "Throttling" {
		t.Fatalf("a throttled sign-in was not recorded: %+v", e.rec.last())
	}
	e.clock.Advance(15 * time.Minute)
	if status, out := b.signInWithPassword("alice", "Correct-Horse-9"); status != http.StatusOK || out["arn"] != "arn:aws:iam::"+account+":user/alice" {
		t.Fatalf("after the window: %d %v", status, out)
	}
	// An unknown user fails the same way as a wrong password.
	if status, out := e.browser().signInWithPassword("nobody", "Correct-Horse-9"); status != http.StatusUnauthorized || out["__type"] != "SignInFailed" {
		t.Fatalf("unknown user: %d %v", status, out)
	}
}

// A failed sign-in records the name tried only when it is one the form
// asks for: an access key id, or an account id and the name of a user of
// that account; anything else, such as a secret access key pasted into
// the access key id field, or a password typed into the user name field
// (which has a name's shape as often as not), is recorded as CloudTrail
// records it, HIDDEN_DUE_TO_SECURITY_REASONS.
func TestFailedSignInNamesAreRecordedOnlyWhenNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const hidden = "HIDDEN_DUE_TO_SECURITY_REASONS"
	secret := e.creds.Secret
	if _, err := e.dir.CreateUser(context.Background(), e.root, "Alice.B@example+ops=1,x_y-z", ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		form map[string]string
		want string
	}{
		{map[string]string{"accessKeyId": secret, "secretAccessKey": "x"}, hidden},
		{map[string]string{"accessKeyId": "akia" + strings.ToLower(e.creds.ID[4:]), "secretAccessKey": "x"}, hidden},
		{map[string]string{"accessKeyId": e.creds.ID + "X", "secretAccessKey": "x"}, hidden},
		{map[string]string{"accessKeyId": "AKIA0123456789ABCDEF", "secretAccessKey": secret}, "AKIA0123456789ABCDEF"},
		{map[string]string{"accessKeyId": "ASIA0123456789ABCDEF", "secretAccessKey": secret}, "ASIA0123456789ABCDEF"},
		{map[string]string{"account": account, "userName": "Alice.B@example+ops=1,x_y-z", "password": "wrong-Password-1"}, account + "/alice.b@example+ops=1,x_y-z"},
		{map[string]string{"account": account, "userName": "ALICE.b@example+ops=1,x_y-z", "password": "wrong-Password-1"}, account + "/alice.b@example+ops=1,x_y-z"},
		// A password typed into the name field, with a name's shape but
		// no user's name.
		{map[string]string{"account": account, "userName": "Correct-Horse-9", "password": "Correct-Horse-9"}, hidden},
		{map[string]string{"account": account, "userName": "Correct-Horse-9", "password": "x"}, hidden},
		{map[string]string{"account": "999988887777", "userName": "Alice.B@example+ops=1,x_y-z", "password": "x"}, hidden},
		{map[string]string{"account": account, "userName": "Tr0ub4dor&3 horse", "password": "x"}, hidden},
		{map[string]string{"account": account, "userName": strings.Repeat("a", 65), "password": "x"}, hidden},
		{map[string]string{"account": "Correct-Horse-9", "userName": "alice", "password": "x"}, hidden},
		{map[string]string{"account": "11112222333", "userName": "alice", "password": "x"}, hidden},
		{map[string]string{"account": account, "userName": "", "password": "x"}, hidden},
		{map[string]string{"account": account, "userName": "a/b", "password": "x"}, hidden},
	} {
		status, out := e.browser().post("signin", tc.form)
		if status != http.StatusUnauthorized {
			t.Fatalf("%v: %d %v", tc.form, status, out)
		}
		ev := e.rec.last()
		var p map[string]string
		if err := json.Unmarshal(ev.Params, &p); err != nil || ev.Operation != "ConsoleLogin" || ev.ErrorCode != "SignInFailed" {
			t.Fatalf("%v: recorded %s %s with parameters %s (%v)", tc.form, ev.Operation, ev.ErrorCode, ev.Params, err)
		}
		if len(p) != 1 || p["userName"] != tc.want {
			t.Errorf("%v: parameters %s, want userName %q", tc.form, ev.Params, tc.want)
		}
		if strings.Contains(string(ev.Params), secret) {
			t.Errorf("%v: the secret access key is in the trail", tc.form)
		}
		if strings.Contains(strings.ToLower(string(ev.Params)), "correct-horse-9") {
			t.Errorf("%v: the password is in the trail", tc.form)
		}
	}
}

func TestAnotherPrincipalsKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	rootB := e.browser()
	rootB.signInWithKey(e.creds.ID, e.creds.Secret)
	id := rootB.createKey()
	// A key policy that names only bob: the root may still manage it,
	// alice (no identity policy) may not touch it.
	for _, u := range []string{"alice", "bob"} {
		if _, err := e.dir.CreateUser(ctx, e.root, u, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := e.dir.CreateLoginProfile(ctx, e.root, u, "Correct-Horse-9", false); err != nil {
			t.Fatal(err)
		}
	}
	alice := e.browser()
	if status, out := alice.signInWithPassword("alice", "Correct-Horse-9"); status != http.StatusOK {
		t.Fatalf("alice signs in: %d %v", status, out)
	}
	for _, op := range []string{"DescribeKey", "DisableKey", "Encrypt"} {
		in := map[string]string{"KeyId": id}
		if op == "Encrypt" {
			in["Plaintext"] = "aGVsbG8="
		}
		status, out := alice.post("call/kms/"+op, in)
		if status != http.StatusBadRequest || out["__type"] != "AccessDeniedException" {
			t.Fatalf("alice %s on the root's key: %d %v", op, status, out)
		}
		ev := e.rec.last()
		if ev.Operation != op || ev.ErrorCode != "AccessDeniedException" || ev.UserAgent != console.UserAgent || ev.Identity.UserName != "alice" {
			t.Fatalf("refused %s recorded as %+v", op, ev)
		}
	}
	// Nor may she read the trail, or learn whether it verifies.
	if status, out := alice.post("audit/verify", nil); status != http.StatusBadRequest || out["__type"] != "AccessDeniedException" {
		t.Fatalf("alice verifies the trail: %d %v", status, out)
	}
	if status, out := alice.post("call/trail/GetAuditRecords", map[string]any{}); status != http.StatusBadRequest || out["__type"] != "AccessDeniedException" {
		t.Fatalf("alice reads the trail: %d %v", status, out)
	}
	// Deleting her login profile ends her session.
	if err := e.dir.DeleteLoginProfile(ctx, e.root, "alice"); err != nil {
		t.Fatal(err)
	}
	if status, _ := alice.post("call/kms/ListKeys", nil); status != http.StatusUnauthorized {
		t.Fatalf("after the login profile is deleted: %d", status)
	}
}

// TestRevokedOnAnotherNode: a session's principal is read from the store,
// not from a cache that may lag another node's change. Once its access
// key is deleted there, or its identity policy, the session can make no
// change that outlives it, such as a new access key, though its node has
// not been told and its cache is young.
func TestRevokedOnAnotherNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *identity.Config) { c.CacheMaxAge = time.Hour })
	ctx := context.Background()
	other := identity.New(e.dirCfg) // another node on the same store
	const admin = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}`
	signIn := func(user string) *browser {
		t.Helper()
		b := e.signInNewUser(user, admin)
		// The session works, and its node has cached its credential.
		if status, out := b.post("call/iam/ListAccessKeys", nil); status != http.StatusOK {
			t.Fatalf("%s lists its keys: %d %v", user, status, out)
		}
		return b
	}

	alice := signIn("alice")
	keys, _, err := other.ListAccessKeys(ctx, e.root, "alice", "", 100)
	if err != nil || len(keys) != 1 {
		t.Fatalf("alice's keys: %v %v", keys, err)
	}
	if err := other.DeleteAccessKey(ctx, e.root, "alice", keys[0].ID); err != nil {
		t.Fatal(err)
	}
	if status, out := alice.post("call/iam/CreateAccessKey", nil); status != http.StatusUnauthorized || out["__type"] != "NotSignedIn" {
		t.Fatalf("CreateAccessKey after alice's key was deleted on another node: %d %v", status, out)
	}

	bob := signIn("bob")
	if err := other.DeletePolicy(ctx, e.root, "User", "bob", "p"); err != nil {
		t.Fatal(err)
	}
	if status, out := bob.post("call/iam/CreateAccessKey", nil); status != http.StatusForbidden || out["__type"] != "AccessDenied" {
		t.Fatalf("CreateAccessKey after bob's policy was deleted on another node: %d %v", status, out)
	}
	if keys, _, err := other.ListAccessKeys(ctx, e.root, "bob", "", 100); err != nil || len(keys) != 1 {
		t.Fatalf("bob's keys: %v %v", keys, err)
	}
}

// A console IAM call is made in us-east-1, IAM's one region, as a signed
// one is: a principal kept out of us-east-1 by aws:RequestedRegion is kept
// out of IAM in the console too, and one kept in eu-west-1 keeps the IAM
// it may use.
func TestIAMRequestedRegion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	signIn := e.signInNewUser
	notInUS := signIn("not-in-us", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"},
		{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}]}`)
	if status, out := notInUS.post("call/iam/CreateAccessKey", nil); status != http.StatusForbidden || out["__type"] != "AccessDenied" {
		t.Fatalf("CreateAccessKey by a user denied us-east-1: %d %v", status, out)
	}
	if keys, _, err := e.dir.ListAccessKeys(ctx, e.root, "not-in-us", "", 100); err != nil || len(keys) != 1 {
		t.Fatalf("not-in-us has %d access keys (%v), want its one", len(keys), err)
	}
	inUS := signIn("in-us", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*",
		"Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}]}`)
	if status, out := inUS.post("call/iam/ListAccessKeys", nil); status != http.StatusOK {
		t.Fatalf("ListAccessKeys by a user allowed IAM in us-east-1: %d %v", status, out)
	}
}

// signInNewUser makes user, with the identity policy policy and an access
// key, and signs in with that key in a browser of its own.
func (e *env) signInNewUser(user, policy string) *browser {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.dir.CreateUser(ctx, e.root, user, ""); err != nil {
		e.t.Fatal(err)
	}
	if err := e.dir.PutPolicy(ctx, e.root, "User", user, "p", policy); err != nil {
		e.t.Fatal(err)
	}
	k, secret, err := e.dir.CreateAccessKey(ctx, e.root, user)
	if err != nil {
		e.t.Fatal(err)
	}
	b := e.browser()
	b.signInWithKey(k.ID, secret)
	return b
}

// sendPart sends the headers of a console API request and the first
// bytes of its body.
func (e *env) sendPart(path, header string, body []byte) net.Conn {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /console/api/%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%s\r\n", path, e.srv.Listener.Addr(), header)
	if _, err := conn.Write(body); err != nil {
		e.t.Fatal(err)
	}
	return conn
}

// answer reads the answer to the request sent on conn, and whether the
// server then closed the connection: an error if no answer comes within
// 10 s.
func answer(conn net.Conn) (resp *http.Response, closed bool, err error) {
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		return nil, false, err
	}
	io.ReadAll(resp.Body)
	_, err = br.ReadByte()
	var ne net.Error
	return resp, err != nil && !(errors.As(err, &ne) && ne.Timeout()), nil
}

// TestRequestBodies: a request without a session, signing in included, is
// read as the API reads an unknown caller's: it is refused once its body
// needs more than 8 KiB, before the rest has arrived. A session's body may
// be larger, within the API's memory for bodies.
func TestRequestBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	chunk := func(n int) []byte { return fmt.Appendf(nil, "%x\r\n%s\r\n", n, bytes.Repeat([]byte(" "), n)) }
	for _, tc := range []struct {
		name, path, header string
		body               []byte
		status             int
	}{
		{"a sign-in announcing 256 KiB", "signin", "Content-Length: 262144\r\n", []byte("{"), http.StatusRequestEntityTooLarge},
		{"a sign-in of 9 KiB, chunked", "signin", "Transfer-Encoding: chunked\r\n", chunk(9 << 10), http.StatusRequestEntityTooLarge},
		{"a call announcing 256 KiB", "call/kms/ListKeys", "Content-Length: 262144\r\n", bytes.Repeat([]byte(" "), 9<<10), http.StatusUnauthorized},
		{"a call of 9 KiB, chunked", "call/kms/ListKeys", "Transfer-Encoding: chunked\r\n", chunk(9 << 10), http.StatusUnauthorized},
	} {
		resp, closed, err := answer(e.sendPart(tc.path, tc.header, tc.body))
		if err != nil {
			t.Fatalf("%s: no answer before the rest of the body: %v", tc.name, err)
		}
		if resp.StatusCode != tc.status || !closed {
			t.Fatalf("%s: %d, want %d; connection closed %v", tc.name, resp.StatusCode, tc.status, closed)
		}
	}

	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)
	id := b.createKey()
	desc := strings.Repeat("d", 20<<10)
	if status, out := b.post("call/kms/UpdateKeyDescription", map[string]string{"KeyId": id, "Description": desc}); status == http.StatusRequestEntityTooLarge {
		t.Fatalf("a session's body of 20 KiB: %d %v", status, out)
	}

	// It is held within the API's memory for bodies being received, and
	// given back when its client goes.
	u, _ := url.Parse(e.srv.URL)
	cookies := ""
	for _, c := range b.c.Jar.Cookies(u) {
		cookies += c.Name + "=" + c.Value
	}
	conn := e.sendPart("call/kms/ListKeys", "Content-Length: 102400\r\nCookie: "+cookies+"\r\nX-CSRF-Token: "+b.csrf+"\r\n",
		bytes.Repeat([]byte(" "), 40<<10))
	held := func(want func(int64) bool) int64 {
		t.Helper()
		for range 500 {
			if n := e.api.BodyBytes(); want(n) {
				return n
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("bodies being received hold %d bytes", e.api.BodyBytes())
		return 0
	}
	held(func(n int64) bool { return n >= 40<<10 })
	conn.Close()
	held(func(n int64) bool { return n == 0 })
}

// TestSlowBodiesWithoutASession: a request without a session whose body
// does not arrive at once is refused, and its connection closed, once the
// time an unknown caller's body has is up. It runs alone, not in
// parallel: a body sent at once must arrive within its 200 ms.
func TestSlowBodiesWithoutASession(t *testing.T) {
	e := newEnv(t)
	e.api.WithReadTimeout(200 * time.Millisecond) // below the 5 s for an unknown caller
	for _, path := range []string{"signin", "call/kms/ListKeys"} {
		resp, closed, err := answer(e.sendPart(path, "Content-Length: 200\r\n", bytes.Repeat([]byte(" "), 100)))
		if err != nil {
			t.Fatalf("%s: a slow body was not cut off: %v", path, err)
		}
		if resp.StatusCode < 400 || !closed {
			t.Fatalf("%s: a slow body: %d, connection closed %v", path, resp.StatusCode, closed)
		}
	}
	// A sign-in that arrives at once signs in.
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)
}

func TestIAMThroughTheConsole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)
	if status, out := b.post("call/iam/CreateUser", map[string]string{"UserName": "carol"}); status != http.StatusOK {
		t.Fatalf("CreateUser: %d %v", status, out)
	}
	if status, out := b.post("call/iam/CreateLoginProfile", map[string]string{"UserName": "carol", "Password": "short"}); status != http.StatusBadRequest || out["__type"] != "PasswordPolicyViolation" {
		t.Fatalf("a short password: %d %v", status, out)
	}
	if ev := e.rec.last(); ev.Source != "iam.amazonaws.com" || strings.Contains(string(ev.Params), "short") {
		t.Fatalf("CreateLoginProfile recorded as %+v %s", ev, ev.Params)
	}
	status, out := b.post("call/iam/ListUsers", nil)
	users, _ := out["Users"].([]any)
	if status != http.StatusOK || len(users) != 1 {
		t.Fatalf("ListUsers: %d %v", status, out)
	}
	// The members are named as IAM names them, in JSON as in XML.
	status, out = b.post("call/iam/CreateAccessKey", map[string]string{"UserName": "carol"})
	key, _ := out["AccessKey"].(map[string]any)
	if status != http.StatusOK || !strings.HasPrefix(key["AccessKeyId"].(string), "AKIA") || key["SecretAccessKey"] == "" {
		t.Fatalf("CreateAccessKey: %d %v", status, out)
	}
	_, out = b.post("call/iam/ListAccessKeys", map[string]string{"UserName": "carol"})
	if keys, _ := out["AccessKeyMetadata"].([]any); len(keys) != 1 || keys[0].(map[string]any)["AccessKeyId"] != key["AccessKeyId"] {
		t.Fatalf("ListAccessKeys: %v", out)
	}
	if status, _ := b.post("call/iam/AssumeRole", map[string]string{}); status != http.StatusBadRequest {
		t.Fatalf("an STS action through the IAM route: %d", status)
	}
}

func TestPagesAndHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The page and every file it names.
	paths := []string{"/console/"}
	resp, err := http.Get(e.srv.URL + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range regexp.MustCompile(`(?:src|href)="(static/[^"]+)"`).FindAllStringSubmatch(string(page), -1) {
		paths = append(paths, "/console/"+m[1])
	}
	if len(paths) < 4 {
		t.Fatalf("the page names %d files", len(paths)-1)
	}
	for _, path := range paths {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("GET %s: Content-Security-Policy %q", path, csp)
		}
		if path == "/console/" {
			page := string(body)
			if regexp.MustCompile(`<script>|<script [^>]*>[^<]|\son[a-z]+=|style=|<style`).MatchString(page) {
				t.Fatal("the page has inline script or style")
			}
		}
	}
	for _, path := range []string{"/console/static/", "/console/static/../console.go", "/console/nothing"} {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	resp, err = http.Get(e.srv.URL + "/console/api/session")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET of an API endpoint: %d", resp.StatusCode)
	}
}

func TestRateLimitIgnoresTheCaseOfNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.userWithPassword("erin", "Correct-Horse-9", false)
	b := e.browser()
	for _, name := range []string{"erin", "Erin", "ERIN", "eRin", "erIN"} {
		if status, _ := b.signInWithPassword(name, "Wrong-Password-1"); status != http.StatusUnauthorized {
			t.Fatalf("%s: %d", name, status)
		}
	}
	if status, _ := b.signInWithPassword("ErIn", "Correct-Horse-9"); status != http.StatusTooManyRequests {
		t.Fatalf("five failures under different cases of one name did not reach its limit: %d", status)
	}
}

func TestSigningInAgainEndsTheOldSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)
	u, _ := url.Parse(e.srv.URL)
	old := b.c.Jar.Cookies(u)
	b.signInWithKey(e.creds.ID, e.creds.Secret)
	stale := e.browser()
	stale.c.Jar.SetCookies(u, old)
	stale.csrf = b.csrf
	if status, _ := stale.post("session", nil); status != http.StatusUnauthorized {
		t.Fatalf("the session from before signing in again still answers %d", status)
	}
	if status, _ := b.post("session", nil); status != http.StatusOK {
		t.Fatalf("the new session answers %d", status)
	}
}

func TestConsoleCallsAreReportedLikeSignedCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)
	b.createKey()
	b.post("call/kms/DescribeKey", map[string]string{"KeyId": "alias/none"})
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	if len(e.rec.requests) != 2 {
		t.Fatalf("%d calls reported, want 2", len(e.rec.requests))
	}
	ok, refused := e.rec.requests[0], e.rec.requests[1]
	if ok.Operation != "CreateKey" || !ok.Known || ok.Status != http.StatusOK || ok.Code != "ok" || ok.Principal != identity.RootARN(account) {
		t.Fatalf("CreateKey reported as %+v", ok)
	}
	if refused.Operation != "DescribeKey" || refused.Status != http.StatusBadRequest || refused.Code != "NotFoundException" {
		t.Fatalf("a refused DescribeKey reported as %+v", refused)
	}
}

func TestPasswordResetAtSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.userWithPassword("frank", "Temporary-Pass-1", true)
	b := e.browser()
	signIn := func(password, newPassword string) (int, map[string]any) {
		return b.post("signin", map[string]string{"account": account, "userName": "frank", "password": password, "newPassword": newPassword})
	}
	for range 6 { // more than the failure limit: a right password is no failure
		if status, out := signIn("Temporary-Pass-1", ""); status != http.StatusForbidden || out["__type"] != "PasswordResetRequired" {
			t.Fatalf("the temporary password: %d %v", status, out)
		}
	}
	if ev := e.rec.last(); ev.Operation != "ConsoleLogin" || ev.ErrorCode != "PasswordResetRequired" {
		t.Fatalf("recorded as %+v", ev)
	}
	if status, _ := b.post("session", nil); status != http.StatusUnauthorized {
		t.Fatalf("a session exists before the password is changed: %d", status)
	}
	if status, out := signIn("Wrong-Pass-1", "Brand-New-Pass-2"); status != http.StatusUnauthorized || out["__type"] != "SignInFailed" {
		t.Fatalf("a change with the wrong password: %d %v", status, out)
	}
	if status, out := signIn("Temporary-Pass-1", "weak"); status != http.StatusBadRequest || out["__type"] != "PasswordPolicyViolation" {
		t.Fatalf("a weak new password: %d %v", status, out)
	}
	if status, out := signIn("Temporary-Pass-1", "Temporary-Pass-1"); status != http.StatusBadRequest || out["__type"] != "PasswordPolicyViolation" {
		t.Fatalf("the same password again: %d %v", status, out)
	}
	// While the trail cannot record, the password is not changed: it
	// would stay changed without its record.
	e.rec.fail(errors.New("the trail is down"))
	if status, out := signIn("Temporary-Pass-1", "Brand-New-Pass-2"); status != http.StatusInternalServerError {
		t.Fatalf("a change while the trail cannot record: %d %v", status, out)
	}
	e.rec.fail(nil)
	if lp, err := e.dir.GetLoginProfile(ctx, e.root, "frank"); err != nil || !lp.PasswordResetRequired {
		t.Fatalf("after a change refused while the trail could not record: %+v %v", lp, err)
	}
	if status, out := signIn("Temporary-Pass-1", ""); status != http.StatusForbidden || out["__type"] != "PasswordResetRequired" {
		t.Fatalf("the temporary password after a change refused while the trail could not record: %d %v", status, out)
	}
	if status, out := signIn("Temporary-Pass-1", "Brand-New-Pass-2"); status != http.StatusOK || out["userName"] != "frank" {
		t.Fatalf("the change: %d %v", status, out)
	}
	// Recorded as CloudTrail records it: the change, then the sign-in.
	e.rec.mu.Lock()
	evs := e.rec.events[len(e.rec.events)-2:]
	e.rec.mu.Unlock()
	if ev := evs[0]; ev.Operation != "ChangePassword" || ev.Source != "iam.amazonaws.com" || ev.Region != "us-east-1" || ev.ErrorCode != "" ||
		ev.Identity.Type != "IAMUser" || ev.Identity.UserName != "frank" || ev.Params != nil {
		t.Fatalf("the change recorded as %+v", ev)
	}
	if ev := evs[1]; ev.Operation != "ConsoleLogin" || ev.ErrorCode != "" || ev.Identity.UserName != "frank" {
		t.Fatalf("the sign-in recorded as %+v", ev)
	}
	if lp, err := e.dir.GetLoginProfile(ctx, e.root, "frank"); err != nil || lp.PasswordResetRequired {
		t.Fatalf("after the change: %+v %v", lp, err)
	}
	other := e.browser()
	if status, _ := other.signInWithPassword("frank", "Temporary-Pass-1"); status != http.StatusUnauthorized {
		t.Fatalf("the old password after the change: %d", status)
	}
	if status, _ := other.signInWithPassword("frank", "Brand-New-Pass-2"); status != http.StatusOK {
		t.Fatalf("the new password: %d", status)
	}
}

// A password changed at sign-in whose ChangePassword record the trail
// then refused (it failed after the change began) stays changed: the
// user is told so, not to retry with the temporary password, which would
// fail and count against it; the server logs the change left without its
// record; and the new password signs in once the trail records.
func TestPasswordChangedWithoutItsRecord(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.userWithPassword("frank", "Temporary-Pass-1", true)
	b := e.browser()
	e.rec.mu.Lock()
	e.rec.refuse = "ChangePassword"
	e.rec.mu.Unlock()
	status, out := b.post("signin", map[string]string{"account": account, "userName": "frank", "password": "Temporary-Pass-1", "newPassword": "Brand-New-Pass-2"})
	if msg, _ := out["message"].(string); status != http.StatusInternalServerError || !strings.Contains(msg, "Your password was changed") {
		t.Fatalf("the change whose record was refused: %d %v", status, out)
	}
	if status, _ := b.post("session", nil); status != http.StatusUnauthorized {
		t.Fatalf("a session began without the change's record: %d", status)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "without its ChangePassword record") || !strings.Contains(logs, "userName=frank") {
		t.Fatalf("the server's log says nothing of the password changed without its record:\n%s", logs)
	}
	e.rec.mu.Lock()
	e.rec.refuse = ""
	e.rec.mu.Unlock()
	if status, out := b.signInWithPassword("frank", "Brand-New-Pass-2"); status != http.StatusOK {
		t.Fatalf("the new password: %d %v", status, out)
	}
}

// While the trail cannot record, a caller who does not know the password
// does not reach the refusal of the change: it cannot have the server log
// one line per request, nor tell the trail is down by its answer.
func TestPasswordChangeWhileTheTrailIsDownNeedsThePassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.userWithPassword("frank", "Temporary-Pass-1", true)
	e.rec.fail(errors.New("the trail is down"))
	for range 20 {
		e.browser().post("signin", map[string]string{"account": account, "userName": "frank", "password": "Wrong-Pass-1", "newPassword": "Brand-New-Pass-2"})
	}
	if n := strings.Count(e.logs.String(), "refused before it begins"); n != 0 {
		t.Fatalf("20 attempts with a wrong password logged %d refusals of the change", n)
	}
}

// eventsOfWrites is a store that notes the call whose event the context
// of each write transaction carries: what internal/outbox keeps with the
// change.
type eventsOfWrites struct {
	store.Store
	mu  sync.Mutex
	ops []string // the operation of each write's call, "" for none
}

func (s *eventsOfWrites) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Update(ctx, func(tx store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		// As the outbox sees it: once the transaction's work is done.
		op := ""
		if ev := audit.FromContext(ctx); ev != nil && ev.Identity.Type != "" {
			op = ev.Operation
		}
		s.mu.Lock()
		s.ops = append(s.ops, op)
		s.mu.Unlock()
		return nil
	})
}

// An IAM call made through the console changes the store with its
// record at hand, as a signed one does: a server killed between the
// change and the record leaves the record to be written later.
func TestConsoleIAMChangesCarryTheirRecords(t *testing.T) {
	t.Parallel()
	var writes *eventsOfWrites
	e := newEnv(t, func(c *identity.Config) {
		writes = &eventsOfWrites{Store: c.Store}
		c.Store = writes
	})
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)
	writes.mu.Lock()
	writes.ops = nil
	writes.mu.Unlock()
	if status, out := b.post("call/iam/CreateUser", map[string]string{"UserName": "grace"}); status != http.StatusOK {
		t.Fatalf("CreateUser: %d %v", status, out)
	}
	writes.mu.Lock()
	defer writes.mu.Unlock()
	if !slices.Contains(writes.ops, "CreateUser") {
		t.Fatalf("the writes of CreateUser carried the events of %q, not its own", writes.ops)
	}
}

// A password changed at sign-in changes the store with its ChangePassword
// record at hand, naming the user, as a call's change does: a server
// killed between the change and the record leaves the record to be
// written later.
func TestPasswordChangedAtSignInCarriesItsRecord(t *testing.T) {
	t.Parallel()
	var writes *eventsOfWrites
	e := newEnv(t, func(c *identity.Config) {
		writes = &eventsOfWrites{Store: c.Store}
		c.Store = writes
	})
	e.userWithPassword("hana", "Temporary-Pass-1", true)
	writes.mu.Lock()
	writes.ops = nil
	writes.mu.Unlock()
	b := e.browser()
	status, out := b.post("signin", map[string]string{"account": account, "userName": "hana", "password": "Temporary-Pass-1", "newPassword": "Brand-New-Pass-2"})
	if status != http.StatusOK {
		t.Fatalf("the change: %d %v", status, out)
	}
	writes.mu.Lock()
	defer writes.mu.Unlock()
	if !slices.Contains(writes.ops, "ChangePassword") {
		t.Fatalf("the writes of the password change carried the events of %q, not its own", writes.ops)
	}
	if ev := e.rec.last(); ev.Operation != "ConsoleLogin" || ev.Identity.UserName != "hana" {
		t.Fatalf("the sign-in recorded as %+v", ev)
	}
}

// One session used by several requests at once (a page loads a key's
// details in parallel); run with -race.
func TestOneSessionConcurrently(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)
	var wg sync.WaitGroup
	statuses := make(chan int, 16)
	for range 16 {
		wg.Go(func() {
			status, _ := b.post("call/kms/ListKeys", nil)
			statuses <- status
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK {
			t.Fatalf("a concurrent call answered %d", s)
		}
	}
}

// A KMS call names its region in the X-KMS-Region header; the API refuses
// a region the server does not serve, and changes nothing.
func TestCallRegionHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)
	status, out := b.post("call/kms/CreateKey", map[string]string{}, "X-KMS-Region", "eu-west-1")
	if status != http.StatusBadRequest || out["__type"] != "ValidationException" || out["message"] != "This server does not serve the Region eu-west-1." {
		t.Fatalf("CreateKey in a region not served: %d %v", status, out)
	}
	status, out = b.post("call/kms/ListKeys", map[string]string{}, "X-KMS-Region", region)
	if keys, _ := out["Keys"].([]any); status != http.StatusOK || len(keys) != 0 {
		t.Fatalf("the refused CreateKey made a key: %d %v", status, out)
	}
	status, out = b.post("call/kms/CreateKey", map[string]string{}, "X-KMS-Region", region)
	md, _ := out["KeyMetadata"].(map[string]any)
	if status != http.StatusOK || !strings.HasPrefix(fmt.Sprint(md["Arn"]), "arn:aws:kms:"+region+":") {
		t.Fatalf("CreateKey in %s: %d %v", region, status, out)
	}
}

// TestSimultaneousSignInsAreRateLimited: guesses sent at once are limited
// as guesses sent one after another are: no more than the limit are
// checked, and the right password sent after them does not get in. (Sent
// among them, the right password may be one of the first checked, and
// then gets in and forgets the failures, as its owner knows it.)
func TestSimultaneousSignInsAreRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.userWithPassword("dave", "Correct-Horse-9", false)
	signIn := func(password string) int {
		body, _ := json.Marshal(map[string]string{"account": account, "userName": "dave", "password": password})
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/console/api/signin", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const n, perName = 40, 5 // the limit for one user name
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = signIn("wrong-Password-1")
		}()
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count[http.StatusUnauthorized] > perName || count[http.StatusTooManyRequests] < n-perName {
		t.Fatalf("%d simultaneous sign-ins answered %v: more than %d were checked", n, count, perName)
	}
	if status := signIn("Correct-Horse-9"); status != http.StatusTooManyRequests {
		t.Fatalf("the right password after the limit was reached: %d, want 429", status)
	}
}

// TestLoopbackConsoleRefusesOtherHostNames: a console on loopback answers
// only to loopback names, so a page whose name was rebound to 127.0.0.1
// cannot use it as a page of its own site.
func TestLoopbackConsoleRefusesOtherHostNames(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := console.New(console.Config{Backend: fakeBackend{}, Directory: fixedDirectory{e.root}, LoopbackOnly: true})
	open := console.New(console.Config{Backend: fakeBackend{}, Directory: fixedDirectory{e.root}})
	for host, want := range map[string]int{
		"127.0.0.1:8400":        http.StatusOK,
		"localhost:8400":        http.StatusOK,
		"LOCALHOST.":            http.StatusOK,
		"app.localhost:8400":    http.StatusOK,
		"[::1]:8400":            http.StatusOK,
		"127.9.9.9":             http.StatusOK,
		"rebind.example:8400":   http.StatusMisdirectedRequest,
		"localhost.example.com": http.StatusMisdirectedRequest,
		"10.0.0.1:8400":         http.StatusMisdirectedRequest,
		"":                      http.StatusMisdirectedRequest,
	} {
		for _, path := range []string{"/console/", "/console/api/signin"} {
			method, body := http.MethodGet, ""
			if strings.HasSuffix(path, "signin") {
				method, body = http.MethodPost, `{"accessKeyId":"AKIAX","secretAccessKey":"s"}`
			}
			req := httptest.NewRequest(method, "http://x"+path, strings.NewReader(body))
			req.Host = host
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != want {
				t.Errorf("%s %s with Host %q: %d, want %d", method, path, host, w.Code, want)
			}
			if host == "rebind.example:8400" {
				w := httptest.NewRecorder()
				open.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					t.Errorf("without LoopbackOnly, Host %q: %d", host, w.Code)
				}
			}
		}
	}
}

// blockingBackend's trail verification waits until released.
type blockingBackend struct {
	fakeBackend
	started, release chan struct{}
}

func (b blockingBackend) VerifyTrail(context.Context, *identity.Principal) ([]audit.Report, error) {
	b.started <- struct{}{}
	<-b.release
	return nil, nil
}

// TestOneTrailVerificationAtATime: a verification reads the whole trail,
// so a second request while one runs is refused rather than queued.
func TestOneTrailVerificationAtATime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := blockingBackend{started: make(chan struct{}), release: make(chan struct{})}
	h := console.New(console.Config{Backend: b, Directory: fixedDirectory{e.root}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	post := func(path, body, csrf string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/console/api/"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", csrf)
		resp, err := c.Do(req)
		if err != nil {
			t.Error(err)
			return 0, nil
		}
		defer resp.Body.Close()
		out := map[string]any{}
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, out := post("signin", `{"accessKeyId":"AKIAX","secretAccessKey":"s"}`, "")
	csrf, _ := out["csrfToken"].(string)
	if status != http.StatusOK || csrf == "" {
		t.Fatalf("sign-in: %d %v", status, out)
	}
	first := make(chan int)
	go func() {
		s, _ := post("audit/verify", "{}", csrf)
		first <- s
	}()
	<-b.started
	if status, out := post("audit/verify", "{}", csrf); status != http.StatusTooManyRequests || out["__type"] != "Throttling" {
		t.Errorf("a second verification while one runs: %d %v", status, out)
	}
	close(b.release)
	if s := <-first; s != http.StatusOK {
		t.Errorf("the first verification: %d", s)
	}
	go func() { <-b.started }()
	if status, out := post("audit/verify", "{}", csrf); status != http.StatusOK {
		t.Errorf("a verification after the first ended: %d %v", status, out)
	}
}

// TestIAMCallsValidatedAsSigned: an IAM action called through the console
// is validated against AWS's IAM model as a signed request is, every
// violation named at once, and a parameter the server does not support
// is refused rather than left out: a user asked for with a permissions
// boundary is not made without one.
func TestIAMCallsValidatedAsSigned(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.signInNewUser("admin", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}`)
	for _, tc := range []struct {
		path   string
		params map[string]string
		msg    string
	}{
		{"call/iam/GetUserPolicy", map[string]string{"UserName": "a b"},
			"2 validation errors detected: Value 'a b' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+; " +
				"Value null at 'policyName' failed to satisfy constraint: Member must not be null"},
		{"call/iam/CreateUser", map[string]string{"UserName": "bounded", "PermissionsBoundary": "arn:aws:iam::aws:policy/PowerUserAccess"},
			"Permissions boundaries are not supported by this server."},
	} {
		status, out := b.post(tc.path, tc.params)
		if status != http.StatusBadRequest || out["__type"] != "ValidationError" || out["message"] != tc.msg {
			t.Errorf("%s %v: %d %v, want 400 ValidationError %q", tc.path, tc.params, status, out, tc.msg)
		}
	}
	if _, err := e.dir.GetUser(context.Background(), e.root, "bounded"); err == nil {
		t.Error("the user asked for with a permissions boundary was made without one")
	}
}

// brokenDirectory is a directory whose store fails every sign-in.
type brokenDirectory struct{ console.Directory }

var errStoreDown = errors.New("store: read kms.db: input/output error")

func (brokenDirectory) SignInWithPassword(context.Context, string, string, string) (*identity.Principal, error) {
	return nil, errStoreDown
}

func (brokenDirectory) SignInWithAccessKey(context.Context, string, string) (*identity.Principal, error) {
	return nil, errStoreDown
}

func (brokenDirectory) ChangePasswordAtSignIn(context.Context, string, string, string, string, func() error, func(*identity.Principal)) (*identity.Principal, error) {
	return nil, errStoreDown
}

// A sign-in that fails inside (the store failing, not the credentials)
// is recorded as a failed ConsoleLogin, with the error it is answered,
// as every other attempt is: it wrote no record.
func TestSignInThatFailsInsideIsRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.userWithPassword("alice", "Correct-Horse-9", false)
	c := console.New(console.Config{Backend: e.api, Directory: brokenDirectory{e.dir}, Now: e.clock.Now, Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	mux := http.NewServeMux()
	mux.Handle("/console/", c)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	broken := *e
	broken.srv = srv
	for _, tc := range []struct {
		name  string
		body  map[string]string
		tried string
	}{
		{"with an access key", map[string]string{"accessKeyId": e.creds.ID, "secretAccessKey": e.creds.Secret}, e.creds.ID},
		{"with a password", map[string]string{"account": account, "userName": "alice", "password": "Correct-Horse-9"}, account + "/alice"},
		{"with a new password", map[string]string{"account": account, "userName": "alice", "password": "Correct-Horse-9", "newPassword": "Brand-New-Pass-2"}, account + "/alice"},
	} {
		n := len(e.rec.events)
		status, out := broken.browser().post("signin", tc.body)
		if status != http.StatusInternalServerError || out["__type"] != "InternalError" {
			t.Errorf("a sign-in %s that the store fails: %d %v", tc.name, status, out)
		}
		if got := len(e.rec.events); got != n+1 {
			t.Fatalf("a sign-in %s that the store fails: %d records written, want 1", tc.name, got-n)
		}
		ev := e.rec.last()
		if ev.Operation != "ConsoleLogin" || ev.ErrorCode != "InternalError" || ev.Identity.Type != "" || !strings.Contains(string(ev.Params), tc.tried) {
			t.Fatalf("a sign-in %s that the store fails, recorded as %+v params %s", tc.name, ev, ev.Params)
		}
		if strings.Contains(string(ev.Params), "Correct-Horse") || strings.Contains(string(ev.Params), e.creds.Secret) {
			t.Fatalf("a secret tried is in the trail: %s", ev.Params)
		}
	}
	if !strings.Contains(e.logs.String(), errStoreDown.Error()) {
		t.Errorf("the server's log does not say why the sign-in failed:\n%s", e.logs)
	}
}
