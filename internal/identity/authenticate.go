package identity

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openkms/kms/internal/fault"

	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/sigv4"
	"github.com/openkms/kms/internal/store"
)

// DefaultMaxClockSkew is how far a KMS request's signing time may be from
// the server's clock: AWS KMS, like AWS's other JSON services, refuses a
// signature more than 5 minutes off.
const DefaultMaxClockSkew = 5 * time.Minute

// queryMaxSkew is the window of IAM and STS, which allow 15 minutes.
const queryMaxSkew = 15 * time.Minute

// credential is an access key ready to verify signatures: its secret and the
// principal it stands for, cached until a change to its access key or
// session, or to its owner (changes.go).
type credential struct {
	secret    string
	principal *Principal
	tokenHash []byte    // assumed-role sessions
	expires   time.Time // assumed-role sessions
	loaded    time.Time // when read from the store, if the cache has a maximum age
	owner     subject   // the user or role it acts as; zero for an account's root
	size      int64     // the memory it takes, estimated from above (memSize)
}

// memSize estimates, from above, the bytes c takes in memory, so that the
// cache can bound its bytes and not only its entries: a user's or role's
// inline policies hold up to 10,240 bytes of text, which parse to some
// 200 KB, and up to some 600 KB if little but wildcard patterns
// (Principal.MemSize).
func (c *credential) memSize() int64 {
	return int64(len(c.secret)+len(c.tokenHash)) + c.principal.MemSize()
}

// DefaultCredentialCacheBytes bounds the memory of the cached credentials
// together, as estimated (credential.memSize): room for the 10,000 of
// cacheLimit with 2 KiB of policies each, or some 2,000 at IAM's 10,240
// bytes.
const DefaultCredentialCacheBytes = 512 << 20

// Authenticate checks the AWS Signature Version 4 of r (with its body) for
// service ("kms", "iam" or "sts") and returns who signed it, and the
// region of the request: the region of the signature's credential scope. It fails with
// AWS's errors: no signature, a malformed one, an unknown access key, an
// expired session, a signature made for another service or region or too
// far from now (Config.MaxClockSkew for KMS, 15 minutes for IAM and STS;
// a presigned request, from its X-Amz-Date until X-Amz-Expires later),
// a signature that leaves the operation (X-Amz-Target) or the
// Content-Type unsigned, or one that does not match.
func (d *Directory) Authenticate(ctx context.Context, r *http.Request, body []byte, service string) (*Principal, string, error) {
	a, err := parseAuth(r)
	if err != nil {
		return nil, "", err
	}
	p, err := d.authenticate(ctx, r, body, service, a)
	if err != nil {
		return nil, "", err
	}
	return p, a.Region, nil
}

// parseAuth reads r's signature, or says with AWS's error why it cannot.
func parseAuth(r *http.Request) (*sigv4.Auth, error) {
	a, err := sigv4.Parse(r)
	if err != nil {
		var me *sigv4.MalformedError
		if errors.As(err, &me) {
			return nil, &fault.Error{Code: fault.IncompleteSignature, Message: me.Message}
		}
		return nil, errNoAuth
	}
	return a, nil
}

// Serves reports whether region is one a KMS or STS request may be
// signed for.
func (d *Directory) Serves(region string) bool {
	if d.regions == nil {
		return region == d.region
	}
	return d.regions[region]
}

func (d *Directory) authenticate(ctx context.Context, r *http.Request, body []byte, service string, a *sigv4.Auth) (*Principal, error) {
	if a.Service != service {
		return nil, errf(fault.SignatureDoesNotMatch, "Credential should be scoped to correct service: '%s'. ", service)
	}
	if service != "iam" && !d.Serves(a.Region) {
		return nil, errf(fault.SignatureDoesNotMatch, "Credential should be scoped to a valid region. ")
	}
	if name := unsignedHeader(r, a); name != "" {
		return nil, errf(fault.IncompleteSignature, "The request's %s header is not signed: SignedHeaders must include it. SignedHeaders=%s", name, a.SignedHeaders)
	}
	c, err := d.current(ctx, a)
	if err != nil {
		return nil, err
	}
	if !d.verifier.Verify(r, body, a, c.secret) {
		return nil, errBadSignature
	}
	return c.principal, nil
}

