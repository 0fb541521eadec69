// Package sigv4 checks AWS Signature Version 4 on requests a server
// receives (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html),
// for the Authorization header form that the AWS CLI and SDKs send.
//
// It parses the header itself, then recomputes the signature with
// aws-sdk-go-v2's own v4 signer over a copy of the request holding only the
// headers the client signed, and compares the two in constant time. The
// signer caches derived signing keys, so a verification costs one canonical
// request, two SHA-256 hashes and one HMAC.
//
// Limits: presigned URLs (signature in the query string), chunked
// (streaming) payload signatures and SigV4a are not accepted.
package sigv4

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	algorithm  = "AWS4-HMAC-SHA256"
	amzDateFmt = "20060102T150405Z"
)

// ErrMissing means the request carries no Authorization header.
var ErrMissing = errors.New("sigv4: no Authorization header")

// MalformedError is an Authorization header that cannot be read; its text
// says what is wrong, in AWS's words.
type MalformedError struct{ Message string }

func (e *MalformedError) Error() string { return e.Message }

// Auth is a parsed Authorization header.
type Auth struct {
	AccessKeyID   string
	Date          string // yyyymmdd of the credential scope
	Region        string
	Service       string
	SignedHeaders string // as sent: lowercase, ';'-separated, sorted
	Signature     string // hex
	Time          time.Time
	SecurityToken string // X-Amz-Security-Token, for temporary credentials
}

// Parse reads the Authorization header and the request time.
func Parse(r *http.Request) (*Auth, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, ErrMissing
	}
	rest, ok := strings.CutPrefix(h, algorithm+" ")
	if !ok {
		alg, _, _ := strings.Cut(h, " ")
		return nil, &MalformedError{"Unsupported AWS 'algorithm': '" + alg + "'"}
	}
	a := &Auth{}
	var missing []string
	fields := map[string]*string{"Credential": nil, "SignedHeaders": &a.SignedHeaders, "Signature": &a.Signature}
	var credential string
	fields["Credential"] = &credential
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, &MalformedError{"'" + part + "' not a valid key=value pair (missing equal-sign) in Authorization header: '" + h + "'."}
		}
		if p, known := fields[k]; known {
			*p = v
		}
	}
	for _, k := range []string{"Credential", "Signature", "SignedHeaders"} {
		if *fields[k] == "" {
			missing = append(missing, "Authorization header requires '"+k+"' parameter.")
		}
	}
	amz := r.Header.Get("X-Amz-Date")
	if amz == "" {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return nil, &MalformedError{strings.Join(missing, " ") + " Authorization=" + h}
	}
	scope := strings.Split(credential, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || scope[0] == "" {
		return nil, &MalformedError{"Credential should be scoped to a valid region, not '" + credential + "'. "}
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = scope[0], scope[1], scope[2], scope[3]
	t, err := time.Parse(amzDateFmt, amz)
	if err != nil {
		return nil, &MalformedError{"Date must be in ISO-8601 'basic format'. Got '" + amz + "'. See http://en.wikipedia.org/wiki/ISO_8601"}
	}
	a.Time = t
	if a.Date != t.Format("20060102") {
		return nil, &MalformedError{"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '" + a.Date + "' != '" + t.Format("20060102") + "', from '" + amz + "'."}
	}
	if !strings.Contains(";"+a.SignedHeaders+";", ";host;") {
		return nil, &MalformedError{"Signed headers must include the host header. SignedHeaders=" + a.SignedHeaders}
	}
	a.SecurityToken = r.Header.Get("X-Amz-Security-Token")
	return a, nil
}

// Verifier recomputes signatures. It is safe for concurrent use.
type Verifier struct {
	signer *v4.Signer
}

// NewVerifier returns a Verifier.
func NewVerifier() *Verifier {
	return &Verifier{signer: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = false })}
}

// Verify reports whether a's signature is the one secret makes over r and
// body. It does not check the time or the credential scope; the caller
// does, against its own clock and region.
//
// The signer caches derived signing keys by access key id, region,
// service and day: an access key id must always be verified with the same
// secret (access key ids are never reused, so this holds).
func (v *Verifier) Verify(r *http.Request, body []byte, a *Auth, secret string) bool {
	u := &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	if u.Path == "" {
		u.Path = "/"
	}
	c := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: make(http.Header, 8)}
	for _, name := range strings.Split(a.SignedHeaders, ";") {
		switch name {
		case "host":
		case "content-length":
			c.ContentLength = r.ContentLength
		default:
			key := textproto.CanonicalMIMEHeaderKey(name)
			vals := r.Header.Values(key)
			if len(vals) == 0 {
				return false // signed a header that is not there
			}
			c.Header[key] = vals
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: a.AccessKeyID, SecretAccessKey: secret, SessionToken: a.SecurityToken}
	if err := v.signer.SignHTTP(context.Background(), creds, c, hex.EncodeToString(sum[:]), a.Service, a.Region, a.Time); err != nil {
		return false
	}
	got := c.Header.Get("Authorization")
	i := strings.LastIndex(got, "Signature=")
	j := strings.Index(got, "SignedHeaders=")
	if i < 0 || j < 0 {
		return false
	}
	signed := got[j+len("SignedHeaders=") : strings.IndexByte(got[j:], ',')+j]
	if signed != a.SignedHeaders {
		return false // the client signed a header the signer would not, or vice versa
	}
	return subtle.ConstantTimeCompare([]byte(got[i+len("Signature="):]), []byte(a.Signature)) == 1
}
