package identity_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
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

// newAccount opens a store in a temp dir, with a new root key, and makes
// an account whose root's access key it returns.
func newAccount(t testing.TB) (store.Store, *keys.RootKey, identity.AccessKey) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	k := make([]byte, 32)
	rand.Read(k)
	root, _ := keys.NewRootKey(k)
	ak, err := identity.BootstrapRoot(context.Background(), st, root, "111122223333")
	if err != nil {
		t.Fatal(err)
	}
	return st, root, ak
}

// TestClockSkew checks the window of signing times against an injected
// clock: 5 minutes for KMS by default, as configured when set, and 15
// minutes for IAM and STS whatever the KMS window.
func TestClockSkew(t *testing.T) {
	t.Parallel()
	st, root, ak := newAccount(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := testsupport.NewClock(now)

	signed := func(service string, at time.Time) (*http.Request, []byte) {
		body := []byte(`{}`)
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8400/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: ak.ID, SecretAccessKey: ak.Secret}, req,
			hex.EncodeToString(sum[:]), service, "us-east-1", at); err != nil {
			t.Fatal(err)
		}
		return req, body
	}
	for _, tc := range []struct {
		name    string
		skew    time.Duration // 0: the default
		service string
		offset  time.Duration
		wantMsg string // "": accepted
	}{
		{"kms, default, 4m59s late", 0, "kms", -(5*time.Minute - time.Second), ""},
		{"kms, default, 5m01s late", 0, "kms", -(5*time.Minute + time.Second), "Signature expired: 20261204T115459Z is now earlier than 20261204T115500Z (20261204T120000Z - 5 min.)"},
		{"kms, default, 5m01s early", 0, "kms", 5*time.Minute + time.Second, "Signature not yet current: 20261204T120501Z is still later than 20261204T120500Z (20261204T120000Z + 5 min.)"},
		{"kms, 10 minutes, 9 late", 10 * time.Minute, "kms", -9 * time.Minute, ""},
		{"kms, 10 minutes, 11 early", 10 * time.Minute, "kms", 11 * time.Minute, "Signature not yet current: 20261204T121100Z is still later than 20261204T121000Z (20261204T120000Z + 10 min.)"},
		{"kms, 90 seconds, 2 minutes late", 90 * time.Second, "kms", -2 * time.Minute, "Signature expired: 20261204T115800Z is now earlier than 20261204T115830Z (20261204T120000Z - 1m30s.)"},
		{"iam keeps 15 minutes", 90 * time.Second, "iam", -14 * time.Minute, ""},
		{"sts keeps 15 minutes", 0, "sts", 16 * time.Minute, "Signature not yet current: 20261204T121600Z is still later than 20261204T121500Z (20261204T120000Z + 15 min.)"},
		{"kms, default, 5m late to the second", 0, "kms", -5 * time.Minute, ""},
		{"kms, default, 5m early to the second", 0, "kms", 5 * time.Minute, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := identity.New(identity.Config{Store: st, RootKey: root, Region: "us-east-1", Now: clock.Now, MaxClockSkew: tc.skew})
			req, body := signed(tc.service, now.Add(tc.offset))
			_, _, err := d.Authenticate(ctx, req, body, tc.service)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e, ok := fault.As(err)
			if !ok || e.Code != fault.SignatureDoesNotMatch || e.Message != tc.wantMsg {
				t.Fatalf("got %v, want SignatureDoesNotMatch %q", err, tc.wantMsg)
			}
		})
	}
}

