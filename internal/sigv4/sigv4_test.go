package sigv4_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/openkms/kms/internal/sigv4"
)

var when = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// signed makes a request the way the AWS SDK for Go signs it.
func signed(t testing.TB, body string, token string, mutate func(*http.Request)) *http.Request {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8400/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	r.Header.Set("User-Agent", "test/1.0")
	if mutate != nil {
		mutate(r)
	}
	sum := sha256.Sum256([]byte(body))
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "secret", SessionToken: token},
		r, hex.EncodeToString(sum[:]), "kms", "us-east-1", when)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVerifyAcceptsSDKSignatures(t *testing.T) {
	v := sigv4.NewVerifier()
	for _, token := range []string{"", "session-token"} {
		body := `{"KeyId":"alias/x","Plaintext":"aGk="}`
		r := signed(t, body, token, nil)
		a, err := sigv4.Parse(r)
		if err != nil {
			t.Fatal(err)
		}
		if a.AccessKeyID != "AKIAEXAMPLE" || a.Region != "us-east-1" || a.Service != "kms" || !a.Time.Equal(when) || a.SecurityToken != token {
			t.Fatalf("parsed %+v", a)
		}
		if !v.Verify(r, []byte(body), a, "secret") {
			t.Fatalf("a signature made by the SDK's signer did not verify (token %q)", token)
		}
		// The User-Agent is not signed: changing it is harmless.
		r.Header.Set("User-Agent", "other")
		if !v.Verify(r, []byte(body), a, "secret") {
			t.Fatal("an unsigned header changed the verdict")
		}
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	body := `{"KeyId":"alias/x","Plaintext":"aGk="}`
	cases := map[string]func(r *http.Request) (*http.Request, []byte, string){
		"wrong secret": func(r *http.Request) (*http.Request, []byte, string) { return r, []byte(body), "Secret" },
		"other body":   func(r *http.Request) (*http.Request, []byte, string) { return r, []byte(body + " "), "secret" },
		"other target": func(r *http.Request) (*http.Request, []byte, string) {
			r.Header.Set("X-Amz-Target", "TrentService.Decrypt")
			return r, []byte(body), "secret"
		},
		"other host": func(r *http.Request) (*http.Request, []byte, string) {
			r.Host = "127.0.0.1:8401"
			return r, []byte(body), "secret"
		},
		"other path": func(r *http.Request) (*http.Request, []byte, string) {
			r.URL.Path = "/x"
			return r, []byte(body), "secret"
		},
		"signed header removed": func(r *http.Request) (*http.Request, []byte, string) {
			r.Header.Del("Content-Type")
			return r, []byte(body), "secret"
		},
		"signature changed": func(r *http.Request) (*http.Request, []byte, string) {
			h := r.Header.Get("Authorization")
			last := h[len(h)-1]
			repl := byte('0')
			if last == '0' {
				repl = '1'
			}
			r.Header.Set("Authorization", h[:len(h)-1]+string(repl))
			return r, []byte(body), "secret"
		},
		// Pairs url.Query drops are bytes the signature does not cover.
		"query with a bad escape": func(r *http.Request) (*http.Request, []byte, string) {
			r.URL.RawQuery = "b=%zz"
			return r, []byte(body), "secret"
		},
		"query with a semicolon": func(r *http.Request) (*http.Request, []byte, string) {
			r.URL.RawQuery = "x=1;y=2"
			return r, []byte(body), "secret"
		},
		"fewer signed headers claimed": func(r *http.Request) (*http.Request, []byte, string) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "content-type;", "", 1))
			return r, []byte(body), "secret"
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			r, b, secret := mutate(signed(t, body, "", nil))
			a, err := sigv4.Parse(r)
			if err != nil {
				return // refused at parse: also a rejection
			}
			if sigv4.NewVerifier().Verify(r, b, a, secret) {
				t.Fatal("a tampered request verified")
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	good := signed(t, "{}", "", nil).Header.Get("Authorization")
	cases := []struct {
		name, auth, date, want string
	}{
		{"missing", "", "20261126T120000Z", ""},
		{"other algorithm", "AWS4-HMAC-SHA1 Credential=x", "20261126T120000Z", "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA1'"},
		{"no credential", "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=ab", "20261126T120000Z", "Authorization header requires 'Credential' parameter."},
		{"no equal sign", "AWS4-HMAC-SHA256 Credential", "20261126T120000Z", "not a valid key=value pair (missing equal-sign)"},
		{"bad scope", "AWS4-HMAC-SHA256 Credential=AK/20261126/us-east-1/kms, SignedHeaders=host, Signature=ab", "20261126T120000Z", "Credential should be scoped to a valid region"},
		{"no date", good, "", "requires existence of either a 'X-Amz-Date' or a 'Date' header"},
		{"bad date", good, "yesterday", "Date must be in ISO-8601 'basic format'"},
		{"date with a fraction", good, "20261126T120000.9Z", "Date must be in ISO-8601 'basic format'. Got '20261126T120000.9Z'"},
		{"scope date mismatch", good, "20261127T120000Z", "Date in Credential scope does not match"},
		{"host not signed", "AWS4-HMAC-SHA256 Credential=AK/20261126/us-east-1/kms/aws4_request, SignedHeaders=x-amz-date, Signature=ab", "20261126T120000Z", "must include the host header"},
		{"signature twice", good + ", Signature=00", "20261126T120000Z", "Authorization header has the 'Signature' parameter more than once"},
		{"credential twice", strings.Replace(good, "Credential=", "Credential=AK/20261126/us-east-1/kms/aws4_request, Credential=", 1), "20261126T120000Z", "Authorization header has the 'Credential' parameter more than once"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodPost, "http://h/", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			if tc.date != "" {
				r.Header.Set("X-Amz-Date", tc.date)
			}
			_, err := sigv4.Parse(r)
			if tc.want == "" {
				if !errors.Is(err, sigv4.ErrMissing) {
					t.Fatalf("got %v, want ErrMissing", err)
				}
				return
			}
			var me *sigv4.MalformedError
			if !errors.As(err, &me) || !strings.Contains(me.Message, tc.want) {
				t.Fatalf("got %v, want a MalformedError containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParseVerify(f *testing.F) {
	r := signed(f, "{}", "", nil)
	f.Add(r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date"), []byte("{}"))
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host;x, Signature=", "20261126T120000Z", []byte(nil))
	v := sigv4.NewVerifier()
	orig, err := sigv4.Parse(r)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, auth, date string, body []byte) {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8400/", bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Amz-Date", date)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "TrentService.Encrypt")
		a, err := sigv4.Parse(req)
		if err != nil {
			return
		}
		// The harness knows one secret for every access key id, and the
		// access key id is not part of what is signed: only the seed's
		// scope, signed headers, signature, date and body may verify.
		if v.Verify(req, body, a, "secret") && (a.Signature != orig.Signature || a.SignedHeaders != orig.SignedHeaders ||
			a.Date != orig.Date || a.Region != orig.Region || a.Service != orig.Service || !a.Time.Equal(orig.Time) || string(body) != "{}") {
			t.Fatalf("a forged signature verified: %q", auth)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	v := sigv4.NewVerifier()
	body := `{"KeyId":"alias/x","Plaintext":"aGVsbG8gd29ybGQ="}`
	r := signed(b, body, "", nil)
	a, _ := sigv4.Parse(r)
	b.ReportAllocs()
	for b.Loop() {
		a, _ = sigv4.Parse(r)
		if !v.Verify(r, []byte(body), a, "secret") {
			b.Fatal("did not verify")
		}
	}
}

// Every request aws-sdk-go-v2's signer signs, whatever its path, query,
// headers and body, verifies; changing any signed part does not.
func TestVerifyMatchesSDKSignerOnRandomRequests(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	v := sigv4.NewVerifier()
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	randStr := func(n int) string {
		const chars = "abcXYZ019 -_.~/:+=&%?#éç\t"
		var b strings.Builder
		for range rng.IntN(n) {
			b.WriteString(string([]rune(chars)[rng.IntN(len([]rune(chars)))]))
		}
		return b.String()
	}
	for i := range 500 {
		body := randStr(200)
		path := pick("/", "/kms", "/a/b c/", "/%7Euser/x", "/a+b")
		u := "http://127.0.0.1:8400" + path
		if rng.IntN(3) == 0 {
			u += "?" + url.Values{randStr(5) + "k": {randStr(8), randStr(3)}, "Action": {"X"}}.Encode()
		}
		r, err := http.NewRequest(pick(http.MethodPost, http.MethodGet), u, strings.NewReader(body))
		if err != nil {
			continue
		}
		r.Header.Set("X-Amz-Target", "TrentService."+randStr(10))
		r.Header.Set("Content-Type", pick("application/x-amz-json-1.1", "application/x-www-form-urlencoded; charset=utf-8"))
		for range rng.IntN(4) {
			r.Header.Add("X-Amz-Meta-"+pick("a", "b", "c"), "  "+randStr(12)+"  ")
		}
		token := pick("", "tok"+randStr(20))
		sum := sha256.Sum256([]byte(body))
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDRAND", SecretAccessKey: "s3cr3t", SessionToken: token},
			r, hex.EncodeToString(sum[:]), pick("kms", "iam", "sts"), pick("us-east-1", "eu-west-2"), when); err != nil {
			t.Fatal(err)
		}
		// The server sees the request as it arrives on the wire.
		wire, err := http.ReadRequest(bufioReader(t, r))
		if err != nil {
			t.Fatal(err)
		}
		a, err := sigv4.Parse(wire)
		if err != nil {
			t.Fatalf("request %d: %v (Authorization %q)", i, err, r.Header.Get("Authorization"))
		}
		if !v.Verify(wire, []byte(body), a, "s3cr3t") {
			t.Fatalf("request %d signed by the SDK did not verify: %s %s headers %v", i, r.Method, u, r.Header)
		}
		if v.Verify(wire, []byte(body+"x"), a, "s3cr3t") {
			t.Fatalf("request %d verified with another body", i)
		}
		wire.Header.Set("X-Amz-Target", wire.Header.Get("X-Amz-Target")+"x")
		if v.Verify(wire, []byte(body), a, "s3cr3t") {
			t.Fatalf("request %d verified with another target", i)
		}
	}
}

// bufioReader serializes r as a client would send it.
func bufioReader(t *testing.T, r *http.Request) *bufio.Reader {
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return bufio.NewReader(&buf)
}

// presignedReq makes a request signed in its query string the way the AWS
// SDK for Go presigns one, valid for expires.
func presignedReq(t testing.TB, body, token string, expires string, hoist bool) *http.Request {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8400/?X-Amz-Expires="+expires, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	sum := sha256.Sum256([]byte(body))
	uri, hdr, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableHeaderHoisting = !hoist }).PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: "secret", SessionToken: token}, r, hex.EncodeToString(sum[:]), "kms", "us-east-1", when)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := http.NewRequest(http.MethodPost, uri, strings.NewReader(body))
	for k, v := range hdr {
		if k != "Host" {
			out.Header[k] = v
		}
	}
	return out
}

