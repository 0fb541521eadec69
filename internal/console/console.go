// Package console is the web console served at /console/: plain HTML, CSS
// and JavaScript embedded in the binary, and small JSON endpoints under
// /console/api/ that act for the signed-in principal.
//
// A principal signs in with an IAM user name and the password of its
// login profile, or with a long-term access key id and its secret. The
// session is a random token in an HttpOnly, SameSite=Strict cookie (Secure
// over https) with idle and absolute timeouts; every request but signing
// in carries the session's CSRF token in a header; failed sign-ins are
// rate limited and each is audited. The console holds no authority of its
// own: every action is a call of the API's operation table
// (api.Handler.Invoke) as the signed-in principal, so key policies,
// identity policies and grants decide it as they decide a signed request,
// and the call is audited with the console as its user agent.
// docs/console.md describes the security model.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/identity"
)

// UserAgent is the user agent the audit trail records for console calls.
const UserAgent = "openkms-console/1"

// Prefix is the path the console is served under.
const Prefix = "/console/"

//go:embed assets
var assets embed.FS

// Backend runs the console's calls; *api.Handler implements it.
type Backend interface {
	ReadBody(w http.ResponseWriter, r *http.Request, maxBytes int64, who func(*http.Request) (string, error)) (body []byte, release func(), err error)
	Invoke(r *http.Request, c api.Call) (json.RawMessage, error)
	RecordSignIn(r *http.Request, userAgent string, p *identity.Principal, tried string, err error) error
	MayChange() error
	BeginPasswordChange(r *http.Request, userAgent string) *api.PasswordChange
	VerifyTrail(ctx context.Context, p *identity.Principal) ([]audit.Report, error)
}

// Directory signs principals in; *identity.Directory implements it.
type Directory interface {
	SignInWithPassword(ctx context.Context, account, userName, password string) (*identity.Principal, error)
	SignInWithAccessKey(ctx context.Context, accessKeyID, secret string) (*identity.Principal, error)
	ChangePasswordAtSignIn(ctx context.Context, account, userName, oldPassword, newPassword string, mayChange func() error, changing func(*identity.Principal)) (*identity.Principal, error)
	Refresh(ctx context.Context, p *identity.Principal) (*identity.Principal, error)
}

var (
	_ Backend   = (*api.Handler)(nil)
	_ Directory = (*identity.Directory)(nil)
)

// Config holds a Handler's dependencies.
type Config struct {
	Backend   Backend
	Directory Directory
	// Secure marks the session cookie Secure: set it when the console is
	// served over https.
	Secure bool
	// Now is the clock of session timeouts and the sign-in rate limit
	// (time.Now if nil).
	Now             func() time.Time
	IdleTimeout     time.Duration // DefaultIdleTimeout if zero
	AbsoluteTimeout time.Duration // DefaultAbsoluteTimeout if zero
	Logger          *slog.Logger
	// Regions are the regions the page offers for KMS calls, and Region
	// the one it starts in; a call names its region in the X-KMS-Region
	// header (none: the server's default).
	Regions []string
	Region  string
	// CallTimeout bounds the directory's work for a request (reading a
	// session's principal again, checking a sign-in), as the API's
	// WithCallTimeout bounds a call: past it the request is answered
	// DependencyTimeoutException (503). Zero: no bound but the client's.
	CallTimeout time.Duration
	// LoopbackOnly, for a server that listens on a loopback address only,
	// refuses requests whose Host is not a loopback name or address: a
	// page of another site whose name was made to resolve to 127.0.0.1
	// (DNS rebinding) cannot reach the console as a page of its own site.
	LoopbackOnly bool
}

// Handler serves the console. It is safe for concurrent use.
type Handler struct {
	backend  Backend
	dir      Directory
	secure   bool
	sessions *sessions
	limiter  *signInLimiter
	log      *slog.Logger
	static   http.Handler
	index    []byte
	checks   chan struct{} // a slot per sign-in check running
	// verifying holds the one trail verification that may run at once.
	verifying chan struct{}
	regions   []string
	region    string
	loopback  bool
	// callTimeout is Config.CallTimeout.
	callTimeout time.Duration
}