// TestClockSkewWithinTheSecond: a signing time has whole seconds, and the
// window is judged at the seconds the refusal names, so that a server
// clock part-way through a second neither refuses a signature exactly at
// the limit nor says that a time is earlier than itself.
func TestClockSkewWithinTheSecond(t *testing.T) {
	t.Parallel()
	st, root, ak := newAccount(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 5, 0, 500_000_000, time.UTC)
	d := identity.New(identity.Config{Store: st, RootKey: root, Region: "us-east-1", Now: testsupport.NewClock(now).Now})
	authenticate := func(at time.Time) error {
		body := []byte(`{}`)
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8400/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: ak.ID, SecretAccessKey: ak.Secret}, req,
			hex.EncodeToString(sum[:]), "kms", "us-east-1", at); err != nil {
			t.Fatal(err)
		}
		_, _, err := d.Authenticate(ctx, req, body, "kms")
		return err
	}
	for _, at := range []time.Time{
		time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC),  // 5 minutes before 12:05:00
		time.Date(2026, 12, 4, 12, 10, 0, 0, time.UTC), // 5 minutes after
	} {
		if err := authenticate(at); err != nil {
			t.Errorf("signed at %v, the server's clock at %v: %v", at, now, err)
		}
	}
	for at, msg := range map[time.Time]string{
		time.Date(2026, 12, 4, 11, 59, 59, 0, time.UTC): "Signature expired: 20261204T115959Z is now earlier than 20261204T120000Z (20261204T120500Z - 5 min.)",
		time.Date(2026, 12, 4, 12, 10, 1, 0, time.UTC):  "Signature not yet current: 20261204T121001Z is still later than 20261204T121000Z (20261204T120500Z + 5 min.)",
	} {
		e, ok := fault.As(authenticate(at))
		if !ok || e.Code != fault.SignatureDoesNotMatch || e.Message != msg {
			t.Errorf("signed at %v: got %v, want SignatureDoesNotMatch %q", at, e, msg)
		}
	}
}

// TestOperationAndContentTypeMustBeSigned: a signature must cover
// X-Amz-Target and Content-Type whenever the request has them.
func TestOperationAndContentTypeMustBeSigned(t *testing.T) {
	t.Parallel()
	st, root, ak := newAccount(t)
	ctx := context.Background()
	d := identity.New(identity.Config{Store: st, RootKey: root, Region: "us-east-1"})
	body := []byte(`{}`)
	for _, tc := range []struct {
		name       string
		addAfter   string // header added after signing
		wantHeader string // "": accepted
	}{
		{"both signed", "", ""},
		{"target added after signing", "X-Amz-Target", "X-Amz-Target"},
		{"content type added after signing", "Content-Type", "Content-Type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8400/", bytes.NewReader(body))
			values := map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"}
			for h, v := range values {
				if h != tc.addAfter {
					req.Header.Set(h, v)
				}
			}
			sum := sha256.Sum256(body)
			if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: ak.ID, SecretAccessKey: ak.Secret}, req,
				hex.EncodeToString(sum[:]), "kms", "us-east-1", time.Now()); err != nil {
				t.Fatal(err)
			}
			if tc.addAfter != "" {
				req.Header.Set(tc.addAfter, values[tc.addAfter])
			}
			_, _, err := d.Authenticate(ctx, req, body, "kms")
			if tc.wantHeader == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e, ok := fault.As(err)
			if !ok || e.Code != fault.IncompleteSignature || !strings.Contains(e.Message, tc.wantHeader) {
				t.Fatalf("got %v, want IncompleteSignature naming %s", err, tc.wantHeader)
			}
		})
	}
}

