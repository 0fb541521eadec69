// Package sigv4 checks AWS Signature Version 4 on requests a server
// receives (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html):
// the Authorization header form that the AWS CLI and SDKs send, and the
// query-string form of presigned requests (X-Amz-Algorithm,
// X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders,
// X-Amz-Signature; the common parameters of the AWS KMS API reference).
//
// It parses the header or the query, builds the canonical request over
// exactly the headers the client signed, and compares the signature it
// computes with the client's in constant time. Derived signing keys are
// cached per access key and day, so a verification costs two SHA-256
// hashes and one HMAC. The tests check it against aws-sdk-go-v2's signer.
//
// A presigned request's payload is always signed: UNSIGNED-PAYLOAD is not
// accepted, since a KMS request's body is its parameters. Limits: chunked
// (streaming) payload signatures and SigV4a are not accepted.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/encoding/httpbinding"
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
	// Presigned is set for a signature in the query string, which is
	// valid for Expires from Time (X-Amz-Expires).
	Presigned bool
	Expires   time.Duration
}

// MaxExpires bounds X-Amz-Expires: a presigned request is valid for at most
// seven days, as on AWS.
const MaxExpires = 7 * 24 * time.Hour

// Parse reads the Authorization header and the request time, or without
// that header the signature in the query string (ParsePresigned).
func Parse(r *http.Request) (*Auth, error) {
	if len(r.Header.Values("Authorization")) > 1 {
		return nil, &MalformedError{"The request has more than one Authorization header."}
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil && strings.Contains(r.URL.RawQuery, "X-Amz-") {
			return nil, &MalformedError{"The query string is malformed: " + err.Error() + ". Re-examine the query-string parameters."}
		}
		if q.Has("X-Amz-Algorithm") {
			return parsePresigned(q)
		}
		return nil, ErrMissing
	}
	rest, ok := strings.CutPrefix(h, algorithm+" ")
	if !ok {
		alg, _, _ := strings.Cut(h, " ")
		return nil, &MalformedError{"Unsupported AWS 'algorithm': '" + alg + "'"}
	}
	a := &Auth{}
	var credential string
	seen := 0 // a bit for each of the three parameters read
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, &MalformedError{"'" + part + "' not a valid key=value pair (missing equal-sign) in Authorization header: '" + h + "'."}
		}
		bit := 0
		switch k {
		case "Credential":
			credential, bit = v, 1
		case "SignedHeaders":
			a.SignedHeaders, bit = v, 2
		case "Signature":
			a.Signature, bit = v, 4
		}
		// The header is not signed: one that names a parameter twice could
		// carry anything beside the value that verifies.
		if seen&bit != 0 {
			return nil, &MalformedError{"Authorization header has the '" + k + "' parameter more than once: '" + h + "'."}
		}
		seen |= bit
	}
	var missing []string
	for _, f := range [...]struct{ name, value string }{{"Credential", credential}, {"Signature", a.Signature}, {"SignedHeaders", a.SignedHeaders}} {
		if f.value == "" {
			missing = append(missing, "Authorization header requires '"+f.name+"' parameter.")
		}
	}
	amz := r.Header.Get("X-Amz-Date")
	if amz == "" {
		// Without X-Amz-Date the HTTP Date header gives the signing time
		// (in HTTP's date format), which the string to sign carries in
		// the basic ISO 8601 format all the same.
		if d := r.Header.Get("Date"); d != "" {
			amz = d
			if t, err := http.ParseTime(d); err == nil {
				amz = t.UTC().Format(amzDateFmt)
			}
		}
	}
	if amz == "" {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return nil, &MalformedError{strings.Join(missing, " ") + " Authorization=" + h}
	}
	if err := a.setScope(credential); err != nil {
		return nil, err
	}
	if err := a.setTime(amz); err != nil {
		return nil, err
	}
	if !a.Signs("host") {
		return nil, &MalformedError{"Signed headers must include the host header. SignedHeaders=" + a.SignedHeaders}
	}
	a.SecurityToken = r.Header.Get("X-Amz-Security-Token")
	return a, nil
}

