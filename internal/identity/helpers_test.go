package identity_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/testsupport"
)

const (
	acct   = "111122223333"
	other  = "444455556666"
	region = "us-east-1"
)

// start is where every fixture's clock begins.
var start = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

const (
	allowAll = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`
	allowIAM = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:*","sts:*"],"Resource":"*"}]}`
	denyIAM  = `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iam:*","Resource":"*"}]}`
)

// trustAccount is a trust policy that trusts the account's root (and so
// anyone in it whose identity policies allow sts:AssumeRole).
func trustAccount(account string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + account + `:root"},"Action":"sts:AssumeRole"}]}`
}

// trustPrincipal is a trust policy that names one principal.
func trustPrincipal(arn string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + arn + `"},"Action":"sts:AssumeRole"}]}`
}

// fixture is a Directory over a bbolt store in a temporary directory,
// with a fake clock and the roots of two accounts.
type fixture struct {
	t      testing.TB
	ctx    context.Context
	st     store.Store
	root   *keys.RootKey
	clock  *testsupport.Clock
	d      *identity.Directory
	rootAK identity.AccessKey  // the root of acct
	root1  *identity.Principal // the root of acct, as Authenticate returns it
	root2  *identity.Principal // the root of other
	cfg    identity.Config

	assumerP *identity.Principal // made by assumer
}

func newFixture(t testing.TB) *fixture {
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
	f := &fixture{t: t, ctx: context.Background(), st: st, root: root, clock: testsupport.NewClock(start)}
	f.cfg = identity.Config{Store: st, RootKey: root, Region: region, Now: f.clock.Now}
	f.d = identity.New(f.cfg)
	if f.rootAK, err = identity.BootstrapRoot(f.ctx, st, root, acct); err != nil {
		t.Fatal(err)
	}
	ak2, err := identity.BootstrapRoot(f.ctx, st, root, other)
	if err != nil {
		t.Fatal(err)
	}
	f.root1 = f.auth(f.rootAK.ID, f.rootAK.Secret, "")
	f.root2 = f.auth(ak2.ID, ak2.Secret, "")
	return f
}

// request is a signed IAM-style request: POST with a form body.
func (f *fixture) request(service, akid, secret, token string, at time.Time, body string) (*http.Request, []byte) {
	f.t.Helper()
	b := []byte(body)
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8400/", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256(b)
	creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token}
	if err := v4.NewSigner().SignHTTP(f.ctx, creds, req, hex.EncodeToString(sum[:]), service, region, at); err != nil {
		f.t.Fatal(err)
	}
	return req, b
}

// authenticate signs a request now with the credentials given and returns
// what Authenticate makes of it.
func (f *fixture) authenticate(akid, secret, token string) (*identity.Principal, error) {
	req, body := f.request("sts", akid, secret, token, f.clock.Now(), "Action=GetCallerIdentity&Version=2011-06-15")
	p, _, err := f.d.Authenticate(f.ctx, req, body, "sts")
	return p, err
}

// auth is authenticate that must succeed.
func (f *fixture) auth(akid, secret, token string) *identity.Principal {
	f.t.Helper()
	p, err := f.authenticate(akid, secret, token)
	if err != nil {
		f.t.Fatalf("authenticating %s: %v", akid, err)
	}
	return p
}

// user creates an IAM user in acct with an access key and the inline
// policies given (name -> document), and returns it as it authenticates.
func (f *fixture) user(name string, policies map[string]string) (*identity.Principal, *identity.AccessKeyInfo, string) {
	f.t.Helper()
	return f.userOf(f.root1, name, policies)
}

// assumer is a user of acct whose identity policy allows everything: the
// principal tests assume roles as, since an account's root may not.
func (f *fixture) assumer() *identity.Principal {
	f.t.Helper()
	if f.assumerP == nil {
		f.assumerP, _, _ = f.user("role-assumer", map[string]string{"all": allowAll})
	}
	return f.assumerP
}

// userOf is user in the account of root.
func (f *fixture) userOf(root *identity.Principal, name string, policies map[string]string) (*identity.Principal, *identity.AccessKeyInfo, string) {
	f.t.Helper()
	if _, err := f.d.CreateUser(f.ctx, root, name, ""); err != nil {
		f.t.Fatal(err)
	}
	for pn, doc := range policies {
		if err := f.d.PutPolicy(f.ctx, root, "User", name, pn, doc); err != nil {
			f.t.Fatal(err)
		}
	}
	k, secret, err := f.d.CreateAccessKey(f.ctx, root, name)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.auth(k.ID, secret, ""), k, secret
}

// wantErr fails unless err is an *fault.Error with code c and, unless
// msg is empty, exactly the message msg.
func wantErr(t testing.TB, err error, c fault.Code, msg string) {
	t.Helper()
	e, ok := fault.As(err)
	if !ok {
		t.Fatalf("got %v (%T), want an identity error with code %d", err, err, c)
	}
	if e.Code != c || (msg != "" && e.Message != msg) {
		t.Fatalf("got code %d %q, want code %d %q", e.Code, e.Message, c, msg)
	}
	if !errors.Is(err, &fault.Error{Code: c}) {
		t.Fatalf("errors.Is does not match %v with its own code", err)
	}
}

// check is wantErr for a table: c == 0 with msg == "" means success.
func check(t testing.TB, err error, c fault.Code, msg string) {
	t.Helper()
	if c == fault.Internal && msg == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	wantErr(t, err, c, msg)
}
