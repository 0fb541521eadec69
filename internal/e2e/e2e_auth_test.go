package e2e_test

// End-to-end tests of authentication on KMS requests: AWS Signature
// Version 4 as the real SDK signs it, as a hand-rolled signer signs it, and
// every way a request can fail to be signed properly. Each refusal is
// checked to have changed nothing.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/openkms/kms/internal/testsupport"
)

const (
	msgInvalidToken = "The security token included in the request is invalid."
	msgBadSignature = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	amzDateFormat   = "20060102T150405Z"
)

// signing says how to sign a request: with whose credentials, for which
// service and region, at what time.
type signing struct {
	akid, secret, token string
	service, region     string
	at                  time.Time
}

// rootSigning signs as the account root, for KMS in the server's region,
// now.
func (e *kmsEnv) rootSigning() signing {
	return signing{akid: e.creds.ID, secret: e.creds.Secret, service: "kms", region: e2eRegion, at: time.Now()}
}

// kmsRequest builds an unsigned KMS request for op as the SDK sends it.
func (e *kmsEnv) kmsRequest(t testing.TB, op, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", "TrentService."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	return req
}

// signWith signs req (whose body is body) with the SDK's own v4 signer.
func signWith(t testing.TB, req *http.Request, body string, s signing) {
	t.Helper()
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: s.akid, SecretAccessKey: s.secret, SessionToken: s.token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), s.service, s.region, s.at); err != nil {
		t.Fatal(err)
	}
}

// setBody replaces req's body (after signing, to tamper with it).
func setBody(req *http.Request, body string) {
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = nil
}

// send sends req as it is and reads the whole response.
func (e *kmsEnv) send(t testing.TB, req *http.Request) rawResponse {
	t.Helper()
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

// keyCount counts the account's keys, as the root sees them.
func (e *kmsEnv) keyCount(t testing.TB) int {
	t.Helper()
	return len(e.listAllKeys(t))
}

// expectKeyCount checks that refused requests created no key.
func (e *kmsEnv) expectKeyCount(t testing.TB, want int) {
	t.Helper()
	if n := e.keyCount(t); n != want {
		t.Errorf("the account has %d keys, want %d: a refused request changed state", n, want)
	}
}

// randomAKID returns an access key id in AWS's shape that no one has.
func randomAKID(t testing.TB) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := mustRandom(t, 16)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "AKIA" + string(b)
}

