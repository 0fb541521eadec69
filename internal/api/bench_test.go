package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/openkms/kms/internal/kmsapi"

	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store/boltstore"
)

// benchHandler returns the real handler over a bbolt store and the id of a
// fresh symmetric key.
func benchHandler(b testing.TB) (http.Handler, string) {
	b.Helper()
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "kms.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	k := make([]byte, 32)
	rand.Read(k)
	root, _ := keys.NewRootKey(k)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := service.New(service.Config{Store: st, RootKey: root, Region: "us-east-1", Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	out, err := svc.CreateKey(context.Background(), rootCaller, &kmsapi.CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	dir := identity.New(identity.Config{Store: st, RootKey: root, Region: "us-east-1", Logger: log})
	creds, err := identity.BootstrapRoot(context.Background(), st, root, "111122223333")
	if err != nil {
		b.Fatal(err)
	}
	benchCreds = creds
	return api.NewHandler(svc, dir, log), out.KeyMetadata.KeyID
}

var benchCreds identity.AccessKey

// signedHeaders signs one request as the AWS SDK would; a signature stays
// valid for 15 minutes, so a benchmark can send the same one again.
func signedHeaders(b testing.TB, op string, body []byte) http.Header {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	req.Header.Set("X-Amz-Target", "TrentService."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	sum := sha256.Sum256(body)
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: benchCreds.ID, SecretAccessKey: benchCreds.Secret},
		req, hex.EncodeToString(sum[:]), "kms", "us-east-1", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return req.Header
}

func serve(b *testing.B, h http.Handler, op string, body []byte, hdr http.Header) []byte {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if hdr == nil {
		hdr = signedHeaders(b, op, body)
	}
	req.Header = hdr.Clone()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("%s: %d %s", op, rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

func benchOp(b *testing.B, op string, body func(keyID string, h http.Handler) []byte) {
	h, keyID := benchHandler(b)
	payload := body(keyID, h)
	hdr := signedHeaders(b, op, payload)
	serve(b, h, op, payload, hdr) // warm the key cache
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			serve(b, h, op, payload, hdr)
		}
	})
}

func BenchmarkEncrypt(b *testing.B) {
	benchOp(b, "Encrypt", func(keyID string, _ http.Handler) []byte {
		pt := base64.StdEncoding.EncodeToString(make([]byte, 32))
		return []byte(`{"KeyId":"` + keyID + `","Plaintext":"` + pt + `","EncryptionContext":{"purpose":"bench"}}`)
	})
}

func BenchmarkDecrypt(b *testing.B) {
	benchOp(b, "Decrypt", func(keyID string, h http.Handler) []byte {
		pt := base64.StdEncoding.EncodeToString(make([]byte, 32))
		enc := serve(b, h, "Encrypt", []byte(`{"KeyId":"`+keyID+`","Plaintext":"`+pt+`","EncryptionContext":{"purpose":"bench"}}`), nil)
		var out struct{ CiphertextBlob string }
		if err := json.Unmarshal(enc, &out); err != nil {
			b.Fatal(err)
		}
		return []byte(`{"CiphertextBlob":"` + out.CiphertextBlob + `","EncryptionContext":{"purpose":"bench"}}`)
	})
}

func BenchmarkGenerateDataKey(b *testing.B) {
	benchOp(b, "GenerateDataKey", func(keyID string, _ http.Handler) []byte {
		return []byte(`{"KeyId":"` + keyID + `","KeySpec":"AES_256"}`)
	})
}

var rootCaller = service.Caller{AccountID: "111122223333", ARN: "arn:aws:iam::111122223333:root", Root: true,
	Principal: policy.Principal{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333", UserID: "111122223333"}}