// maxConcurrentSignIns bounds the sign-in checks that run at once.
const maxConcurrentSignIns = 8

// New returns the console's handler, to be mounted at Prefix.
func New(cfg Config) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.AbsoluteTimeout <= 0 {
		cfg.AbsoluteTimeout = DefaultAbsoluteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree is part of the build
	}
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic(err)
	}
	return &Handler{backend: cfg.Backend, dir: cfg.Directory, secure: cfg.Secure,
		sessions: newSessions(cfg.Now, cfg.IdleTimeout, cfg.AbsoluteTimeout), limiter: newSignInLimiter(cfg.Now),
		log: cfg.Logger, static: http.StripPrefix(Prefix+"static/", http.FileServerFS(sub)), index: index,
		checks: make(chan struct{}, maxConcurrentSignIns), verifying: make(chan struct{}, 1), regions: cfg.Regions, region: cfg.Region, loopback: cfg.LoopbackOnly,
		callTimeout: cfg.CallTimeout}
}

// contentSecurityPolicy allows only the console's own scripts, styles and
// API: no inline script or style, no framing, no other origin. Its
// Trusted Types directives make a browser that has them refuse any
// string put into the page as HTML or script (innerHTML and the like),
// so that the page's rule of setting text only as text fails closed.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

// ServeHTTP implements http.Handler. A panic is answered with the
// internal error, as the API answers a call's: the calls a session makes
// are recorded by the API's own guard (Backend.Invoke); a sign-in or a
// session's check that panics is answered as one that failed inside.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.Error("panic serving a console request", "path", r.URL.Path, "panic", p)
			writeError(w, http.StatusInternalServerError, "InternalError", "An internal error occurred. Retry the request.")
		}
	}()
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	if h.loopback && !loopbackHost(r.Host) {
		http.Error(w, "the console answers only to a loopback host name", http.StatusMisdirectedRequest)
		return
	}
	path := r.URL.Path
	switch {
	case path == strings.TrimSuffix(Prefix, "/"):
		http.Redirect(w, r, Prefix, http.StatusFound)
	case path == Prefix || path == Prefix+"index.html":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		hdr.Set("Cache-Control", "no-store")
		w.Write(h.index)
	case strings.HasPrefix(path, Prefix+"static/"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if strings.HasSuffix(path, "/") {
			http.NotFound(w, r) // files only, no listings
			return
		}
		hdr.Set("Cache-Control", "no-cache")
		h.static.ServeHTTP(w, r)
	case strings.HasPrefix(path, Prefix+"api/"):
		hdr.Set("Cache-Control", "no-store")
		h.serveAPI(w, r, strings.TrimPrefix(path, Prefix+"api/"))
	default:
		http.NotFound(w, r)
	}
}

// maxAPIBody bounds the body of a request of a session: a key policy of
// 32 KB with every character escaped fits. A request without a session,
// signing in included, is read as the API reads one whose caller it does
// not know (Backend.ReadBody): at most 8 KiB, which hold any sign-in,
// within the few seconds such a body has to arrive.
const maxAPIBody = 256 << 10

// maxSignInBody bounds a sign-in's body.
const maxSignInBody = 8 << 10

// apiError is the body of a refused console request: AWS's error type
// and message when the API refused the call.
type apiError struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"__type":"InternalError","message":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, apiError{typ, msg})
}

// Console errors of the request itself.
var (
	errNotSignedIn = &api.CallError{Status: http.StatusUnauthorized, Type: "NotSignedIn", Message: "Your session has ended. Sign in again."}
	errCSRF        = &api.CallError{Status: http.StatusForbidden, Type: "InvalidCsrfToken", Message: "The request did not carry this session's CSRF token. Reload the page."}
)