func TestVerifyAcceptsSDKPresignedRequests(t *testing.T) {
	v := sigv4.NewVerifier()
	body := `{"KeyId":"alias/x","Plaintext":"aGk="}`
	for _, hoist := range []bool{false, true} {
		for _, token := range []string{"", "session-token"} {
			r := presignedReq(t, body, token, "300", hoist)
			a, err := sigv4.Parse(r)
			if err != nil {
				t.Fatal(err)
			}
			if !a.Presigned || a.Expires != 5*time.Minute || a.AccessKeyID != "AKIAEXAMPLE" || !a.Time.Equal(when) || a.SecurityToken != token {
				t.Fatalf("parsed %+v", a)
			}
			if !v.Verify(r, []byte(body), a, "secret") {
				t.Fatalf("a presigned request made by the SDK did not verify (hoist %v, token %q)", hoist, token)
			}
			if v.Verify(r, []byte(body+" "), a, "secret") {
				t.Fatal("a presigned request verified with another body")
			}
			good := r.URL.RawQuery
			r.URL.RawQuery = good + "&a=1;b=2"
			if a, err := sigv4.Parse(r); err == nil && v.Verify(r, []byte(body), a, "secret") {
				t.Fatal("a presigned request verified with unsigned bytes in its query")
			}
			r.URL.RawQuery = good
			q := r.URL.Query()
			q.Set("X-Amz-Expires", "3000")
			r.URL.RawQuery = q.Encode()
			if a, err := sigv4.Parse(r); err != nil || v.Verify(r, []byte(body), a, "secret") {
				t.Fatalf("a presigned request verified with a longer X-Amz-Expires (%v)", err)
			}
		}
	}
}

func TestParsePresignedRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, expires, drop, msg string
		twice                    string // a parameter given a second time
	}{
		{name: "signature twice", expires: "60", twice: "X-Amz-Signature", msg: "AWS query-string parameter 'X-Amz-Signature' is given more than once. Re-examine the query-string parameters."},
		{name: "credential twice", expires: "60", twice: "X-Amz-Credential", msg: "AWS query-string parameter 'X-Amz-Credential' is given more than once. Re-examine the query-string parameters."},
		{"no expiry", "", "X-Amz-Expires", "AWS query-string parameters must include 'X-Amz-Expires'. Re-examine the query-string parameters.", ""},
		{"no signature", "60", "X-Amz-Signature", "AWS query-string parameters must include 'X-Amz-Signature'. Re-examine the query-string parameters.", ""},
		{"no credential", "60", "X-Amz-Credential", "AWS query-string parameters must include 'X-Amz-Credential'. Re-examine the query-string parameters.", ""},
		{"zero", "0", "", "X-Amz-Expires must be a whole number of seconds from 1 to 604800 (seven days); got '0'.", ""},
		{"over a week", "604801", "", "X-Amz-Expires must be a whole number of seconds from 1 to 604800 (seven days); got '604801'.", ""},
		{"not a number", "soon", "", "X-Amz-Expires must be a whole number of seconds from 1 to 604800 (seven days); got 'soon'.", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expires := tc.expires
			if expires == "" {
				expires = "60"
			}
			r := presignedReq(t, "{}", "", expires, false)
			q := r.URL.Query()
			if tc.drop != "" {
				q.Del(tc.drop)
			}
			if tc.expires == "" {
				q.Del("X-Amz-Expires")
			}
			if tc.twice != "" {
				q.Add(tc.twice, q.Get(tc.twice))
			}
			r.URL.RawQuery = q.Encode()
			_, err := sigv4.Parse(r)
			var me *sigv4.MalformedError
			if !errors.As(err, &me) || me.Message != tc.msg {
				t.Fatalf("Parse: %v, want %q", err, tc.msg)
			}
		})
	}
}

