package e2e_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// presigned returns a KMS request for op with body, its signature in the
// query string (aws-sdk-go-v2's PresignHTTP) made at signed and valid for
// expires; X-Amz-Target and Content-Type stay signed headers.
func (e *kmsEnv) presigned(t testing.TB, op, body string, signed time.Time, expires time.Duration) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", "TrentService."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
	req.URL.RawQuery = q.Encode()
	sum := sha256.Sum256([]byte(body))
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableHeaderHoisting = true })
	uri, hdr, err := signer.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: e.creds.ID, SecretAccessKey: e.creds.Secret},
		req, hex.EncodeToString(sum[:]), "kms", e2eRegion, signed)
	if err != nil {
		t.Fatal(err)
	}
	out, err := http.NewRequest(http.MethodPost, uri, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k != "Host" {
			out.Header[k] = v
		}
	}
	return out
}

func send(t testing.TB, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, rawResponse{body: b}.json(t)
}

// A request signed in its query string (a presigned request) is accepted
// until X-Amz-Expires after its X-Amz-Date, as often as it is sent, and
// refused after that; its body is signed like any other.
func TestE2EPresignedRequests(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	id := e.newKey(t)
	body := `{"KeyId":"` + id + `","Plaintext":"aGVsbG8="}`
	now := time.Now().UTC()

	ok := e.presigned(t, "Encrypt", body, now, 5*time.Minute)
	for i := range 2 { // a replay within the window works
		status, out := send(t, e.presigned(t, "Encrypt", body, now, 5*time.Minute))
		if status != http.StatusOK || out["KeyId"] != e.keyARN(id) {
			t.Fatalf("presigned Encrypt, sending %d: %d %v", i+1, status, out)
		}
	}
	if status, out := send(t, ok); status != http.StatusOK {
		t.Fatalf("presigned Encrypt: %d %v", status, out)
	}
	// Made long ago but valid for longer: the window counts, not the skew.
	if status, out := send(t, e.presigned(t, "Encrypt", body, now.Add(-30*time.Minute), time.Hour)); status != http.StatusOK {
		t.Fatalf("presigned 30 minutes ago for an hour: %d %v", status, out)
	}
	// Expired: refused, however often it is sent.
	for range 2 {
		status, out := send(t, e.presigned(t, "Encrypt", body, now.Add(-2*time.Minute), time.Minute))
		if status != http.StatusBadRequest || out["__type"] != "InvalidSignatureException" {
			t.Fatalf("expired presigned request: %d %v", status, out)
		}
	}
	// The body is signed: another body is refused.
	req := e.presigned(t, "Encrypt", body, now, 5*time.Minute)
	other := `{"KeyId":"` + id + `","Plaintext":"Ynll"}`
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader([]byte(other))), int64(len(other))
	if status, out := send(t, req); status != http.StatusBadRequest || out["__type"] != "InvalidSignatureException" {
		t.Fatalf("presigned request with another body: %d %v", status, out)
	}
	// Parameters missing or out of range.
	for name, mutate := range map[string]func(*http.Request){
		"no X-Amz-Expires": func(r *http.Request) { q := r.URL.Query(); q.Del("X-Amz-Expires"); r.URL.RawQuery = q.Encode() },
		"no X-Amz-Signature": func(r *http.Request) {
			q := r.URL.Query()
			q.Del("X-Amz-Signature")
			r.URL.RawQuery = q.Encode()
		},
		// The valid request with a second signature added, which the
		// signature cannot cover.
		"X-Amz-Signature twice": func(r *http.Request) { r.URL.RawQuery += "&X-Amz-Signature=00" },
	} {
		r := e.presigned(t, "Encrypt", body, now, 5*time.Minute)
		mutate(r)
		if status, out := send(t, r); status != http.StatusBadRequest || out["__type"] != "IncompleteSignatureException" {
			t.Errorf("%s: %d %v", name, status, out)
		}
	}
	if status, out := send(t, e.presigned(t, "Encrypt", body, now, 8*24*time.Hour)); status != http.StatusBadRequest || out["__type"] != "IncompleteSignatureException" {
		t.Errorf("X-Amz-Expires over seven days: %d %v", status, out)
	}
}
