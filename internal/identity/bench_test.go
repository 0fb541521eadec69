package identity_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openkms/kms/internal/identity"
)

// BenchmarkAuthenticate is what checking the signature of a warm caller
// adds to every request: parsing the Authorization header, the cached
// credential lookup, and recomputing the signature.
func BenchmarkAuthenticate(b *testing.B) {
	st, root, ak := newAccount(b)
	ctx := context.Background()
	d := identity.New(identity.Config{Store: st, RootKey: root, Region: "us-east-1"})
	body := []byte(`{"KeyId":"alias/bench","Plaintext":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","EncryptionContext":{"purpose":"bench"}}`)
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8400/", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: ak.ID, SecretAccessKey: ak.Secret}, req,
		hex.EncodeToString(sum[:]), "kms", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	if _, _, err := d.Authenticate(ctx, req, body, "kms"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := d.Authenticate(ctx, req, body, "kms"); err != nil {
			b.Fatal(err)
		}
	}
}