func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request, route string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "Console API requests are POST.")
		return
	}
	// A JSON content type cannot be sent cross-origin without a CORS
	// preflight, which this server never grants; a foreign Origin is
	// refused outright.
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "Console API requests are application/json.")
		return
	}
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "ForeignOrigin", "Console API requests must come from the console's own origin.")
		return
	}
	// The session first: a request without one has its body read only as
	// far as an unknown caller's (Backend.ReadBody).
	if route == "signin" {
		body, release, err := h.backend.ReadBody(w, r, maxSignInBody, refuseUnknown(errSignInBody))
		defer release()
		if err != nil {
			h.failUnread(w, err)
			return
		}
		h.signIn(w, r, body)
		return
	}
	token, se, err := h.session(r)
	if err != nil {
		// Read what an unknown caller may send, so that the connection is
		// held no longer than for one of the API's.
		_, release, rerr := h.backend.ReadBody(w, r, maxAPIBody, refuseUnknown(errNotSignedIn))
		release()
		if rerr != nil {
			h.failUnread(w, err)
			return
		}
		h.fail(w, err)
		return
	}
	body, release, err := h.backend.ReadBody(w, r, maxAPIBody, func(*http.Request) (string, error) { return bodyOwner(se.principal), nil })
	defer release()
	if err != nil {
		h.failUnread(w, err)
		return
	}
	if route == "session" {
		// How the page learns its CSRF token: readable only by a page of
		// this origin, and it changes nothing.
		writeJSON(w, http.StatusOK, h.whoami(se))
		return
	}
	if !se.validCSRF(r.Header.Get("X-CSRF-Token")) {
		h.fail(w, errCSRF)
		return
	}
	switch {
	case route == "signout":
		h.sessions.delete(token)
		http.SetCookie(w, h.cookie(r, "", -1))
		writeJSON(w, http.StatusOK, struct{}{})
	case route == "audit/verify":
		h.verifyTrail(w, r, se)
	case strings.HasPrefix(route, "call/"):
		service, op, ok := strings.Cut(strings.TrimPrefix(route, "call/"), "/")
		if !ok || op == "" || strings.Contains(op, "/") {
			writeError(w, http.StatusNotFound, "NotFound", "No such console endpoint.")
			return
		}
		if t := strings.TrimSpace(string(body)); t == "" || t == "null" {
			body = []byte("{}")
		}
		c := api.Call{Principal: se.principal, UserAgent: UserAgent, Service: service, Operation: op, Input: body}
		if service == api.ServiceKMS {
			c.Region = r.Header.Get("X-KMS-Region") // the API refuses a region it does not serve
		}
		out, err := h.backend.Invoke(r, c)
		if err != nil {
			h.fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if string(out) == "null" {
			out = []byte("{}")
		}
		w.Write(out)
	default:
		writeError(w, http.StatusNotFound, "NotFound", "No such console endpoint.")
	}
}

// refuseUnknown is the Backend.ReadBody check of a caller without a
// session: it refuses it with err.
func refuseUnknown(err error) func(*http.Request) (string, error) {
	return func(*http.Request) (string, error) { return "", err }
}

// bodyOwner is the share of the memory for request bodies a session's
// bodies are charged to: that of the access key it signed in with, which
// its signed calls share, else its principal's.
func bodyOwner(p *identity.Principal) string {
	if p.AccessKeyID != "" {
		return p.AccessKeyID
	}
	return p.ARN
}

// session returns the caller's live session, its principal read again so
// that a changed policy applies at once and a deleted key or user ends it.
// It is read from the store, not the directory's cache: in a cluster the
// cache may lag a change made on another node, and a session whose access
// was just revoked there must not use that lag to make a change that
// outlives it (a new access key, a policy). Console traffic is light
// enough to read it every time.
func (h *Handler) session(r *http.Request) (string, *session, error) {
	c, err := r.Cookie(h.cookieName(r))
	if err != nil {
		return "", nil, errNotSignedIn
	}
	se, ok := h.sessions.get(c.Value)
	if !ok {
		return "", nil, errNotSignedIn
	}
	ctx, cancel := h.callContext(r)
	defer cancel()
	p, err := h.dir.Refresh(identity.WithoutCache(ctx), se.principal)
	if errors.Is(err, identity.ErrSignInFailed) {
		h.sessions.delete(c.Value)
		return "", nil, errNotSignedIn
	}
	if err != nil {
		return "", nil, timedOut(ctx, err)
	}
	if !h.sessions.update(c.Value, p) {
		return "", nil, errNotSignedIn
	}
	se.principal = p
	return c.Value, se, nil
}