// Precheck checks what can be checked of r's signature before its body
// is read: that it parses, that its signing time is current, and that its
// access key (with its session token) is one the directory knows, active
// and unexpired. It returns that access key id, so that a server may
// refuse to receive a large body from a caller who is no one and charge
// the memory of the body to the key. It proves nothing of the secret (an
// access key id is no secret): Authenticate, with the body, still decides
// who signed the request.
func (d *Directory) Precheck(ctx context.Context, r *http.Request) (string, error) {
	a, err := parseAuth(r)
	if err != nil {
		return "", err
	}
	if _, err := d.current(ctx, a); err != nil {
		return "", err
	}
	return a.AccessKeyID, nil
}

// current checks what a signature says of its own time and of its caller:
// that it is within the skew of the scope's service (or within a presigned
// request's life), and that its access key and session token are valid
// now. It returns the credential to verify the signature with.
func (d *Directory) current(ctx context.Context, a *sigv4.Auth) (*credential, error) {
	maxSkew := d.maxSkew
	if a.Service != "kms" {
		maxSkew = queryMaxSkew
	}
	now := d.now().UTC()
	// A signing time has whole seconds: its window is judged at the
	// seconds a refusal names, so that none says a time is earlier than
	// itself.
	sec := now.Truncate(time.Second)
	const f = "20060102T150405Z"
	if a.Presigned {
		// A presigned request is good from its X-Amz-Date (give or take
		// the skew) until X-Amz-Expires after it, and may be sent more than
		// once within that time, as on AWS.
		if end := a.Time.Add(a.Expires); !now.Before(end) {
			return nil, errf(fault.SignatureDoesNotMatch, "Signature expired: the presigned request was valid until %s; it is now %s.",
				end.Format(f), now.Format(f))
		}
	} else if a.Time.Before(sec.Add(-maxSkew)) {
		return nil, errf(fault.SignatureDoesNotMatch, "Signature expired: %s is now earlier than %s (%s - %s.)",
			a.Time.Format(f), sec.Add(-maxSkew).Format(f), sec.Format(f), skewText(maxSkew))
	}
	if a.Time.After(sec.Add(maxSkew)) {
		return nil, errf(fault.SignatureDoesNotMatch, "Signature not yet current: %s is still later than %s (%s + %s.)",
			a.Time.Format(f), sec.Add(maxSkew).Format(f), sec.Format(f), skewText(maxSkew))
	}
	c, err := d.credential(ctx, a.AccessKeyID)
	if err != nil {
		return nil, err
	}
	if c.tokenHash == nil && a.SecurityToken != "" {
		return nil, errInvalidToken // a session token with long-term credentials
	}
	if c.tokenHash != nil {
		sum := sha256.Sum256([]byte(a.SecurityToken))
		if a.SecurityToken == "" || subtle.ConstantTimeCompare(sum[:], c.tokenHash) != 1 {
			return nil, errInvalidToken
		}
		if !now.Before(c.expires) {
			return nil, errExpiredToken
		}
	}
	return c, nil
}

// cacheLimit bounds each of the credential caches. A full cache of
// credentials makes room by evicting cacheEvictions of them; the cache of
// unknown keys is emptied instead: only callers of keys that do not work
// pay for that.
const cacheLimit = 10000

// cacheEvictions is how many credentials a full cache evicts to make room
// for one more: a hundredth, arbitrary ones (the first the map's
// randomised order of iteration yields), so that passing the bound costs
// a few callers a store read rather than every caller of every account,
// and a cache hit takes no lock for writing and keeps no note of its use.
// A credential in steady use that is evicted is read again once at its
// next request.
const cacheEvictions = cacheLimit / 100

// IAM's bounds on an access key id: 16 to 128 characters of letters,
// digits and underscores. The server makes only 20-character ones.
const (
	minAccessKeyIDLength = 16
	maxAccessKeyIDLength = 128
)

