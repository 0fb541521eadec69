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

// verifyAs signs a request as access key akid at when, for KMS in
// us-east-1, and checks that v accepts it.
func verifyAs(t *testing.T, v *Verifier, akid string, when time.Time) {
	t.Helper()
	body := []byte(`{"KeyId":"alias/a"}`)
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8400/", strings.NewReader(string(body)))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: "secret-of-" + akid},
		r, hex.EncodeToString(sum[:]), "kms", "us-east-1", when); err != nil {
		t.Fatal(err)
	}
	a, err := Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Verify(r, body, a, "secret-of-"+akid) {
		t.Fatalf("a good signature of %s refused", akid)
	}
}

// keptOf counts the access keys of akids whose signing key of date v keeps.
func keptOf(v *Verifier, akids []string, date string) int {
	n := 0
	for _, id := range akids {
		if _, ok := v.keys[scope{id, date, "us-east-1", "kms"}]; ok {
			n++
		}
	}
	return n
}

// A Verifier full of signing keys makes room for the next by evicting a
// few, not by emptying itself: every caller of every account, past the
// bound by one new scope, would derive its key again, and again each
// time the keys filled up. Scopes of many callers are verified past the
// bound; the keys kept stay within it, nearly all of them stay, and so
// do the keys of callers verified before.
func TestVerifierFullEvictsFew(t *testing.T) {
	v := NewVerifier()
	when := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	akid := func(i int) string { return fmt.Sprintf("AKIA%016d", i) }
	var hot []string
	for i := range 20 {
		hot = append(hot, akid(i))
		verifyAs(t, v, akid(i), when)
	}
	for i := len(hot); i < maxKeys+200; i++ {
		verifyAs(t, v, akid(i), when)
		if len(v.keys) > maxKeys {
			t.Fatalf("%d signing keys kept after %d callers; want at most %d", len(v.keys), i+1, maxKeys)
		}
	}
	if len(v.keys) < maxKeys-keyEvictions {
		t.Errorf("%d signing keys kept after %d callers; want at least %d: a full Verifier evicts a few, it is not emptied",
			len(v.keys), maxKeys+200, maxKeys-keyEvictions)
	}
	// Each batch of evictions takes one of the first callers' keys with
	// a chance of about one in a hundred.
	if n := keptOf(v, hot, "20261207"); n < len(hot)/2 {
		t.Errorf("%d of the first %d callers' signing keys kept past the bound", n, len(hot))
	}
}

// A full Verifier evicts the signing keys of another day first: clients
// sign with the current date, so after midnight yesterday's keys are
// seldom used again, and today's, of callers in steady use, stay.
func TestVerifierEvictsOtherDaysFirst(t *testing.T) {
	v := NewVerifier()
	yesterday := time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC)
	today := yesterday.Add(2 * time.Hour)
	akid := func(i int) string { return fmt.Sprintf("AKIA%016d", i) }
	var hot []string
	for i := range 20 {
		hot = append(hot, akid(i))
		verifyAs(t, v, akid(i), today)
	}
	for i := len(hot); len(v.keys) < maxKeys; i++ {
		verifyAs(t, v, akid(i), yesterday)
	}
	for i := range maxKeys / 2 {
		verifyAs(t, v, akid(maxKeys+i), today)
	}
	if len(v.keys) > maxKeys {
		t.Fatalf("%d signing keys kept; want at most %d", len(v.keys), maxKeys)
	}
	if n := keptOf(v, hot, "20261207"); n != len(hot) {
		t.Errorf("%d of %d signing keys of today kept while yesterday's filled the room; want every one", n, len(hot))
	}
}