// setScope reads a credential, access-key-id/yyyymmdd/region/service/aws4_request.
func (a *Auth) setScope(credential string) error {
	var scope [5]string
	rest := credential
	for i := range scope {
		var ok bool
		scope[i], rest, ok = strings.Cut(rest, "/")
		if ok != (i < len(scope)-1) {
			return &MalformedError{"Credential should be scoped to a valid region, not '" + credential + "'. "}
		}
	}
	if scope[4] != "aws4_request" || scope[0] == "" {
		return &MalformedError{"Credential should be scoped to a valid region, not '" + credential + "'. "}
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = scope[0], scope[1], scope[2], scope[3]
	return nil
}

// setTime reads the signing time (X-Amz-Date), which must fall on the
// credential scope's day.
func (a *Auth) setTime(amz string) error {
	// time.Parse takes a fraction after the seconds whatever the layout;
	// the basic format has none.
	t, err := time.Parse(amzDateFmt, amz)
	if err != nil || len(amz) != len(amzDateFmt) {
		return &MalformedError{"Date must be in ISO-8601 'basic format'. Got '" + amz + "'. See http://en.wikipedia.org/wiki/ISO_8601"}
	}
	a.Time = t
	// The layout parsed is yyyymmddThhmmssZ, digits for digits.
	if day := amz[:8]; a.Date != day {
		return &MalformedError{"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '" + a.Date + "' != '" + day + "', from '" + amz + "'."}
	}
	return nil
}

// parsePresigned reads a signature from the query string.
func parsePresigned(q url.Values) (*Auth, error) {
	if alg := q.Get("X-Amz-Algorithm"); alg != algorithm {
		return nil, &MalformedError{"Unsupported AWS 'algorithm': '" + alg + "'"}
	}
	// Each is read once: X-Amz-Signature, which the signature cannot
	// cover, could otherwise be added to a presigned request and leave it
	// valid.
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"} {
		if len(q[k]) > 1 {
			return nil, &MalformedError{"AWS query-string parameter '" + k + "' is given more than once. Re-examine the query-string parameters."}
		}
	}
	for _, k := range []string{"X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if q.Get(k) == "" {
			return nil, &MalformedError{"AWS query-string parameters must include '" + k + "'. Re-examine the query-string parameters."}
		}
	}
	a := &Auth{Presigned: true, SignedHeaders: q.Get("X-Amz-SignedHeaders"), Signature: q.Get("X-Amz-Signature"), SecurityToken: q.Get("X-Amz-Security-Token")}
	if err := a.setScope(q.Get("X-Amz-Credential")); err != nil {
		return nil, err
	}
	if err := a.setTime(q.Get("X-Amz-Date")); err != nil {
		return nil, err
	}
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || secs < 1 || secs > int64(MaxExpires/time.Second) {
		return nil, &MalformedError{"X-Amz-Expires must be a whole number of seconds from 1 to 604800 (seven days); got '" + q.Get("X-Amz-Expires") + "'."}
	}
	a.Expires = time.Duration(secs) * time.Second
	if !a.Signs("host") {
		return nil, &MalformedError{"Signed headers must include the host header. SignedHeaders=" + a.SignedHeaders}
	}
	return a, nil
}

// Signs reports whether the signature covers the header name (lower case).
func (a *Auth) Signs(name string) bool {
	for h := range strings.SplitSeq(a.SignedHeaders, ";") {
		if h == name {
			return true
		}
	}
	return false
}

// Verifier recomputes signatures. It is safe for concurrent use.
type Verifier struct {
	mu   sync.RWMutex
	keys map[scope]derivedKey
}

// scope is a credential scope: the signing key is derived from it and the
// secret.
type scope struct{ accessKeyID, date, region, service string }

// derivedKey is a scope's signing key, kept as HMAC-SHA256's two padded
// key blocks (RFC 2104) so that a signature costs two SHA-256 sums and no
// allocation.
type derivedKey struct {
	secret     string // the secret the key was derived from
	ipad, opad [sha256.BlockSize]byte
}

// NewVerifier returns a Verifier.
func NewVerifier() *Verifier {
	return &Verifier{keys: make(map[scope]derivedKey)}
}