// handSigned signs a request as a client that builds the canonical
// headers in the order of its own list, names, and sends that list as
// SignedHeaders.
func handSigned(body string, names []string) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8400/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	if slices.Contains(names, "date") {
		// A client that dates its request with HTTP's Date header alone.
		r.Header.Set("Date", when.Format(http.TimeFormat))
	} else {
		r.Header.Set("X-Amz-Date", when.Format("20060102T150405Z"))
	}
	hmacOf := func(key []byte, s string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	payload := sha256.Sum256([]byte(body))
	cr := "POST\n/\n\n"
	for _, n := range names {
		v := r.Header.Get(n)
		switch n {
		case "host":
			v = r.Host
		case "transfer-encoding":
			v = "chunked"
		}
		cr += n + ":" + v + "\n"
	}
	signedHeaders := strings.Join(names, ";")
	cr += "\n" + signedHeaders + "\n" + hex.EncodeToString(payload[:])
	crHash := sha256.Sum256([]byte(cr))
	scope := when.Format("20060102") + "/us-east-1/kms/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + when.Format("20060102T150405Z") + "\n" + scope + "\n" + hex.EncodeToString(crHash[:])
	k := hmacOf([]byte("AWS4secret"), when.Format("20060102"))
	for _, part := range []string{"us-east-1", "kms", "aws4_request"} {
		k = hmacOf(k, part)
	}
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/"+scope+", SignedHeaders="+signedHeaders+
		", Signature="+hex.EncodeToString(hmacOf(k, sts)))
	return r
}