func TestAuthMissingAuthenticationToken(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	for _, hdr := range []map[string]string{
		{"X-Unsigned": "1"},
		{"X-Unsigned": "1", "X-Amz-Date": time.Now().UTC().Format(amzDateFormat)},
		{"X-Unsigned": "1", "Authorization": ""},
	} {
		hdr["X-Amz-Target"] = "TrentService.CreateKey"
		hdr["Content-Type"] = "application/x-amz-json-1.1"
		r := e.rawRequest(t, http.MethodPost, "/", hdr, strings.NewReader(`{}`))
		expectRawError(t, r, http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
	}
	e.expectKeyCount(t, 0)
}

func TestAuthUnknownAccessKey(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	c := e.clientWith(randomAKID(t), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "")
	_, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	expectAPIError(t, err, "UnrecognizedClientException", msgInvalidToken)
	_, err = c.ListKeys(ctx, &kms.ListKeysInput{})
	expectAPIError(t, err, "UnrecognizedClientException", msgInvalidToken)
	// An unknown temporary access key id too.
	c = e.clientWith("ASIA"+randomAKID(t)[4:], "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "some-token")
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{})
	expectAPIError(t, err, "UnrecognizedClientException", msgInvalidToken)
	e.expectKeyCount(t, 0)
}

func TestAuthWrongSecret(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	wrong := []byte(e.creds.Secret)
	wrong[0] ^= 1
	c := e.clientWith(e.creds.ID, string(wrong), "")
	_, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	expectAPIError(t, err, "InvalidSignatureException", msgBadSignature)
	// The right secret still works afterwards: no derived key of the wrong
	// secret was cached.
	e.newKey(t)
	_, err = c.CreateKey(ctx, &kms.CreateKeyInput{})
	expectAPIError(t, err, "InvalidSignatureException", msgBadSignature)
	e.expectKeyCount(t, 1)
}

func TestAuthTamperedAfterSigning(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	const signed = `{"Description":"aaaa"}`

	t.Run("baseline", func(t *testing.T) {
		// Unchanged, the same request is accepted.
		req := e.kmsRequest(t, "ListKeys", `{}`)
		signWith(t, req, `{}`, e.rootSigning())
		if r := e.send(t, req); r.status != http.StatusOK {
			t.Fatalf("untampered request: %d %s", r.status, r.body)
		}
	})
	cases := []struct {
		name   string
		op     string
		tamper func(*http.Request)
	}{
		{"body changed, same length", "CreateKey", func(r *http.Request) { setBody(r, `{"Description":"bbbb"}`) }},
		{"body changed, other length", "CreateKey", func(r *http.Request) { setBody(r, `{"Description":"aaaa","Tags":[]}`) }},
		{"target changed", "DescribeKey", func(r *http.Request) { r.Header.Set("X-Amz-Target", "TrentService.CreateKey") }},
		{"content type changed", "CreateKey", func(r *http.Request) { r.Header.Set("Content-Type", "application/x-amz-json-1.0") }},
		{"date changed", "CreateKey", func(r *http.Request) {
			r.Header.Set("X-Amz-Date", time.Now().UTC().Add(time.Second).Format(amzDateFormat))
		}},
		{"signature changed", "CreateKey", func(r *http.Request) {
			h := r.Header.Get("Authorization")
			last := h[len(h)-1]
			flip := byte('0')
			if last == '0' {
				flip = '1'
			}
			r.Header.Set("Authorization", h[:len(h)-1]+string(flip))
		}},
		{"signed header removed", "CreateKey", func(r *http.Request) { r.Header.Del("Content-Type") }},
		{"unsigned header added", "CreateKey", func(r *http.Request) {
			// Adding a header the client did not sign is harmless...
			r.Header.Set("X-Extra", "1")
			// ...but this one it did sign. (A second X-Amz-Target names
			// no operation: TestAuthOperationMustBeSigned.)
			r.Header.Add("X-Amz-Date", r.Header.Get("X-Amz-Date"))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := e.kmsRequest(t, tc.op, signed)
			signWith(t, req, signed, e.rootSigning())
			tc.tamper(req)
			r := e.send(t, req)
			expectRawError(t, r, http.StatusBadRequest, "InvalidSignatureException", msgBadSignature)
		})
	}
	e.expectKeyCount(t, 0)
}

func TestAuthMalformedAuthorization(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	// One well-signed request's parts, to take apart.
	proto := e.kmsRequest(t, "CreateKey", `{}`)
	signWith(t, proto, `{}`, e.rootSigning())
	auth := proto.Header.Get("Authorization")
	date := proto.Header.Get("X-Amz-Date")
	m := regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$`).FindStringSubmatch(auth)
	if m == nil {
		t.Fatalf("the SDK's Authorization header is not in the expected form: %q", auth)
	}
	cred, signedHeaders, sig := m[1], m[2], m[3]
	scope := strings.Split(cred, "/")

	cases := []struct {
		name, auth string
		noDate     bool
		date       string
		msg        string // exact; "" = any
		msgPrefix  string
	}{
		{name: "no Signature", auth: "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + signedHeaders,
			msg: "Authorization header requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + signedHeaders},
		{name: "empty Signature", auth: "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + signedHeaders + ", Signature=",
			msgPrefix: "Authorization header requires 'Signature' parameter."},
		{name: "no Credential and SignedHeaders", auth: "AWS4-HMAC-SHA256 Signature=" + sig,
			msg: "Authorization header requires 'Credential' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Signature=" + sig},
		{name: "other algorithm", auth: "AWS4-HMAC-SHA512 Credential=" + cred + ", SignedHeaders=" + signedHeaders + ", Signature=" + sig,
			msg: "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'"},
		{name: "SigV2-style header", auth: "AWS " + e.creds.ID + ":c2lnbmF0dXJl",
			msg: "Unsupported AWS 'algorithm': 'AWS'"},
		{name: "bearer token", auth: "Bearer abc", msg: "Unsupported AWS 'algorithm': 'Bearer'"},
		{name: "missing equal sign", auth: "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders, Signature=" + sig,
			msg: "'SignedHeaders' not a valid key=value pair (missing equal-sign) in Authorization header: 'AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders, Signature=" + sig + "'."},
		{name: "scope without terminator", auth: "AWS4-HMAC-SHA256 Credential=" + strings.Join(scope[:4], "/") + ", SignedHeaders=" + signedHeaders + ", Signature=" + sig,
			msgPrefix: "Credential should be scoped to a valid region"},
		{name: "scope with wrong terminator", auth: "AWS4-HMAC-SHA256 Credential=" + strings.Join(append(scope[:4:4], "aws5_request"), "/") + ", SignedHeaders=" + signedHeaders + ", Signature=" + sig,
			msgPrefix: "Credential should be scoped to a valid region"},
		{name: "scope with only the key", auth: "AWS4-HMAC-SHA256 Credential=" + e.creds.ID + ", SignedHeaders=" + signedHeaders + ", Signature=" + sig,
			msgPrefix: "Credential should be scoped to a valid region"},
		{name: "no X-Amz-Date", auth: auth, noDate: true,
			msg: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=" + auth},
		{name: "malformed X-Amz-Date", auth: auth, date: "2030-03-04T05:06:07Z",
			msg: "Date must be in ISO-8601 'basic format'. Got '2030-03-04T05:06:07Z'. See http://en.wikipedia.org/wiki/ISO_8601"},
		{name: "host not signed", auth: "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=x-amz-date;x-amz-target, Signature=" + sig,
			msgPrefix: "Signed headers must include the host header."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := e.kmsRequest(t, "CreateKey", `{}`)
			req.Header.Set("Authorization", tc.auth)
			switch {
			case tc.noDate:
			case tc.date != "":
				req.Header.Set("X-Amz-Date", tc.date)
			default:
				req.Header.Set("X-Amz-Date", date)
			}
			r := e.send(t, req)
			expectRawError(t, r, http.StatusBadRequest, "IncompleteSignatureException", tc.msg)
			if tc.msgPrefix != "" {
				if got, _ := r.json(t)["message"].(string); !strings.HasPrefix(got, tc.msgPrefix) {
					t.Errorf("message %q, want prefix %q", got, tc.msgPrefix)
				}
			}
		})
	}
	t.Run("scope date differs from X-Amz-Date", func(t *testing.T) {
		req := e.kmsRequest(t, "CreateKey", `{}`)
		other := append([]string{}, scope...)
		other[1] = "20000101"
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+strings.Join(other, "/")+", SignedHeaders="+signedHeaders+", Signature="+sig)
		req.Header.Set("X-Amz-Date", date)
		r := e.send(t, req)
		if r.status != http.StatusBadRequest {
			t.Errorf("status %d, want 400", r.status)
		}
		if typ := r.json(t)["__type"]; typ != "IncompleteSignatureException" && typ != "InvalidSignatureException" {
			t.Errorf("__type %v, want a signature error", typ)
		}
	})
	e.expectKeyCount(t, 0)
}

func TestAuthWrongScope(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	cases := []struct {
		name, service, region string
		msg, msgPrefix        string
	}{
		{name: "signed for iam", service: "iam", region: e2eRegion, msg: "Credential should be scoped to correct service: 'kms'. "},
		{name: "signed for sts", service: "sts", region: e2eRegion, msg: "Credential should be scoped to correct service: 'kms'. "},
		{name: "signed for KMS in uppercase", service: "KMS", region: e2eRegion, msg: "Credential should be scoped to correct service: 'kms'. "},
		{name: "signed for a region not served", service: "kms", region: "sa-east-1", msgPrefix: "Credential should be scoped to a valid region"},
		{name: "signed for iam in us-west-2", service: "iam", region: "us-west-2", msgPrefix: "Credential should be scoped to correct service: 'kms'."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := e.rootSigning()
			s.service, s.region = tc.service, tc.region
			req := e.kmsRequest(t, "CreateKey", `{}`)
			signWith(t, req, `{}`, s)
			r := e.send(t, req)
			expectRawError(t, r, http.StatusBadRequest, "InvalidSignatureException", tc.msg)
			if tc.msgPrefix != "" {
				if got, _ := r.json(t)["message"].(string); !strings.HasPrefix(got, tc.msgPrefix) {
					t.Errorf("message %q, want prefix %q", got, tc.msgPrefix)
				}
			}
		})
	}
	t.Run("SDK client of another region", func(t *testing.T) {
		c := kms.New(kms.Options{
			Region:           "sa-east-1",
			BaseEndpoint:     aws.String(e.srv.URL),
			Credentials:      credentials.NewStaticCredentialsProvider(e.creds.ID, e.creds.Secret, ""),
			RetryMaxAttempts: 1,
			HTTPClient:       testsupport.SDKHTTPClient(e.srv.Client()),
		})
		_, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{})
		expectAPIErrorPrefix(t, err, "InvalidSignatureException", "Credential should be scoped to a valid region")
	})
	e.expectKeyCount(t, 0)
}

func TestAuthSigningTime(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	stamp := `\d{8}T\d{6}Z`
	expired := regexp.MustCompile(`^Signature expired: (` + stamp + `) is now earlier than (` + stamp + `) \((` + stamp + `) - 5 min\.\)$`)
	early := regexp.MustCompile(`^Signature not yet current: (` + stamp + `) is still later than (` + stamp + `) \((` + stamp + `) \+ 5 min\.\)$`)

	check := func(t *testing.T, offset time.Duration, re *regexp.Regexp, sign int) {
		s := e.rootSigning()
		s.at = time.Now().UTC().Add(offset)
		req := e.kmsRequest(t, "CreateKey", `{}`)
		signWith(t, req, `{}`, s)
		before := time.Now().UTC().Truncate(time.Second)
		r := e.send(t, req)
		after := time.Now().UTC()
		expectRawError(t, r, http.StatusBadRequest, "InvalidSignatureException", "")
		msg, _ := r.json(t)["message"].(string)
		m := re.FindStringSubmatch(msg)
		if m == nil {
			t.Fatalf("message %q does not match %s", msg, re)
		}
		if m[1] != s.at.Format(amzDateFormat) {
			t.Errorf("message names signing time %s, want %s", m[1], s.at.Format(amzDateFormat))
		}
		limit, _ := time.Parse(amzDateFormat, m[2])
		now, _ := time.Parse(amzDateFormat, m[3])
		if now.Before(before) || now.After(after) {
			t.Errorf("message names server time %s, want between %s and %s", m[3], before, after)
		}
		if limit.Sub(now) != time.Duration(sign)*5*time.Minute {
			t.Errorf("limit %s is not server time %s %+d×5 min", m[2], m[3], sign)
		}
	}
	// AWS KMS, as AWS's JSON services do, allows 5 minutes either way.
	t.Run("6 minutes in the past", func(t *testing.T) { check(t, -6*time.Minute, expired, -1) })
	t.Run("6 minutes in the future", func(t *testing.T) { check(t, 6*time.Minute, early, 1) })
	t.Run("20 minutes in the past", func(t *testing.T) { check(t, -20*time.Minute, expired, -1) })
	t.Run("a day in the past", func(t *testing.T) { check(t, -24*time.Hour, expired, -1) })
	t.Run("within 5 minutes", func(t *testing.T) {
		for _, off := range []time.Duration{-4 * time.Minute, 4 * time.Minute} {
			s := e.rootSigning()
			s.at = time.Now().UTC().Add(off)
			req := e.kmsRequest(t, "ListKeys", `{}`)
			signWith(t, req, `{}`, s)
			if r := e.send(t, req); r.status != http.StatusOK {
				t.Errorf("signed %v from now: %d %s", off, r.status, r.body)
			}
		}
	})
	e.expectKeyCount(t, 0)
}

// ---- an independent signer -------------------------------------------------

// handSign signs req following the SigV4 specification directly (not the
// SDK's signer), over exactly the headers named in signed (lowercase; host
// is always added).
func handSign(t testing.TB, req *http.Request, body string, s signing, signed ...string) {
	t.Helper()
	amz := s.at.UTC().Format(amzDateFormat)
	req.Header.Set("X-Amz-Date", amz)
	if s.token != "" {
		req.Header.Set("X-Amz-Security-Token", s.token)
	}
	names := append([]string{"host"}, signed...)
	sort.Strings(names)
	var canon strings.Builder
	for _, n := range names {
		v := req.Host
		if n == "host" {
			if v == "" {
				v = req.URL.Host
			}
		} else if n == "content-length" {
			v = strconv.FormatInt(req.ContentLength, 10)
		} else {
			vals := req.Header.Values(n)
			for i := range vals {
				vals[i] = strings.Join(strings.Fields(vals[i]), " ")
			}
			v = strings.Join(vals, ",")
		}
		canon.WriteString(n + ":" + v + "\n")
	}
	sh := strings.Join(names, ";")
	bodySum := sha256.Sum256([]byte(body))
	creq := strings.Join([]string{req.Method, "/", "", canon.String(), sh, hex.EncodeToString(bodySum[:])}, "\n")
	scope := amz[:8] + "/" + s.region + "/" + s.service + "/aws4_request"
	creqSum := sha256.Sum256([]byte(creq))
	stringToSign := "AWS4-HMAC-SHA256\n" + amz + "\n" + scope + "\n" + hex.EncodeToString(creqSum[:])
	mac := func(k []byte, msg string) []byte {
		h := hmac.New(sha256.New, k)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	k := mac([]byte("AWS4"+s.secret), amz[:8])
	k = mac(k, s.region)
	k = mac(k, s.service)
	k = mac(k, "aws4_request")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+s.akid+"/"+scope+", SignedHeaders="+sh+", Signature="+hex.EncodeToString(mac(k, stringToSign)))
}

func TestAuthIndependentSigner(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	const body = `{"Description":"hand signed"}`
	cases := []struct {
		name   string
		body   string
		extra  map[string]string
		signed []string
	}{
		{"minimal headers", body, nil, []string{"content-type", "x-amz-date", "x-amz-target"}},
		{"as botocore signs", body, nil, []string{"content-type", "x-amz-date", "x-amz-target"}},
		{"with content-length", body, nil, []string{"content-length", "content-type", "x-amz-date", "x-amz-target"}},
		{"header value with inner spaces", body, map[string]string{"X-Custom": "  a   b  "}, []string{"content-type", "x-amz-date", "x-amz-target", "x-custom"}},
		// SigV4 lets a client sign any header it sends; AWS checks the
		// headers the client listed, whichever they are.
		{"user-agent signed", body, map[string]string{"User-Agent": "hand-signer/1.0"}, []string{"content-type", "user-agent", "x-amz-date", "x-amz-target"}},
		{"x-amzn-trace-id signed", body, map[string]string{"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793"}, []string{"content-type", "x-amz-date", "x-amz-target", "x-amzn-trace-id"}},
		{"content-length 0 signed", "", nil, []string{"content-length", "content-type", "x-amz-date", "x-amz-target"}},
	}
	n := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := e.kmsRequest(t, "CreateKey", tc.body)
			for k, v := range tc.extra {
				req.Header.Set(k, v)
			}
			handSign(t, req, tc.body, e.rootSigning(), tc.signed...)
			r := e.send(t, req)
			if r.status != http.StatusOK {
				t.Fatalf("a correctly signed request (SignedHeaders %v) was refused: %d %s", tc.signed, r.status, r.body)
			}
			n++
			// The same signature over another body is refused.
			req = e.kmsRequest(t, "CreateKey", tc.body)
			for k, v := range tc.extra {
				req.Header.Set(k, v)
			}
			handSign(t, req, tc.body, e.rootSigning(), tc.signed...)
			setBody(req, `{"Description":"hand-signed"}`)
			expectRawError(t, e.send(t, req), http.StatusBadRequest, "InvalidSignatureException", msgBadSignature)
		})
	}
	e.expectKeyCount(t, n)
}

// ---- credentials that stop working -----------------------------------------

const allowKMS = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`

func TestAuthDeletedAccessKey(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	u := e.newUser(t, "worker", allowKMS)

	keyID := aws.ToString(mustKMS(t)(u.kms.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId)
	ct, err := u.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("x")})
	if err != nil {
		t.Fatalf("Encrypt as the user: %v", err)
	}
	if _, err := root.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String("worker"), AccessKeyId: aws.String(u.akid)}); err != nil {
		t.Fatalf("DeleteAccessKey: %v", err)
	}
	// The very next request fails, whatever it is.
	_, err = u.kms.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	expectAPIError(t, err, "UnrecognizedClientException", msgInvalidToken)
	_, err = u.kms.CreateKey(ctx, &kms.CreateKeyInput{})
	expectAPIError(t, err, "UnrecognizedClientException", msgInvalidToken)
	_, err = u.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	expectIAMError(t, err, http.StatusForbidden, "InvalidClientTokenId", msgInvalidToken)
	e.expectKeyCount(t, 1)

	// A new key of the same user works at once.
	out, err := root.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("worker")})
	if err != nil {
		t.Fatal(err)
	}
	c := e.clientWith(aws.ToString(out.AccessKey.AccessKeyId), aws.ToString(out.AccessKey.SecretAccessKey), "")
	if _, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob}); err != nil {
		t.Fatalf("Decrypt with the user's new key: %v", err)
	}
}