// Verify reports whether a's signature is the one secret makes over r and
// body, for exactly the headers the client listed in SignedHeaders. It does
// not check the time or the credential scope; the caller does, against its
// own clock and region.
//
// The canonical request is built here, per the specification, from the
// client's SignedHeaders: aws-sdk-go-v2's signer chooses for itself which
// headers to sign (never User-Agent, for one) and so cannot check a
// signature over a set another client chose. The tests hold this
// verification to that signer's output on random requests.
func (v *Verifier) Verify(r *http.Request, body []byte, a *Auth, secret string) bool {
	payload := sha256.Sum256(body)
	var hexPayload [64]byte
	hex.Encode(hexPayload[:], payload[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != string(hexPayload[:]) {
		return false
	}
	cr := make([]byte, 0, 1024)
	cr = append(cr, r.Method...)
	cr = append(cr, '\n')
	cr = appendCanonicalURI(cr, r.URL)
	cr = append(cr, '\n')
	if r.URL.RawQuery != "" {
		// The whole query is signed: a pair url.Query would drop (a bad
		// escape, a ';') is bytes the signature does not cover.
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return false
		}
		if a.Presigned {
			q.Del("X-Amz-Signature") // the one parameter the signature cannot cover
		}
		cr = appendCanonicalQuery(cr, q)
	}
	cr = append(cr, '\n')
	prev := ""
	for name := range strings.SplitSeq(a.SignedHeaders, ";") {
		// AWS builds the canonical headers sorted, each once: a list in
		// another order, or with a name twice, cannot match its signature.
		if name == "" || strings.ToLower(name) != name || name <= prev {
			return false
		}
		prev = name
		cr = append(cr, name...)
		cr = append(cr, ':')
		switch name {
		case "host":
			cr = appendTrimmed(cr, r.Host)
		case "content-length":
			if r.ContentLength < 0 {
				return false
			}
			cr = strconv.AppendInt(cr, r.ContentLength, 10)
		case "transfer-encoding":
			// net/http takes the header out of the request's headers
			// into TransferEncoding; curl --aws-sigv4 signs it.
			if len(r.TransferEncoding) == 0 {
				return false
			}
			for i, val := range r.TransferEncoding {
				if i > 0 {
					cr = append(cr, ',')
				}
				cr = appendTrimmed(cr, val)
			}
		default:
			vals := r.Header[canonicalKey(name)]
			if len(vals) == 0 {
				return false // signed a header that is not there
			}
			for i, val := range vals {
				if i > 0 {
					cr = append(cr, ',')
				}
				cr = appendTrimmed(cr, val)
			}
		}
		cr = append(cr, '\n')
	}
	cr = append(cr, '\n')
	cr = append(cr, a.SignedHeaders...)
	cr = append(cr, '\n')
	cr = append(cr, hexPayload[:]...)
	crHash := sha256.Sum256(cr)

	// HMAC(k, sts) = H(k^opad || H(k^ipad || sts)).
	k := v.signingKey(a, secret)
	inner := make([]byte, 0, 512)
	inner = append(inner, k.ipad[:]...)
	inner = append(inner, algorithm+"\n"...)
	inner = a.Time.UTC().AppendFormat(inner, amzDateFmt)
	inner = append(inner, '\n')
	inner = appendScope(inner, a)
	inner = append(inner, '\n')
	inner = hex.AppendEncode(inner, crHash[:])
	innerSum := sha256.Sum256(inner)
	var outer [sha256.BlockSize + sha256.Size]byte
	copy(outer[:], k.opad[:])
	copy(outer[sha256.BlockSize:], innerSum[:])
	mac := sha256.Sum256(outer[:])

	if len(a.Signature) != 2*sha256.Size {
		return false
	}
	var want, got [2 * sha256.Size]byte
	hex.Encode(want[:], mac[:])
	copy(got[:], a.Signature)
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}

// appendScope appends a's credential scope without the access key:
// yyyymmdd/region/service/aws4_request.
func appendScope(dst []byte, a *Auth) []byte {
	dst = append(dst, a.Date...)
	dst = append(dst, '/')
	dst = append(dst, a.Region...)
	dst = append(dst, '/')
	dst = append(dst, a.Service...)
	return append(dst, "/aws4_request"...)
}

// signingKey derives (and caches, if its parts are at most
// maxScopePartCached bytes each) the key of a credential scope.
func (v *Verifier) signingKey(a *Auth, secret string) derivedKey {
	id := scope{a.AccessKeyID, a.Date, a.Region, a.Service}
	v.mu.RLock()
	dk, ok := v.keys[id]
	v.mu.RUnlock()
	if ok && dk.secret == secret {
		return dk
	}
	k := hmacSHA256([]byte("AWS4"+secret), a.Date)
	k = hmacSHA256(k, a.Region)
	k = hmacSHA256(k, a.Service)
	k = hmacSHA256(k, "aws4_request")
	dk = derivedKey{secret: secret}
	copy(dk.ipad[:], k) // 32 bytes: shorter than a block, so used as is
	copy(dk.opad[:], k)
	for i := range dk.ipad {
		dk.ipad[i] ^= 0x36
		dk.opad[i] ^= 0x5c
	}
	if len(a.AccessKeyID) > maxScopePartCached || len(a.Date) > maxScopePartCached ||
		len(a.Region) > maxScopePartCached || len(a.Service) > maxScopePartCached {
		return dk // derived again each time, not kept
	}
	// Copies: the parts are of the request's Authorization header, which
	// they would keep whole.
	id = scope{strings.Clone(a.AccessKeyID), strings.Clone(a.Date), strings.Clone(a.Region), strings.Clone(a.Service)}
	v.mu.Lock()
	if len(v.keys) >= maxKeys {
		v.evict(len(v.keys)-maxKeys+keyEvictions, id.date)
	}
	v.keys[id] = dk
	v.mu.Unlock()
	return dk
}

// maxKeys bounds the signing keys a Verifier keeps. A full Verifier makes
// room by evicting keyEvictions of them (evict), not by emptying itself:
// then the callers of every account would each derive their key again,
// and again each time the keys filled up.
const (
	maxKeys      = 10000
	keyEvictions = maxKeys / 100
)

// evict drops n signing keys: first those of scopes of another day than
// date, the day of the key about to be kept (clients sign with the
// current day, so those are seldom used again), then arbitrary ones, the
// first the map's iteration, which starts at a random place, yields. A
// verification that finds its key keeps no note of its use, so that it
// takes no lock for writing. Finding fewer than n of another day reads
// every key kept, once in keyEvictions new scopes. v.mu is held.
func (v *Verifier) evict(n int, date string) {
	for s := range v.keys {
		if n <= 0 {
			return
		}
		if s.date != date {
			delete(v.keys, s)
			n--
		}
	}
	for s := range v.keys {
		if n <= 0 {
			return
		}
		delete(v.keys, s)
		n--
	}
}

// maxScopePartCached bounds each part of a credential scope whose signing
// key is kept: IAM's longest access key id. A scope's region is what the
// client wrote (an IAM request is held to no region served), and 10,000
// keys of long made-up regions would hold hundreds of megabytes; a key of
// a longer scope is derived again at each request.
const maxScopePartCached = 128

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// canonicalKey is http.CanonicalHeaderKey(name) for a lower-case name,
// without an allocation for the headers the SDKs sign.
func canonicalKey(name string) string {
	switch name {
	case "content-type":
		return "Content-Type"
	case "x-amz-date":
		return "X-Amz-Date"
	case "x-amz-target":
		return "X-Amz-Target"
	case "x-amz-content-sha256":
		return "X-Amz-Content-Sha256"
	case "x-amz-security-token":
		return "X-Amz-Security-Token"
	case "x-amz-user-agent":
		return "X-Amz-User-Agent"
	case "amz-sdk-invocation-id":
		return "Amz-Sdk-Invocation-Id"
	case "amz-sdk-request":
		return "Amz-Sdk-Request"
	case "x-amz-api-version":
		return "X-Amz-Api-Version"
	}
	return http.CanonicalHeaderKey(name)
}

// appendTrimmed appends a header value as SigV4 canonical headers have
// it: surrounding white space removed, runs of inner spaces collapsed to
// one (other inner white space is kept).
func appendTrimmed(dst []byte, s string) []byte {
	s = strings.TrimSpace(s)
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if !space {
				dst = append(dst, ' ')
			}
			space = true
			continue
		}
		space = false
		dst = append(dst, c)
	}
	return dst
}

// appendCanonicalURI appends the path as AWS services other than S3 sign
// it: the escaped path, escaped once more (smithy's EscapePath, as the SDK
// does). "/", every KMS request's path, is its own escape.
func appendCanonicalURI(dst []byte, u *url.URL) []byte {
	p := u.EscapedPath()
	if p == "" || p == "/" {
		return append(dst, '/')
	}
	return append(dst, httpbinding.EscapePath(p, false)...)
}

// appendCanonicalQuery appends the query parameters URI-encoded, then
// sorted by encoded name and value (the specification sorts after
// encoding).
func appendCanonicalQuery(dst []byte, q url.Values) []byte {
	type param struct{ k, v string }
	var params []param
	for k, vals := range q {
		ek := uriEncode(k)
		for _, val := range vals {
			params = append(params, param{ek, uriEncode(val)})
		}
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i].k != params[j].k {
			return params[i].k < params[j].k
		}
		return params[i].v < params[j].v
	})
	for i, p := range params {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p.k...)
		dst = append(dst, '=')
		dst = append(dst, p.v...)
	}
	return dst
}

func uriEncode(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(url.QueryEscape(s), "+", "%20"), "%7E", "~")
}