// SignedHeaders must be sorted, each name once, as AWS builds the
// canonical request: a signature over another order, which AWS refuses,
// is refused here too.
// A request dated by its Date header alone (in HTTP's date format) is
// signed at that time, as AWS takes it; X-Amz-Date, when present, wins.
func TestVerifyTakesTheDateHeaderWithoutXAmzDate(t *testing.T) {
	body := `{"KeyId":"alias/x","Plaintext":"aGk="}`
	v := sigv4.NewVerifier()
	r := handSigned(body, []string{"content-type", "date", "host", "x-amz-target"})
	a, err := sigv4.Parse(r)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Time.Equal(when) || !v.Verify(r, []byte(body), a, "secret") {
		t.Fatalf("a request dated by its Date header: time %v, want %v, or its signature did not verify", a.Time, when)
	}

	later := handSigned(body, []string{"content-type", "date", "host", "x-amz-target"})
	later.Header.Set("Date", when.Add(time.Second).Format(http.TimeFormat))
	if a, err := sigv4.Parse(later); err != nil || v.Verify(later, []byte(body), a, "secret") {
		t.Fatalf("a Date header changed after signing: parse %v, still verified", err)
	}

	both := handSigned(body, []string{"content-type", "date", "host", "x-amz-target"})
	both.Header.Set("X-Amz-Date", when.Add(time.Hour).Format("20060102T150405Z"))
	if a, err := sigv4.Parse(both); err != nil || !a.Time.Equal(when.Add(time.Hour)) {
		t.Fatalf("with both headers: %v, %v; want the time of X-Amz-Date", a, err)
	}

	bad := handSigned(body, []string{"content-type", "date", "host", "x-amz-target"})
	bad.Header.Set("Date", "yesterday")
	if _, err := sigv4.Parse(bad); err == nil || !strings.Contains(err.Error(), "Date must be in ISO-8601 'basic format'. Got 'yesterday'") {
		t.Fatalf("an unreadable Date header: %v", err)
	}
}

// Two Authorization headers are refused, whichever holds the signature.
func TestParseRefusesTwoAuthorizationHeaders(t *testing.T) {
	r := signed(t, "{}", "", nil)
	r.Header.Add("Authorization", r.Header.Get("Authorization"))
	_, err := sigv4.Parse(r)
	var me *sigv4.MalformedError
	if !errors.As(err, &me) || me.Message != "The request has more than one Authorization header." {
		t.Fatalf("Parse: %v", err)
	}
}

func TestVerifyRefusesUnsortedSignedHeaders(t *testing.T) {
	body := `{"KeyId":"alias/x","Plaintext":"aGk="}`
	for _, c := range []struct {
		names []string
		ok    bool
	}{
		{[]string{"content-type", "host", "x-amz-date", "x-amz-target"}, true},
		{[]string{"host", "content-type", "x-amz-date", "x-amz-target"}, false},
		{[]string{"content-type", "host", "x-amz-target", "x-amz-date"}, false},
		{[]string{"content-type", "host", "host", "x-amz-date", "x-amz-target"}, false},
	} {
		r := handSigned(body, c.names)
		a, err := sigv4.Parse(r)
		if err != nil {
			t.Fatalf("%v: %v", c.names, err)
		}
		if got := sigv4.NewVerifier().Verify(r, []byte(body), a, "secret"); got != c.ok {
			t.Errorf("SignedHeaders=%s verified %v, want %v", strings.Join(c.names, ";"), got, c.ok)
		}
	}
}