// TestAuthenticateRefusals: each way a request can fail to say who it is
// from gets AWS's error, and a valid one gets its principal.
func TestAuthenticateRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	now := f.clock.Now()
	form := "Action=ListUsers&Version=2010-05-08"
	sign := func(service, region, akid, secret string) (*http.Request, []byte) {
		b := []byte(form)
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8400/", bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		sum := sha256.Sum256(b)
		if err := v4.NewSigner().SignHTTP(f.ctx, aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}, req,
			hex.EncodeToString(sum[:]), service, region, now); err != nil {
			t.Fatal(err)
		}
		return req, b
	}
	good := func(service string) func() (*http.Request, []byte) {
		return func() (*http.Request, []byte) { return sign(service, region, f.rootAK.ID, f.rootAK.Secret) }
	}
	const badSignature = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	for _, tc := range []struct {
		name    string
		service string
		req     func() (*http.Request, []byte)
		code    fault.Code
		msg     string
	}{
		{"valid, iam", "iam", good("iam"), 0, ""},
		{"valid, sts", "sts", good("sts"), 0, ""},
		{"valid, kms", "kms", good("kms"), 0, ""},
		{"iam signed for another region", "iam", func() (*http.Request, []byte) { return sign("iam", "eu-west-1", f.rootAK.ID, f.rootAK.Secret) }, 0, ""},
		{"no Authorization header", "iam", func() (*http.Request, []byte) {
			r, b := good("iam")()
			r.Header.Del("Authorization")
			return r, b
		}, fault.MissingAuthenticationToken, "Missing Authentication Token"},
		{"another algorithm", "iam", func() (*http.Request, []byte) {
			r, b := good("iam")()
			r.Header.Set("Authorization", "Basic YWxpY2U6c2VjcmV0")
			return r, b
		}, fault.IncompleteSignature, "Unsupported AWS 'algorithm': 'Basic'"},
		{"no date", "iam", func() (*http.Request, []byte) {
			r, b := good("iam")()
			r.Header.Del("X-Amz-Date")
			return r, b
		}, fault.IncompleteSignature, ""},
		{"signed for another service", "kms", good("iam"), fault.SignatureDoesNotMatch, "Credential should be scoped to correct service: 'kms'. "},
		{"kms signed for another region", "kms", func() (*http.Request, []byte) { return sign("kms", "eu-west-1", f.rootAK.ID, f.rootAK.Secret) },
			fault.SignatureDoesNotMatch, "Credential should be scoped to a valid region. "},
		{"sts signed for another region", "sts", func() (*http.Request, []byte) { return sign("sts", "eu-west-1", f.rootAK.ID, f.rootAK.Secret) },
			fault.SignatureDoesNotMatch, "Credential should be scoped to a valid region. "},
		{"an unknown access key", "iam", func() (*http.Request, []byte) { return sign("iam", region, "AKIAAAAAAAAAAAAAAAAA", f.rootAK.Secret) },
			fault.InvalidClientTokenID, "The security token included in the request is invalid."},
		{"an unknown session key", "iam", func() (*http.Request, []byte) { return sign("iam", region, "ASIAAAAAAAAAAAAAAAAA", f.rootAK.Secret) },
			fault.InvalidClientTokenID, "The security token included in the request is invalid."},
		{"the wrong secret", "iam", func() (*http.Request, []byte) { return sign("iam", region, f.rootAK.ID, f.rootAK.Secret+"x") },
			fault.SignatureDoesNotMatch, badSignature},
		{"the body changed after signing", "iam", func() (*http.Request, []byte) {
			r, _ := good("iam")()
			return r, []byte("Action=DeleteUser&UserName=alice&Version=2010-05-08")
		}, fault.SignatureDoesNotMatch, badSignature},
		{"a header changed after signing", "iam", func() (*http.Request, []byte) {
			r, b := good("iam")()
			r.Header.Set("Content-Type", "application/json")
			return r, b
		}, fault.SignatureDoesNotMatch, badSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, body := tc.req()
			p, _, err := f.d.Authenticate(f.ctx, req, body, tc.service)
			check(t, err, tc.code, tc.msg)
			if err == nil && (p.Type != identity.TypeRoot || p.Account != acct || p.AccessKeyID != f.rootAK.ID) {
				t.Fatalf("authenticated as %+v", p)
			}
		})
	}
}