// mustKMS unwraps an SDK result or fails the test.
func mustKMS(t testing.TB) func(*kms.CreateKeyOutput, error) *kms.CreateKeyOutput {
	return func(out *kms.CreateKeyOutput, err error) *kms.CreateKeyOutput {
		t.Helper()
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		return out
	}
}

// assumeKMSRole creates role name trusting the account, with a policy that
// allows every KMS action, and assumes it as the root.
func (e *kmsEnv) assumeKMSRole(t testing.TB, name, session string) *sts.AssumeRoleOutput {
	t.Helper()
	ctx := context.Background()
	root := e.rootIAM()
	if _, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trustAccount)}); err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	if _, err := root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("kms"), PolicyDocument: aws.String(allowKMS)}); err != nil {
		t.Fatalf("PutRolePolicy: %v", err)
	}
	out, err := e.assumerSTS(t).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf(name)), RoleSessionName: aws.String(session)})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	return out
}

func TestAuthAssumedRoleCredentials(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	out := e.assumeKMSRole(t, "kms-user", "job-1")
	c := out.Credentials
	akid, secret, token := aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)
	session := e.clientWith(akid, secret, token)

	keyID := aws.ToString(mustKMS(t)(session.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId)
	ct, err := session.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: []byte("secret")})
	if err != nil {
		t.Fatalf("Encrypt with the session: %v", err)
	}
	if pt, err := session.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob}); err != nil || string(pt.Plaintext) != "secret" {
		t.Fatalf("Decrypt with the session: %v", err)
	}
	n := e.keyCount(t)

	tampered := []byte(token)
	tampered[len(tampered)/2] ^= 1
	wrongSecret := []byte(secret)
	wrongSecret[0] ^= 1
	for _, tc := range []struct {
		name   string
		client *kms.Client
		code   string
		msg    string
	}{
		{"no session token", e.clientWith(akid, secret, ""), "UnrecognizedClientException", msgInvalidToken},
		{"tampered session token", e.clientWith(akid, secret, string(tampered)), "UnrecognizedClientException", msgInvalidToken},
		{"another session's token", e.clientWith(akid, secret, aws.ToString(e.assumeAgain(t, "kms-user").SessionToken)), "UnrecognizedClientException", msgInvalidToken},
		{"wrong secret", e.clientWith(akid, string(wrongSecret), token), "InvalidSignatureException", msgBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.client.CreateKey(ctx, &kms.CreateKeyInput{})
			expectAPIError(t, err, tc.code, tc.msg)
		})
	}
	e.expectKeyCount(t, n)

	// The session follows its role's policies from the next request on.
	if _, err := root.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("kms-user"), PolicyName: aws.String("kms")}); err != nil {
		t.Fatal(err)
	}
	_, err = session.CreateKey(ctx, &kms.CreateKeyInput{})
	expectAPIErrorCode(t, err, "AccessDeniedException")
	e.expectKeyCount(t, n)

	// Deleting the role ends its sessions.
	if _, err := root.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("kms-user")}); err != nil {
		t.Fatal(err)
	}
	_, err = session.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	expectAPIError(t, err, "UnrecognizedClientException", msgInvalidToken)
	_, err = e.stsClient(akid, secret, token).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	expectIAMError(t, err, http.StatusForbidden, "InvalidClientTokenId", msgInvalidToken)
	e.expectKeyCount(t, n)
}

