package identity_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"github.com/openkms/kms/internal/fault"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
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
	st, root, ak := newAccount(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

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
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := identity.New(identity.Config{Store: st, RootKey: root, Region: "us-east-1", Now: clock, MaxClockSkew: tc.skew})
			req, body := signed(tc.service, now.Add(tc.offset))
			_, err := d.Authenticate(ctx, req, body, tc.service)
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

// TestOperationAndContentTypeMustBeSigned: a signature must cover
// X-Amz-Target and Content-Type whenever the request has them.
func TestOperationAndContentTypeMustBeSigned(t *testing.T) {
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
			_, err := d.Authenticate(ctx, req, body, "kms")
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