// TestAuthenticateStoredState covers credentials whose stored records are
// not what the API leaves behind: an inactive key, a key whose user is
// gone, and records that are corrupt or sealed under another root key.
// These fail without authenticating anyone.
func TestAuthenticateStoredState(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.d = identity.New(identity.Config{Store: f.st, RootKey: f.root, Region: region, Now: f.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	edit := func(key string, fn func(rec map[string]any)) {
		t.Helper()
		err := f.st.Update(f.ctx, func(tx store.Tx) error {
			var rec map[string]any
			if err := store.GetJSON(tx, []byte(key), &rec); err != nil {
				return err
			}
			fn(rec)
			return store.PutJSON(tx, []byte(key), rec)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put := func(key, value string) {
		t.Helper()
		if err := f.st.Update(f.ctx, func(tx store.Tx) error { return tx.Put([]byte(key), []byte(value)) }); err != nil {
			t.Fatal(err)
		}
	}

	_, inactive, inactiveSecret := f.user("inactive", nil)
	edit("iam/accesskey/"+inactive.ID, func(rec map[string]any) { rec["status"] = "Inactive" })
	_, orphan, orphanSecret := f.user("orphan", nil)
	edit("iam/accesskey/"+orphan.ID, func(rec map[string]any) { rec["userName"] = "gone" })
	_, resealed, resealedSecret := f.user("resealed", nil)
	edit("iam/accesskey/"+resealed.ID, func(rec map[string]any) { rec["sealedSecret"] = "AAAA" })
	_, corrupt, corruptSecret := f.user("corrupt", nil)
	put("iam/accesskey/"+corrupt.ID, "{")
	_, badPolicy, badPolicySecret := f.user("badpolicy", nil)
	put("iam/userpolicy/"+acct+"/badpolicy/p", `{"v":1,"name":"p","document":"{"}`)
	if _, err := f.d.CreateRole(f.ctx, f.root1, "r", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	sess, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "r"), "s1", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	edit("iam/session/"+sess.AccessKeyID, func(rec map[string]any) { rec["sealedSecret"] = "AAAA" })
	f.d.Changed(nil) // the records were changed behind the directory's back

	for _, tc := range []struct {
		name       string
		id, secret string
		token      string
		code       fault.Code // fault.Internal: not an *fault.Error at all
		msg        string
	}{
		{"an inactive key", inactive.ID, inactiveSecret, "", fault.InvalidClientTokenID, "The security token included in the request is invalid."},
		{"a key whose user is gone", orphan.ID, orphanSecret, "", fault.InvalidClientTokenID, "The security token included in the request is invalid."},
		{"a secret sealed under another root key", resealed.ID, resealedSecret, "", fault.Internal, "access key secret does not open under the root key"},
		{"a corrupt key record", corrupt.ID, corruptSecret, "", fault.Internal, ""},
		{"a corrupt policy of the user", badPolicy.ID, badPolicySecret, "", fault.Internal, ""},
		{"a session secret sealed under another root key", sess.AccessKeyID, sess.SecretAccessKey, sess.SessionToken, fault.Internal, "session secret does not open under the root key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.authenticate(tc.id, tc.secret, tc.token)
			if err == nil {
				t.Fatalf("authenticated as %+v", p)
			}
			if tc.code != fault.Internal {
				wantErr(t, err, tc.code, tc.msg)
				return
			}
			if e, ok := fault.As(err); ok {
				t.Fatalf("got the client error %v, want an internal one", e)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Fatalf("got %q, want %q", err, tc.msg)
			}
		})
	}
}

// TestCredentialCache: a credential verified once is cached; another
// process's change reaches it through Changed, or through CacheMaxAge when
// that notification is lost.
func TestCredentialCache(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		maxAge  time.Duration
		notify  func(d *identity.Directory, keyID string)
		advance time.Duration
		stale   bool // the deleted key still authenticates
	}{
		{"no notification, no maximum age", 0, nil, time.Hour, true},
		{"an IAM record changed", 0, func(d *identity.Directory, id string) {
			d.Changed([][]byte{[]byte("kms/key/x"), []byte("iam/accesskey/" + id)})
		}, 0, false},
		{"anything may have changed", 0, func(d *identity.Directory, _ string) { d.Changed(nil) }, 0, false},
		{"only other records changed", 0, func(d *identity.Directory, _ string) { d.Changed([][]byte{[]byte("kms/key/x"), []byte("audit/y")}) }, 0, true},
		{"nothing changed", 0, func(d *identity.Directory, _ string) { d.Changed([][]byte{}) }, 0, true},
		// A role session's record is read for its own credential only:
		// an AssumeRole elsewhere does not drop every credential.
		{"only another role session's record changed", 0, func(d *identity.Directory, _ string) {
			d.Changed([][]byte{[]byte("iam/session/ASIAOTHEROTHEROTHER2")})
		}, 0, true},
		{"a session record under the key's id changed", 0, func(d *identity.Directory, id string) {
			d.Changed([][]byte{[]byte("iam/session/ASIAOTHEROTHEROTHER2"), []byte("iam/session/" + id)})
		}, 0, false},
		// A credential is read from its access key's record and its
		// user's: a change to another user's leaves it be.
		{"a role session's record and another user's record changed", 0, func(d *identity.Directory, _ string) {
			d.Changed([][]byte{[]byte("iam/session/ASIAOTHEROTHEROTHER2"), []byte("iam/user/" + acct + "/bob"),
				[]byte("iam/userpolicy/" + acct + "/bob/p"), []byte("iam/accesskey/AKIAOTHEROTHEROTHER2"), []byte("iam/role/" + acct + "/alice")})
		}, 0, true},
		{"another account's user of the same name changed", 0, func(d *identity.Directory, _ string) {
			d.Changed([][]byte{[]byte("iam/user/" + other + "/alice")})
		}, 0, true},
		{"records no credential is read from changed", 0, func(d *identity.Directory, id string) {
			d.Changed([][]byte{[]byte("iam/loginprofile/" + acct + "/alice"), []byte("iam/userkey/" + acct + "/alice/" + id),
				[]byte("iam/account/" + acct), []byte("iam/rootkey/" + acct), []byte("iam/rootkeys/" + acct + "/AKIAOTHEROTHEROTHER2")})
		}, 0, true},
		{"the key's user's record changed", 0, func(d *identity.Directory, _ string) {
			d.Changed([][]byte{[]byte("iam/user/" + acct + "/ALICE")})
		}, 0, false},
		{"the key's user's policy changed", 0, func(d *identity.Directory, _ string) {
			d.Changed([][]byte{[]byte("iam/userpolicy/" + acct + "/alice/p")})
		}, 0, false},
		{"a role session's record and an IAM record not known here changed", 0, func(d *identity.Directory, _ string) {
			d.Changed([][]byte{[]byte("iam/session/ASIAOTHEROTHEROTHER2"), []byte("iam/group/x")})
		}, 0, false},
		{"within the maximum age", 5 * time.Second, nil, 5*time.Second - time.Nanosecond, true},
		{"at the maximum age", 5 * time.Second, nil, 5 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			cfg := f.cfg
			cfg.CacheMaxAge = tc.maxAge
			d := identity.New(cfg)
			_, k, secret := f.user("alice", nil)
			auth := func() error {
				req, body := f.request("sts", k.ID, secret, "", f.clock.Now(), "Action=GetCallerIdentity&Version=2011-06-15")
				_, _, err := d.Authenticate(f.ctx, req, body, "sts")
				return err
			}
			if err := auth(); err != nil {
				t.Fatal(err)
			}
			// Another process sharing the store deletes the key.
			if err := identity.New(f.cfg).DeleteAccessKey(f.ctx, f.root1, "alice", k.ID); err != nil {
				t.Fatal(err)
			}
			if tc.notify != nil {
				tc.notify(d, k.ID)
			}
			f.clock.Advance(tc.advance)
			err := auth()
			if tc.stale {
				if err != nil {
					t.Fatalf("the cached credential was dropped: %v", err)
				}
				return
			}
			wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")
		})
	}
}

// TestUnknownKeyCached: an access key found unknown is remembered, so a
// caller repeating it costs no store read; a flood of made-up keys does
// not push the known ones out of the cache.
func TestUnknownKeyCached(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, k, secret := f.user("alice", nil)
	f.auth(k.ID, secret, "")
	const unknown = "AKIAUNKNOWNUNKNOWN22"
	_, err := f.authenticate(unknown, "whatever", "")
	wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")
	// A cache of a twentieth of the real size, flooded past its bound as
	// the real one would be.
	identity.SetCacheLimit(f.d, identity.CredentialCacheLimit/20)
	for i := range identity.CredentialCacheLimit/20 + 50 {
		_, err := f.authenticate(fmt.Sprintf("AKIAFLOOD%011d", i), "whatever", "")
		wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")
	}
	_, err = f.authenticate(unknown, "whatever", "")
	wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")

	// With the store closed, only what is cached can be answered.
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	if p := f.auth(k.ID, secret, ""); p.Username != "alice" {
		t.Errorf("alice's key authenticates as %+v", p)
	}
	_, err = f.authenticate(unknown, "whatever", "")
	wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")
	_, err = f.authenticate("AKIANEVERSEENBEFORE2", "whatever", "")
	if _, ok := fault.As(err); ok || err == nil {
		t.Fatalf("a key never seen, with the store closed: %v; want the store's error", err)
	}
}

// TestUnknownKeyCacheBounded: what the cache of unknown access keys
// holds is bounded in bytes, not only in entries: an id not of IAM's form
// (16 to 128 letters, digits and underscores), such as one of nearly the
// header's whole 64 KiB, is refused without a store read and takes no
// place, and one of IAM's form takes at most 128 bytes.
func TestUnknownKeyCacheBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for i := range 50 {
		for _, id := range []string{
			fmt.Sprintf("AKIA%06d%s", i, strings.Repeat("X", 60<<10)),
			fmt.Sprintf("AKIA%06d", i),          // too short
			fmt.Sprintf("AKIA-%015d", i),        // not IAM's alphabet
			fmt.Sprintf("AKIA%06d%0118d", i, 0), // 128 characters: IAM's longest
		} {
			_, err := f.authenticate(id, "whatever", "")
			wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")
		}
	}
	if ids, n := identity.UnknownKeysCached(f.d); ids != 50 || n != 50*128 {
		t.Errorf("the cache of unknown keys holds %d ids of %d bytes; want the 50 of IAM's form, 128 bytes each", ids, n)
	}
	// With the store closed, a made-up id not of IAM's form is still
	// refused as unknown: it was never read for.
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := f.authenticate("AKIANEVERSEEN"+strings.Repeat("Y", 200), "whatever", "")
	wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")
}

// TestUnknownKeyCacheDropped: a key found unknown that then appears (a
// restore, another node's write) is accepted once an IAM change is
// notified, or once the cache's maximum age has passed.
func TestUnknownKeyCacheDropped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		maxAge  time.Duration
		notify  func(d *identity.Directory, keyID string)
		advance time.Duration
		stale   bool // the key is still refused
	}{
		{"no notification, no maximum age", 0, nil, time.Hour, true},
		{"an IAM record changed", 0, func(d *identity.Directory, id string) { d.Changed([][]byte{[]byte("iam/accesskey/" + id)}) }, 0, false},
		{"only other records changed", 0, func(d *identity.Directory, _ string) { d.Changed([][]byte{[]byte("kms/key/x")}) }, 0, true},
		{"a session record under the key's id changed", 0, func(d *identity.Directory, id string) { d.Changed([][]byte{[]byte("iam/session/" + id)}) }, 0, false},
		{"only another role session's record changed", 0, func(d *identity.Directory, _ string) {
			d.Changed([][]byte{[]byte("iam/session/ASIAOTHEROTHEROTHER2")})
		}, 0, true},
		{"within the maximum age", 5 * time.Second, nil, 5*time.Second - time.Nanosecond, true},
		{"at the maximum age", 5 * time.Second, nil, 5 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			cfg := f.cfg
			cfg.CacheMaxAge = tc.maxAge
			d := identity.New(cfg)
			_, k, secret := f.user("alice", nil)
			key := []byte("iam/accesskey/" + k.ID)
			var rec []byte
			err := f.st.Update(f.ctx, func(tx store.Tx) error {
				var err error
				if rec, err = tx.Get(key); err != nil {
					return err
				}
				return tx.Delete(key)
			})
			if err != nil {
				t.Fatal(err)
			}
			auth := func() error {
				req, body := f.request("sts", k.ID, secret, "", f.clock.Now(), "Action=GetCallerIdentity&Version=2011-06-15")
				_, _, err := d.Authenticate(f.ctx, req, body, "sts")
				return err
			}
			wantErr(t, auth(), fault.InvalidClientTokenID, "The security token included in the request is invalid.")
			// The record comes back, written by another process.
			if err := f.st.Update(f.ctx, func(tx store.Tx) error { return tx.Put(key, rec) }); err != nil {
				t.Fatal(err)
			}
			if tc.notify != nil {
				tc.notify(d, k.ID)
			}
			f.clock.Advance(tc.advance)
			err = auth()
			if tc.stale {
				wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")
				return
			}
			if err != nil {
				t.Fatalf("the key is back, but: %v", err)
			}
		})
	}
}