// assumeAgain starts another session of a role that trusts the account.
func (e *kmsEnv) assumeAgain(t testing.TB, role string) *ststypes.Credentials {
	t.Helper()
	out, err := e.assumerSTS(t).AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf(role)), RoleSessionName: aws.String("other")})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	return out.Credentials
}

// A role deleted and created again under the same name is a new role (with a
// new RoleId): the sessions of the old one must not come back to life.
func TestAuthSessionDoesNotOutliveRecreatedRole(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	root := e.rootIAM()
	out := e.assumeKMSRole(t, "phoenix", "old")
	oldRoleID := strings.Split(aws.ToString(out.AssumedRoleUser.AssumedRoleId), ":")[0]
	session := e.clientWith(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
	if _, err := session.ListKeys(ctx, &kms.ListKeysInput{}); err != nil {
		t.Fatalf("ListKeys with the session: %v", err)
	}
	if _, err := root.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String("phoenix"), PolicyName: aws.String("kms")}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("phoenix")}); err != nil {
		t.Fatal(err)
	}
	_, err := session.ListKeys(ctx, &kms.ListKeysInput{})
	expectAPIError(t, err, "UnrecognizedClientException", msgInvalidToken)

	// The same name again, with the same permissions.
	cr, err := root.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("phoenix"), AssumeRolePolicyDocument: aws.String(trustAccount)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(cr.Role.RoleId) == oldRoleID {
		t.Errorf("the new role reuses the old RoleId %s", oldRoleID)
	}
	if _, err := root.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("phoenix"), PolicyName: aws.String("kms"), PolicyDocument: aws.String(allowKMS)}); err != nil {
		t.Fatal(err)
	}
	_, err = session.CreateKey(ctx, &kms.CreateKeyInput{})
	expectAPIError(t, err, "UnrecognizedClientException", msgInvalidToken)
	_, err = e.stsClient(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken)).
		GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	expectIAMError(t, err, http.StatusForbidden, "InvalidClientTokenId", msgInvalidToken)
	e.expectKeyCount(t, 0)
}