// FuzzParsePresigned parses and verifies arbitrary query strings in place
// of an SDK's presigned one. Parse never panics and fails only with a
// MalformedError or ErrMissing; a query that verifies says what the
// SDK's queries said (every parameter but the signature decodes to the
// same values, in any order), with the same body.
func FuzzParsePresigned(f *testing.F) {
	const body = `{"KeyId":"alias/x","Plaintext":"aGk="}`
	seeds := map[bool]*http.Request{false: presignedReq(f, body, "", "300", false), true: presignedReq(f, body, "tok", "300", true)}
	want := map[bool]url.Values{}
	for hoist, r := range seeds {
		want[hoist] = r.URL.Query()
		want[hoist].Del("X-Amz-Signature")
		f.Add(hoist, r.URL.RawQuery, []byte(body))
		q := r.URL.Query()
		q.Set("X-Amz-Expires", "604801")
		f.Add(hoist, q.Encode(), []byte(body))
		f.Add(hoist, r.URL.RawQuery+"&X-Amz-Signature=00", []byte(body))
		f.Add(hoist, strings.ReplaceAll(r.URL.RawQuery, "%2F", "/"), []byte(body))
	}
	f.Add(false, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb%2Fc%2Fd%2Faws4_request&X-Amz-Date=20261126T120000Z&X-Amz-Expires=1&X-Amz-SignedHeaders=host&X-Amz-Signature=", []byte(nil))
	f.Add(false, "X-Amz-%zz", []byte(nil))
	v := sigv4.NewVerifier()
	f.Fuzz(func(t *testing.T, hoist bool, rawQuery string, b []byte) {
		seed := seeds[hoist]
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8400/", bytes.NewReader(b))
		req.Header = seed.Header.Clone()
		req.URL.RawQuery = rawQuery
		a, err := sigv4.Parse(req)
		if err != nil {
			var me *sigv4.MalformedError
			if !errors.As(err, &me) && !errors.Is(err, sigv4.ErrMissing) {
				t.Fatalf("%q: error %v, want a MalformedError", rawQuery, err)
			}
			return
		}
		if !a.Presigned {
			t.Fatalf("%q: read as a header signature", rawQuery)
		}
		if !v.Verify(req, b, a, "secret") {
			return
		}
		// Either SDK query may verify with the other's headers: both
		// sign the same Content-Type.
		got, _ := url.ParseQuery(rawQuery)
		got.Del("X-Amz-Signature")
		if string(b) != body || !reflect.DeepEqual(got, want[false]) && !reflect.DeepEqual(got, want[true]) {
			t.Fatalf("a forged presigned request verified: %q with body %q", rawQuery, b)
		}
	})
}

// A request sent in chunks whose signature covers its Transfer-Encoding
// header, as curl --aws-sigv4 signs it, verifies once it has come through
// net/http's server, which moves that header out of the request's
// headers; one that did not come in chunks does not.
func TestVerifyTakesASignedTransferEncoding(t *testing.T) {
	body := `{"KeyId":"alias/x","Plaintext":"aGk="}`
	names := []string{"content-type", "host", "transfer-encoding", "x-amz-date", "x-amz-target"}
	verified := make(chan bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		a, err := sigv4.Parse(r)
		verified <- err == nil && sigv4.NewVerifier().Verify(r, got, a, "secret")
	}))
	defer srv.Close()
	for _, chunked := range []bool{true, false} {
		signed := handSigned(body, names)
		r, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		r.Header = signed.Header
		r.Host = signed.Host
		if chunked {
			r.ContentLength = -1
			r.TransferEncoding = []string{"chunked"}
		}
		resp, err := srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := <-verified; got != chunked {
			t.Errorf("sent in chunks %v: verified %v", chunked, got)
		}
	}
}