// TestCredentialRefreshedInUse: with a maximum age, a credential in use
// past three quarters of it is read again in the background while its calls go on
// being answered from the cache: a key deleted by another process is
// dropped then, and a key still valid is trusted for the full age from
// that read, without its callers waiting for the store.
func TestCredentialRefreshedInUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.cfg
	cfg.CacheMaxAge = 10 * time.Second
	d := identity.New(cfg)
	refreshed := make(chan struct{}, 4)
	identity.OnRefreshed(d, func() { refreshed <- struct{}{} })
	awaitRefresh := func() {
		t.Helper()
		select {
		case <-refreshed:
		case <-time.After(10 * time.Second):
			t.Fatal("the credential was not read again in the background")
		}
	}
	_, alice, aliceSecret := f.user("alice", nil)
	_, bob, bobSecret := f.user("bob", nil)
	auth := func(id, secret string) error {
		req, body := f.request("sts", id, secret, "", f.clock.Now(), "Action=GetCallerIdentity&Version=2011-06-15")
		_, _, err := d.Authenticate(f.ctx, req, body, "sts")
		return err
	}
	for _, k := range []struct{ id, secret string }{{alice.ID, aliceSecret}, {bob.ID, bobSecret}} {
		if err := auth(k.id, k.secret); err != nil {
			t.Fatal(err)
		}
	}
	// Another process sharing the store deletes alice's key, and the
	// notification is lost.
	if err := identity.New(f.cfg).DeleteAccessKey(f.ctx, f.root1, "alice", alice.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(7500 * time.Millisecond)
	if err := auth(alice.ID, aliceSecret); err != nil {
		t.Fatalf("alice's cached key at three quarters of its age: %v", err)
	}
	awaitRefresh()
	wantErr(t, auth(alice.ID, aliceSecret), fault.InvalidClientTokenID, "The security token included in the request is invalid.")

	if err := auth(bob.ID, bobSecret); err != nil {
		t.Fatal(err)
	}
	awaitRefresh()
	// With the store closed only what is cached can be answered: bob's
	// key, read again 7.5 s in, is still trusted 16.5 s in.
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(9 * time.Second)
	if err := auth(bob.ID, bobSecret); err != nil {
		t.Errorf("bob's key 9 s after it was read again: %v", err)
	}
}