// A refused IAM request changes nothing either.
func TestAuthRefusedIAMChangesNothing(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	ctx := context.Background()
	ws := []byte(e.creds.Secret)
	ws[0] ^= 1
	wrong := e.iamClient(e.creds.ID, string(ws), "")
	_, err := wrong.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("mallory")})
	expectIAMError(t, err, http.StatusForbidden, "SignatureDoesNotMatch", msgBadSignature)
	unknown := e.iamClient(randomAKID(t), "secret", "")
	_, err = unknown.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("mallory")})
	expectIAMError(t, err, http.StatusForbidden, "InvalidClientTokenId", msgInvalidToken)

	body := "Action=CreateUser&Version=2010-05-08&UserName=mallory"
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	r := e.send(t, req)
	if r.status != http.StatusForbidden || !bytes.Contains(r.body, []byte("<Code>MissingAuthenticationToken</Code>")) {
		t.Errorf("unsigned CreateUser: %d %s", r.status, r.body)
	}
	// Signed for KMS, sent to IAM.
	req, _ = http.NewRequest(http.MethodPost, e.srv.URL+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	signWith(t, req, body, e.rootSigning())
	r = e.send(t, req)
	if r.status != http.StatusForbidden || !bytes.Contains(r.body, []byte("<Code>SignatureDoesNotMatch</Code>")) ||
		!bytes.Contains(r.body, []byte("Credential should be scoped to correct service: &#39;iam&#39;.")) {
		t.Errorf("CreateUser signed for kms: %d %s", r.status, r.body)
	}

	users, err := e.rootIAM().ListUsers(ctx, &iam.ListUsersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(users.Users) != 0 {
		t.Errorf("refused CreateUser calls created %d users", len(users.Users))
	}
}

// A large body from a caller with no valid access key is refused once its
// first kilobytes are in, without waiting for (or holding memory for) the
// rest: a stalled upload of 1 MiB gets its answer at once.
func TestAuthLargeBodyOfNoOneRefusedEarly(t *testing.T) {
	t.Parallel()
	e := newKMSEnv(t)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	now := time.Now().UTC()
	for _, tc := range []struct {
		name, auth, typ, msg string
		status               int
	}{
		{"unsigned", "", "MissingAuthenticationTokenException", "Missing Authentication Token", http.StatusBadRequest},
		{"an unknown access key", "AWS4-HMAC-SHA256 Credential=" + randomAKID(t) + "/" + now.Format("20060102") + "/" + e2eRegion +
			"/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + strings.Repeat("0", 64),
			"UnrecognizedClientException", msgInvalidToken, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			hdr := "POST / HTTP/1.1\r\nHost: " + host + "\r\nX-Amz-Target: TrentService.Encrypt\r\nContent-Type: application/x-amz-json-1.1\r\n" +
				"X-Amz-Date: " + now.Format(amzDateFormat) + "\r\nContent-Length: " + strconv.Itoa(1<<20) + "\r\n"
			if tc.auth != "" {
				hdr += "Authorization: " + tc.auth + "\r\n"
			}
			if _, err := io.WriteString(conn, hdr+"\r\n"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(bytes.Repeat([]byte(" "), 64<<10)); err != nil { // of the 1 MiB announced
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(time.Minute)) // a bound on a broken server, not a measure
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer while the body is incomplete: %v", err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			expectRawError(t, rawResponse{status: resp.StatusCode, header: resp.Header, body: b}, tc.status, tc.typ, tc.msg)
		})
	}
}