// errCallTimeout answers a request whose directory work did not end
// within Config.CallTimeout, as the API answers such a call.
var errCallTimeout = api.CallTimedOut()

// callContext returns the context of the directory's work for r: r's,
// bounded by Config.CallTimeout.
func (h *Handler) callContext(r *http.Request) (context.Context, context.CancelFunc) {
	if h.callTimeout <= 0 {
		return context.WithCancel(r.Context())
	}
	return context.WithTimeout(r.Context(), h.callTimeout)
}

// timedOut returns errCallTimeout in place of err, a failure of the
// server's own (not an answer about the request), once ctx, a
// callContext, has run out.
func timedOut(ctx context.Context, err error) error {
	if err == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	var ce *api.CallError
	if errors.As(err, &ce) {
		return err
	}
	return errCallTimeout
}

// failUnread answers a request whose body could not be read whole: its
// connection is closed once the answer is sent, rather than read on to
// the body's end.
func (h *Handler) failUnread(w http.ResponseWriter, err error) {
	w.Header().Set("Connection", "close")
	http.NewResponseController(w).SetReadDeadline(time.Now())
	h.fail(w, err)
}

func (h *Handler) fail(w http.ResponseWriter, err error) {
	var ce *api.CallError
	if errors.As(err, &ce) {
		writeError(w, ce.Status, ce.Type, ce.Message)
		return
	}
	h.log.Error("console request failed", "err", err)
	writeError(w, http.StatusInternalServerError, "InternalError", "An internal error occurred. Retry the request.")
}

// whoami is what the page knows of its session.
func (h *Handler) whoami(se *session) any {
	p := se.principal
	return struct {
		ARN       string   `json:"arn"`
		Account   string   `json:"account"`
		Type      string   `json:"type"`
		UserName  string   `json:"userName,omitempty"`
		CSRFToken string   `json:"csrfToken"`
		Regions   []string `json:"regions,omitempty"`
		Region    string   `json:"region,omitempty"`
	}{p.ARN, p.Account, p.Type, p.Username, se.csrf, h.regions, h.region}
}

// secureFor reports whether the browser sent r over https: the console
// is served so (Config.Secure), or r came over TLS, to this server or to
// a trusted proxy that said so.
func (h *Handler) secureFor(r *http.Request) bool {
	return h.secure || api.ReachedOverTLS(r)
}

// cookieName is the session cookie's name for r: over https, with the
// __Host- prefix, which a browser accepts only Secure, without Domain and
// for Path=/, so that no other host can set it.
func (h *Handler) cookieName(r *http.Request) string {
	if h.secureFor(r) {
		return "__Host-kms-console"
	}
	return "kms-console"
}

// cookie is the session cookie for r; maxAge < 0 deletes it. It lives no
// longer than the browser session: the server's timeouts end it sooner.
// Over https it is Secure, so that the browser never sends it in the
// clear, to an http:// address of the same host.
func (h *Handler) cookie(r *http.Request, token string, maxAge int) *http.Cookie {
	c := &http.Cookie{Name: h.cookieName(r), Value: token, Path: "/", HttpOnly: true, Secure: h.secureFor(r),
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge}
	return c
}

// loopbackHost reports whether host (a Host header, perhaps with a port)
// names this machine: localhost, *.localhost or a loopback address.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.Unmap().IsLoopback()
}

// sameOrigin reports whether r's Origin, if it has one, is the server it
// was sent to.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") == "" || r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
