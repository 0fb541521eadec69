package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The signing keys a Verifier keeps are bounded in bytes, not only in
// number: a scope's region is whatever the client wrote (IAM requests are
// not held to the regions served), and a key kept for each of thousands
// of long made-up regions, or a key whose scope pins the request's whole
// Authorization header, would hold hundreds of megabytes. A key of a
// region of usual length is kept, its scope copied out of the header.
func TestVerifierKeepsNoLongScopes(t *testing.T) {
	v := NewVerifier()
	when := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	verify := func(region string) (authorization string) {
		t.Helper()
		r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8400/", strings.NewReader("Action=ListUsers"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		sum := sha256.Sum256([]byte("Action=ListUsers"))
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIAEXAMPLEEXAMPLE12", SecretAccessKey: "secret"},
			r, hex.EncodeToString(sum[:]), "iam", region, when); err != nil {
			t.Fatal(err)
		}
		a, err := Parse(r)
		if err != nil {
			t.Fatal(err)
		}
		if !v.Verify(r, []byte("Action=ListUsers"), a, "secret") {
			t.Fatalf("a good signature for region %.20q... refused", region)
		}
		return r.Header.Get("Authorization")
	}
	for i := range 50 {
		verify(fmt.Sprintf("r%d-%s", i, strings.Repeat("x", 4<<10)))
	}
	hdr := verify("us-east-1") // the request that fills the cache
	verify("us-east-1")
	if len(v.keys) != 1 {
		t.Fatalf("%d signing keys kept; want only the one of a region of usual length", len(v.keys))
	}
	// The scope kept is a copy: a part of the header would keep the
	// whole header.
	start := uintptr(unsafe.Pointer(unsafe.StringData(hdr)))
	for s := range v.keys {
		for _, part := range []string{s.accessKeyID, s.date, s.region, s.service} {
			if p := uintptr(unsafe.Pointer(unsafe.StringData(part))); p >= start && p < start+uintptr(len(hdr)) {
				t.Errorf("the scope kept holds %q of the request's Authorization header", part)
			}
		}
	}
}