// plausibleAccessKeyID reports whether akid is of the form IAM gives
// access key ids. One that is not names no key, and is refused without
// a store read or a place in the cache of unknown keys: a signature may
// carry an id of nearly the whole header's 64 KiB, and that cache holds
// thousands.
func plausibleAccessKeyID(akid string) bool {
	if len(akid) < minAccessKeyIDLength || len(akid) > maxAccessKeyIDLength {
		return false
	}
	for i := 0; i < len(akid); i++ {
		if c := akid[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// credential returns the cached credential of an access key, loading it on
// a miss. An unknown or inactive key is errInvalidToken, and is
// remembered as such like a credential, so that a caller repeating an
// unknown key does not cost a store read each time. Unknown keys have a
// cache of their own: a flood of made-up keys empties only that one. An
// id not of IAM's form is refused without either (plausibleAccessKeyID).
func (d *Directory) credential(ctx context.Context, akid string) (*credential, error) {
	d.mu.RLock()
	c, ok := d.creds[akid]
	missed, unknown := d.misses[akid]
	gen := d.changes.Now()
	d.mu.RUnlock()
	if uncached(ctx) {
		ok, unknown = false, false
	}
	if ok {
		if d.maxAge == 0 {
			return c, nil
		}
		// One read of the clock for both: still trusted, and past three
		// quarters of its age, when a read in the background is due.
		switch age := d.now().Sub(c.loaded); {
		case age >= d.maxAge:
		case age >= d.maxAge-d.maxAge/4:
			d.refresh(akid, gen)
			return c, nil
		default:
			return c, nil
		}
	}
	if unknown && d.fresh(missed.at) {
		return nil, errInvalidToken
	}
	// Checked on a miss only: neither cache holds an id of another form.
	if !plausibleAccessKeyID(akid) {
		return nil, errInvalidToken
	}
	var start time.Time
	if d.maxAge > 0 {
		start = d.now()
	}
	c, owner, err := d.loadCredential(ctx, akid)
	if err == errInvalidToken {
		remember(d, gen, d.misses, akid, owner, miss{start, owner})
	}
	if err != nil {
		return nil, err
	}
	c.loaded = start
	d.rememberCredential(gen, akid, owner, c)
	return c, nil
}

// refresh reads the credential of akid again in the background, unless
// a read of it is under way, so that a key in use keeps being answered
// from the cache while its age runs out rather than read by every caller
// at once when it has. A key found deleted or inactive is dropped at
// once. Like every fill, what it read is kept only if no change to the
// key or its owner, and no flush, came since gen was read.
func (d *Directory) refresh(akid string, gen uint64) {
	d.refreshMu.Lock()
	if d.refreshing[akid] {
		d.refreshMu.Unlock()
		return
	}
	if d.refreshing == nil {
		d.refreshing = make(map[string]bool)
	}
	d.refreshing[akid] = true
	d.refreshMu.Unlock()
	go func() {
		defer func() {
			if p := recover(); p != nil {
				d.log.Error("panic reading a credential again in the background", "accessKeyId", akid, "panic", p)
			}
			d.refreshMu.Lock()
			delete(d.refreshing, akid)
			d.refreshMu.Unlock()
			if d.refreshed != nil {
				d.refreshed()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), d.maxAge)
		defer cancel()
		start := d.now()
		c, owner, err := d.loadCredential(ctx, akid)
		switch {
		case err == nil:
			c.loaded = start
			d.rememberCredential(gen, akid, owner, c)
		case err == errInvalidToken:
			d.mu.Lock()
			if !d.staleSince(gen, akid, owner) {
				d.dropCredential(akid)
			}
			d.mu.Unlock()
			remember(d, gen, d.misses, akid, owner, miss{start, owner})
		}
	}()
}

// remember caches v, read of access key akid and its owner (none if
// zero), under akid in m, one of d's caches, unless a change to either or
// a flush came since gen was read (what was read may be stale); a full
// cache (of d.cacheLimit entries) is emptied first.
func remember[V any](d *Directory, gen uint64, m map[string]V, akid string, owner subject, v V) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.staleSince(gen, akid, owner) {
		return
	}
	if len(m) >= d.cacheLimit {
		clear(m)
	}
	// A copy: akid is part of the request's Authorization header, which
	// it would keep whole.
	m[strings.Clone(akid)] = v
}

// rememberCredential caches c, read of access key akid and its owner, as
// remember does, within d.cacheLimit entries and d.maxCredBytes of them
// together (credential.memSize): a full cache evicts d.cacheEvictions
// arbitrary credentials first, and room for c's bytes is made from the
// largest credentials cached (evictLargestCredentials). A credential
// larger than d.maxCredBytes alone is not cached.
func (d *Directory) rememberCredential(gen uint64, akid string, owner subject, c *credential) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.staleSince(gen, akid, owner) {
		return
	}
	d.dropCredential(akid)
	if c.size > d.maxCredBytes {
		return
	}
	if len(d.creds) >= d.cacheLimit {
		d.evictCredentials(len(d.creds) - d.cacheLimit + d.cacheEvictions)
	}
	if d.credBytes+c.size > d.maxCredBytes {
		d.evictLargestCredentials(d.credBytes + c.size - d.maxCredBytes)
	}
	d.creds[strings.Clone(akid)] = c
	d.credBytes += c.size
}

// evictCredentials drops n arbitrary cached credentials: those the
// map's iteration, which starts at a random place, yields first. d.mu is
// held.
func (d *Directory) evictCredentials(n int) {
	for id := range d.creds {
		if n <= 0 {
			return
		}
		d.dropCredential(id)
		n--
	}
}

// evictLargestCredentials drops the largest cached credentials until need
// bytes are freed, so that the room a principal with large policies takes
// comes from the others with large policies, and the many small ones of
// a usual working set stay (emptying the cache would drop them all). It
// sorts the cache: the bound is passed only by the read of a large
// credential, which costs far more. d.mu is held.
func (d *Directory) evictLargestCredentials(need int64) {
	type sized struct {
		id   string
		size int64
	}
	all := make([]sized, 0, len(d.creds))
	for id, c := range d.creds {
		all = append(all, sized{id, c.size})
	}
	slices.SortFunc(all, func(a, b sized) int { return cmp.Compare(b.size, a.size) })
	for _, e := range all {
		if need <= 0 {
			return
		}
		need -= e.size
		d.dropCredential(e.id)
	}
}

// dropCredential drops the cached credential of akid, if any. d.mu is
// held.
func (d *Directory) dropCredential(akid string) {
	if c, ok := d.creds[akid]; ok {
		delete(d.creds, akid)
		d.credBytes -= c.size
	}
}

// clearCredentials drops every cached credential. d.mu is held.
func (d *Directory) clearCredentials() {
	clear(d.creds)
	d.credBytes = 0
}

// fresh reports whether what was read from the store at loaded may still
// be used: always, unless the cache has a maximum age.
func (d *Directory) fresh(loaded time.Time) bool {
	return d.maxAge == 0 || d.now().Sub(loaded) < d.maxAge
}

// loadCredential reads the credential of access key akid from the store,
// and the owner its record names (zero for an account's root, or when
// the record is not found), whether or not the credential could be made.
func (d *Directory) loadCredential(ctx context.Context, akid string) (*credential, subject, error) {
	var c *credential
	var owner subject
	err := d.st.View(ctx, func(tx store.Tx) error {
		var err error
		if len(akid) > 4 && akid[:4] == "ASIA" {
			c, err = d.loadSession(tx, akid, &owner)
		} else {
			c, err = d.loadAccessKey(tx, akid, &owner)
		}
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, owner, errInvalidToken
	}
	if err != nil {
		if e, ok := fault.As(err); ok {
			return nil, owner, e
		}
		d.log.Error("loading credentials", "accessKeyId", akid, "err", err)
		return nil, owner, err
	}
	c.owner = owner
	c.size = c.memSize()
	return c, owner, nil
}

// loadAccessKey reads the credential of access key akid in tx, setting
// owner to the user its record names.
func (d *Directory) loadAccessKey(tx store.Tx, akid string, owner *subject) (*credential, error) {
	var rec accessKeyRecord
	if err := getJSON(tx, accessKeyKey(akid), &rec); err != nil {
		return nil, err
	}
	if rec.UserName != "" {
		*owner = userOf(rec.Account, rec.UserName)
	}
	if rec.Status == statusInactive {
		return nil, errInvalidToken
	}
	secret, err := d.root.Open(accessKeyKey(rec.ID), rec.Sealed)
	if err != nil {
		return nil, errors.New("access key secret does not open under the root key")
	}
	p := &Principal{Type: TypeRoot, Account: rec.Account, ARN: RootARN(rec.Account), UserID: rec.Account, AccessKeyID: akid}
	if rec.UserName != "" {
		if p, err = userPrincipal(tx, rec.Account, rec.UserName); err != nil {
			return nil, err
		}
		p.AccessKeyID = akid
	}
	return &credential{secret: string(secret), principal: p}, nil
}

// userPrincipal is an IAM user as a principal, with its inline policies.
func userPrincipal(tx store.Tx, account, name string) (*Principal, error) {
	var u userRecord
	if err := getJSON(tx, userKey(account, name), &u); err != nil {
		return nil, err
	}
	p := &Principal{Type: TypeIAMUser, Account: account, ARN: userARN(account, u.Path, u.Name), UserID: u.ID, Username: u.Name}
	var err error
	if p.Policies, err = loadPolicies(tx, userPolicyPrefix(account, u.Name)); err != nil {
		return nil, err
	}
	return p, nil
}

// loadSession reads the credential of role session akid in tx, setting
// owner to the role its record names.
func (d *Directory) loadSession(tx store.Tx, akid string, owner *subject) (*credential, error) {
	var s sessionRecord
	if err := getJSON(tx, sessionKey(akid), &s); err != nil {
		return nil, err
	}
	*owner = roleOf(s.Account, s.RoleName)
	var role roleRecord
	if err := getJSON(tx, roleKey(s.Account, s.RoleName), &role); err != nil {
		return nil, err // the role was deleted: its sessions end with it
	}
	if role.ID != s.RoleID {
		return nil, errInvalidToken // the role was deleted and made again
	}
	secret, err := d.root.Open(sessionKey(s.ID), s.Sealed)
	if err != nil {
		return nil, errors.New("session secret does not open under the root key")
	}
	p := &Principal{
		Type: TypeAssumedRole, Account: s.Account, AccessKeyID: akid,
		ARN:           "arn:aws:sts::" + s.Account + ":assumed-role/" + role.Name + "/" + s.SessionName,
		UserID:        role.ID + ":" + s.SessionName,
		RoleARN:       roleARN(s.Account, role.Path, role.Name),
		SessionIssued: s.issued(), SessionExpires: s.Expiration,
	}
	if p.Policies, err = loadPolicies(tx, rolePolicyPrefix(s.Account, role.Name)); err != nil {
		return nil, err
	}
	return &credential{secret: string(secret), principal: p, tokenHash: s.TokenHash, expires: s.Expiration}, nil
}

func loadPolicies(tx store.Tx, prefix []byte) ([]*policy.Policy, error) {
	var out []*policy.Policy
	err := scanJSON(tx, prefix, func(r *policyRecord) error {
		p, err := policy.ParseIdentity(r.Document)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// mustBeSigned are the headers that, when a request has them, its
// signature must cover: X-Amz-Target names the operation and Content-Type
// chooses the protocol, so a signature that leaves either out could be
// replayed as another call. The AWS SDKs and CLI always sign both.
var mustBeSigned = [...]struct{ name, canonical string }{{"x-amz-target", "X-Amz-Target"}, {"content-type", "Content-Type"}}

// unsignedHeader names the first header of mustBeSigned that r has but
// a's signature does not cover, or "".
func unsignedHeader(r *http.Request, a *sigv4.Auth) string {
	for _, h := range mustBeSigned {
		if _, present := r.Header[h.canonical]; present && !a.Signs(h.name) {
			return h.canonical
		}
	}
	return ""
}

// skewText writes a clock-skew window as AWS's messages do ("5 min").
func skewText(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min"
	}
	return d.String()
}
