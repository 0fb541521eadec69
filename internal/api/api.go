// Package api implements the server's two wire protocols over HTTP: the
// AWS JSON 1.1 protocol of AWS KMS (POST / with X-Amz-Target:
// TrentService.<Operation>, a JSON body of the operation's input members,
// blobs as base64 and timestamps as epoch seconds; also the trail-reading
// operations, trail.go) and the query protocol of IAM and STS (query.go).
// It authenticates the caller, hands the decoded request to the service
// (or identity) and writes the response or the error as AWS does, with an
// x-amzn-RequestId on every response; errors.go is the one place a domain
// error becomes its wire form. Each call's audit event is started here and
// recorded before the answer (audit.go). No panic escapes a request.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openkms/kms/internal/fault"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/service"
)

// MaxBodyBytes bounds a request body. The largest legitimate KMS request, a
// 32 KB key policy with every character escaped, is well below it.
const MaxBodyBytes = 1 << 20

const targetPrefix = "TrentService."

// Handler serves the KMS API, the audit trail to auditors (trail.go), the
// IAM and STS actions of query.go, and GET /healthz.
type Handler struct {
	svc      *service.Service
	dir      *identity.Directory
	log      *slog.Logger
	ops      map[string]operation
	query    map[string]*queryService
	recorder audit.Recorder // nil: no audit trail
	// serving says why this node may not serve now (nil: it may); nil
	// when nothing can stop it.
	serving func() error
	region  string
	now     func() time.Time
	anon    *anonBudget // which unauthenticated calls are recorded (anonaudit.go)

	// trailReader serves the trail to auditors (trail.go); nil: not served.
	trailReader TrailReader
	// auditorAccounts may read every account's records (trail.go).
	auditorAccounts map[string]bool

	bodies *bodyBudget // memory for bodies being received (body.go)
	// readTimeout is the server's read timeout (WithReadTimeout); zero:
	// bodies are read within whatever deadline the connection has.
	readTimeout time.Duration
	// precheck checks a request's signature as far as it can without its
	// body, before a large body is received (Directory.Precheck).
	precheck func(*http.Request) (string, error)
	observe  func(*Request) // nil: calls are not reported (observe.go)
	limits   *accountLimits // nil: no rate limit (ratelimit.go)

	// tlsInFront: requests that reach h in plain HTTP came over TLS to a
	// proxy in front (WithTLSInFront).
	tlsInFront bool
	// callTimeout bounds a call once its body is read (WithCallTimeout);
	// zero: no bound but the client's.
	callTimeout time.Duration
}

type viaTLSProxyKey struct{}

// ViaTLSProxy returns r marked as having reached its proxy over TLS, so
// that aws:SecureTransport is true for it: for the server's front, which
// knows which proxies to believe.
func ViaTLSProxy(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), viaTLSProxyKey{}, true))
}

// ReachedOverTLS reports whether the client sent r over TLS: to this
// server, or to a trusted proxy that said so (ViaTLSProxy).
func ReachedOverTLS(r *http.Request) bool {
	return r.TLS != nil || r.Context().Value(viaTLSProxyKey{}) != nil
}

// WithTLSInFront declares that h is served behind a TLS-terminating proxy,
// so that aws:SecureTransport is true for requests that reach it in plain
// HTTP. Requests h receives over TLS itself are secure either way.
func (h *Handler) WithTLSInFront(on bool) *Handler {
	h.tlsInFront = on
	return h
}

// WithReadTimeout tells h the server's bound on the time a client takes
// to send a request (http.Server.ReadTimeout). h then gives a body whose
// caller it cannot know yet (Directory.Precheck refuses it) only
// unknownBodyTime to arrive, and closes its connection after answering,
// so that callers who are no one cannot hold the server's connections
// for the whole read timeout with bodies they never finish.
func (h *Handler) WithReadTimeout(d time.Duration) *Handler {
	h.readTimeout = d
	return h
}

// WithCallTimeout bounds how long a call may take once its body has
// been read: past d its work is cancelled (a store transaction waiting on
// a lock another client holds, or on a database that does not answer, is
// rolled back and its connection freed) and a KMS call that failed for it
// is answered DependencyTimeoutException (503), which SDKs retry. Without
// it a call waits for as long as the store does, and calls pile up behind
// a lock held for minutes.
func (h *Handler) WithCallTimeout(d time.Duration) *Handler {
	h.callTimeout = d
	return h
}

// callContext returns the context of a call whose body has been read:
// r's, bounded by WithCallTimeout, but for its wait for a turn to make
// an RSA key pair and the making of it (service.WithClient).
func (h *Handler) callContext(r *http.Request) (context.Context, context.CancelFunc) {
	if h.callTimeout <= 0 {
		return context.WithCancel(r.Context())
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.callTimeout)
	return service.WithClient(ctx, r.Context()), cancel
}

// timedOut returns errCallTimeout in place of err when the call failed on
// the server's side (an internal error, not an answer about the request)
// after ctx, its callContext, ran out: the store did not answer in time.
func timedOut(ctx context.Context, err error) error {
	if err == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	var pe *protocolError
	if errors.As(err, &pe) {
		return err
	}
	if e, ok := fault.As(err); ok && e.Code != fault.Internal {
		return err
	}
	return errCallTimeout
}

// WithBodyMemory bounds the bytes of request bodies h holds at once while
// receiving them (DefaultBodyMemory unless set).
func (h *Handler) WithBodyMemory(n int64) *Handler {
	h.bodies = newBodyBudget(n)
	return h
}

// WithServing makes h refuse every call before it begins while serving
// returns an error: for a node of a cluster that lost its place in it.
func (h *Handler) WithServing(serving func() error) *Handler {
	h.serving = serving
	return h
}

// WithAudit makes h record every call with rec before it answers.
func (h *Handler) WithAudit(rec audit.Recorder, region string) *Handler {
	h.recorder, h.region = rec, region
	return h
}

type opFunc func(ctx context.Context, caller service.Caller, body []byte) (any, error)

// operation is a KMS operation as the protocol serves it: run decodes its
// body and calls the service; params are the audited members its input
// has, the only ones its record names (a member it does not read, such
// as DryRun sent to an operation without it, is not in the record).
type operation struct {
	run    opFunc
	params *paramSet
}

// NewHandler returns the HTTP handler for svc, authenticating callers
// against dir.
func NewHandler(svc *service.Service, dir *identity.Directory, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{svc: svc, dir: dir, log: log, now: time.Now, bodies: newBodyBudget(DefaultBodyMemory)}
	h.anon = newAnonBudget(func() time.Time { return h.now() }, anonPerSource, anonSourceBurst, anonAll, anonAllBurst)
	h.precheck = func(r *http.Request) (string, error) { return dir.Precheck(r.Context(), r) }
	h.query = h.queryServices()
	h.ops = map[string]operation{
		"CreateKey":                           op(svc.CreateKey),
		"DescribeKey":                         op(svc.DescribeKey),
		"ListKeys":                            op(svc.ListKeys),
		"EnableKey":                           op(svc.EnableKey),
		"DisableKey":                          op(svc.DisableKey),
		"ScheduleKeyDeletion":                 op(svc.ScheduleKeyDeletion),
		"CancelKeyDeletion":                   op(svc.CancelKeyDeletion),
		"UpdateKeyDescription":                op(svc.UpdateKeyDescription),
		"CreateAlias":                         op(svc.CreateAlias),
		"UpdateAlias":                         op(svc.UpdateAlias),
		"DeleteAlias":                         op(svc.DeleteAlias),
		"ListAliases":                         op(svc.ListAliases),
		"TagResource":                         op(svc.TagResource),
		"UntagResource":                       op(svc.UntagResource),
		"ListResourceTags":                    op(svc.ListResourceTags),
		"Encrypt":                             op(svc.Encrypt),
		"Decrypt":                             op(svc.Decrypt),
		"ReEncrypt":                           op(svc.ReEncrypt),
		"GenerateDataKey":                     op(svc.GenerateDataKey),
		"GenerateDataKeyWithoutPlaintext":     op(svc.GenerateDataKeyWithoutPlaintext),
		"GenerateRandom":                      op(svc.GenerateRandom),
		"EnableKeyRotation":                   op(svc.EnableKeyRotation),
		"DisableKeyRotation":                  op(svc.DisableKeyRotation),
		"GetKeyRotationStatus":                op(svc.GetKeyRotationStatus),
		"RotateKeyOnDemand":                   op(svc.RotateKeyOnDemand),
		"ListKeyRotations":                    op(svc.ListKeyRotations),
		"GetParametersForImport":              op(svc.GetParametersForImport),
		"ImportKeyMaterial":                   op(svc.ImportKeyMaterial),
		"DeleteImportedKeyMaterial":           op(svc.DeleteImportedKeyMaterial),
		"GetKeyPolicy":                        op(svc.GetKeyPolicy),
		"PutKeyPolicy":                        op(svc.PutKeyPolicy),
		"ListKeyPolicies":                     op(svc.ListKeyPolicies),
		"CreateGrant":                         op(svc.CreateGrant),
		"ListGrants":                          op(svc.ListGrants),
		"ListRetirableGrants":                 op(svc.ListRetirableGrants),
		"RetireGrant":                         op(svc.RetireGrant),
		"RevokeGrant":                         op(svc.RevokeGrant),
		"Sign":                                op(svc.Sign),
		"Verify":                              op(svc.Verify),
		"GetPublicKey":                        op(svc.GetPublicKey),
		"DeriveSharedSecret":                  op(svc.DeriveSharedSecret),
		"Encapsulate":                         op(svc.Encapsulate),
		"Decapsulate":                         op(svc.Decapsulate),
		"GenerateMac":                         op(svc.GenerateMac),
		"VerifyMac":                           op(svc.VerifyMac),
		"GenerateDataKeyPair":                 op(svc.GenerateDataKeyPair),
		"GenerateDataKeyPairWithoutPlaintext": op(svc.GenerateDataKeyPairWithoutPlaintext),
		"ReplicateKey":                        op(svc.ReplicateKey),
		"UpdatePrimaryRegion":                 op(svc.UpdatePrimaryRegion),
		"GetKeyLastUsage":                     op(svc.GetKeyLastUsage),
		"CreateCustomKeyStore":                op(svc.CreateCustomKeyStore),
		"ConnectCustomKeyStore":               op(svc.ConnectCustomKeyStore),
		"DisconnectCustomKeyStore":            op(svc.DisconnectCustomKeyStore),
		"DeleteCustomKeyStore":                op(svc.DeleteCustomKeyStore),
		"UpdateCustomKeyStore":                op(svc.UpdateCustomKeyStore),
		"DescribeCustomKeyStores":             op(svc.DescribeCustomKeyStores),
	}
	return h
}

// Operations lists the KMS operations h serves (by their X-Amz-Target
// names without the TrentService prefix), sorted.
func (h *Handler) Operations() []string {
	names := make([]string, 0, len(h.ops))
	for name := range h.ops {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// op adapts a service method to an operation: decode the JSON body into
// its input type, call it, and hand back its output (nil for operations
// whose response has no members).
func op[In, Out any](fn func(context.Context, service.Caller, *In) (*Out, error)) operation {
	structs := structMembers(reflect.TypeFor[In]())
	tags := slices.Contains(structs, "tags") && hasTags(reflect.TypeFor[In]())
	run := func(ctx context.Context, caller service.Caller, body []byte) (any, error) {
		in := new(In)
		if err := decodeInto(body, in, structs); err != nil {
			return nil, err
		}
		ctx = service.WithEmptyMembers(ctx, emptyMembers(body, reflect.TypeFor[In]()))
		if tags {
			ctx = service.WithNullMembers(ctx, tagMembersLeftOut(body))
		}
		out, err := fn(ctx, caller, in)
		if err != nil || out == nil {
			return nil, err
		}
		return out, nil
	}
	return operation{run: run, params: paramsOf(reflect.TypeFor[In]())}
}

// jsonSpace is the white space JSON allows around a value (RFC 8259).
const jsonSpace = " \t\r\n"

// decodeBody decodes a JSON request body into v, a pointer to the
// operation's input, refusing what the operation would read otherwise
// than its record shows (checkMembers).
func decodeBody(body []byte, v any) error {
	return decodeInto(body, v, structMembers(reflect.TypeOf(v)))
}

// decodeInto is decodeBody for an input type whose structMembers are
// known.
func decodeInto(body []byte, v any, structs []string) error {
	// JSON's white space only: a body that other white space (a vertical
	// tab, U+00A0) starts is not JSON, and its record, which reads the
	// body as JSON, would name none of the members the call acted on.
	body = bytes.Trim(body, jsonSpace)
	if len(body) == 0 {
		return nil
	}
	if body[0] != '{' {
		return errNotJSONObject
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errSerialization(serializationMessage(err))
	}
	if badText(body) {
		return badTextError(body)
	}
	return checkMembers(body, reflect.TypeOf(v), structs)
}

// badTextError refuses a body with text that is not Unicode, naming the
// member that holds it as a validation error does.
func badTextError(body []byte) error {
	member := badTextMember(body)
	if member == "" {
		return errNotUTF8
	}
	return errValidation("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must contain only valid Unicode text (UTF-8, with no unpaired surrogate escapes)", member)
}

func serializationMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("Member '%s' has the wrong type: expected %s, got a JSON %s.", te.Field, wireType(te.Type), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("The request body is not valid JSON (offset %d).", se.Offset)
	}
	if strings.Contains(err.Error(), "base64") {
		return "A binary member is not valid base64."
	}
	return "The request body could not be read: " + strings.TrimPrefix(err.Error(), "json: ")
}

// wireType names a member's type as the API's model does (a list, a
// structure...), not as Go spells it.
func wireType(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	if t == reflect.TypeFor[kmsapi.Time]() {
		return "a timestamp (epoch seconds)"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a blob (base64 string)"
		}
		return "a list"
	case reflect.Map:
		return "a map"
	case reflect.Struct:
		return "a structure"
	case reflect.Pointer:
		return wireType(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a value"
}

// recovered logs a call's panic p and returns the internal error the call
// is answered with. http.ErrAbortHandler, net/http's way to abort a
// response, is let through.
func (h *Handler) recovered(p any, msg string, args ...any) error {
	if p == http.ErrAbortHandler {
		panic(p)
	}
	h.log.Error(msg, append(args, "panic", p)...)
	return &fault.Error{Code: fault.Internal}
}

// documentPolicy is the Content-Security-Policy of every answer of the
// API. The API shares its origin with the web console, and its answers
// quote what callers sent (an operation's name, a user's path): a browser
// sent to it by another site's form, or framing it, gets a document that
// may run nothing, load nothing and, sandboxed, does not count as of the
// console's origin. X-Content-Type-Options: nosniff keeps a browser from
// reading an answer as another type than it is.
const documentPolicy = "default-src 'none'; frame-ancestors 'none'; sandbox"

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", documentPolicy)
	if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "ok\n")
		return
	}
	r = joinRepeated(r)
	reqID := keys.NewID().String()
	w.Header()["X-Amzn-Requestid"] = []string{reqID} // x-amzn-RequestId, as Set would store it
	ci := h.newCall(r, reqID)
	if h.observe != nil {
		a := &answerWriter{ResponseWriter: w}
		w = a
		defer h.report(a, reqID, ci, time.Now())
	}
	ci.w = w
	defer func() {
		if p := recover(); p != nil {
			err := h.recovered(p, "panic serving request", "requestId", reqID, "target", r.Header.Get("X-Amz-Target"))
			// The call may have changed something before it failed: it
			// is recorded, as any other answer is.
			h.audit(r.Context(), r, ci, err)
			// Answered in the protocol of the call, so that its SDK
			// reads an internal error it may retry.
			switch ci.ev.Source {
			case "iam.amazonaws.com":
				h.writeQueryError(w, reqID, iamNamespace, err)
			case "sts.amazonaws.com":
				h.writeQueryError(w, reqID, stsNamespace, err)
			default:
				h.writeError(w, reqID, err)
			}
		}
	}()
	if r.Method == http.MethodPost && r.Header.Get("X-Amz-Target") == "" && isForm(r.Header.Get("Content-Type")) {
		ci.ev.Source = "iam.amazonaws.com"
		h.serveQuery(w, r, reqID, ci)
		return
	}
	serve := h.serve
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), trailTargetPrefix) {
		serve = h.serveTrail
	}
	out, err := serve(r, ci)
	var body []byte
	if err == nil && out != nil {
		body, err = json.Marshal(out)
	}
	if aerr := h.audit(r.Context(), r, ci, err); aerr != nil {
		err = aerr
	}
	if err != nil {
		h.writeError(w, reqID, err)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/x-amz-json-1.1")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// joinRepeated returns r with each of X-Amz-Target and Content-Type, if
// given more than once, as one value: its values joined by commas, which
// is what a signature covers (SigV4's canonical headers). Read otherwise,
// by its first value, two X-Amz-Target headers would name one operation
// to this server and another to anything in front of it that reads the
// last, or the whole, under the same signature. Joined, they name no
// operation.
func joinRepeated(r *http.Request) *http.Request {
	joined := false
	for _, name := range joinedHeaders {
		if vs := r.Header[name]; len(vs) > 1 {
			if !joined {
				r, joined = r.Clone(r.Context()), true // a handler leaves its request as it was
			}
			r.Header[name] = []string{strings.Join(vs, ",")}
		}
	}
	return r
}

var joinedHeaders = [...]string{"X-Amz-Target", "Content-Type"}

func (h *Handler) serve(r *http.Request, ci *callInfo) (any, error) {
	if r.Method != http.MethodPost {
		return nil, errNotPost
	}
	target := r.Header.Get("X-Amz-Target")
	name, ok := strings.CutPrefix(target, targetPrefix)
	ci.ev.Operation = name
	if !ok {
		ci.ev.Operation = target
	}
	o := h.ops[name]
	if !ok || o.run == nil {
		if target == "" {
			return nil, errNoTarget
		}
		return nil, errUnknownOperation(target)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/x-amz-json-1.1" && mt != "application/x-amz-json-1.0" && mt != "application/json") {
			return nil, errContentType(ct)
		}
	}
	body, release, err := h.readBody(r, ci.w)
	defer release()
	if err != nil {
		return nil, err
	}
	h.jsonParams(ci, body, o.params)
	ctx, cancel := h.callContext(r)
	defer cancel()
	out, err := h.call(ctx, r, ci, name, o, body)
	return out, timedOut(ctx, err)
}

// call authenticates and authorizes a KMS call whose body has been read,
// and runs it.
func (h *Handler) call(ctx context.Context, r *http.Request, ci *callInfo, name string, o operation, body []byte) (any, error) {
	if !cachedOps[name] {
		ctx = service.WithoutCache(identity.WithoutCache(ctx))
	}
	p, region, err := h.dir.Authenticate(ctx, r, body, "kms")
	if err != nil {
		return nil, err
	}
	h.setPrincipal(ci, p)
	ci.ev.Region = region
	if !cachedOps[name] {
		ctx = service.WithPoliciesNow(ctx, h.dir.PoliciesNow(p))
	}
	if !h.limits.allow(ServiceKMS, region, p.Account) {
		return nil, errThrottled
	}
	if err := h.trailDown(ci.ev.RequestID); err != nil {
		return nil, err
	}
	return o.run(audit.NewContext(ctx, ci.ev), h.callerOf(p, r, region), body)
}

// cachedOps are the operations that may be decided from the caches of
// callers and keys: the cryptographic operations and the reads. In a
// cluster a node's caches lag a change made on another node by at most
// their maximum age when notifications are lost (docs/cluster.md). Every
// other operation changes something that would outlast that lag (a
// policy, a grant, an alias, a key's state), so its caller and keys are
// read from the store: a caller whose access was just revoked elsewhere
// cannot use the lag to give it back.
var cachedOps = map[string]bool{
	"Encrypt": true, "Decrypt": true, "ReEncrypt": true, "GenerateDataKey": true, "GenerateDataKeyWithoutPlaintext": true,
	"GenerateDataKeyPair": true, "GenerateDataKeyPairWithoutPlaintext": true, "GenerateRandom": true,
	"Sign": true, "Verify": true, "GenerateMac": true, "VerifyMac": true, "GetPublicKey": true, "DeriveSharedSecret": true,
	"Encapsulate": true, "Decapsulate": true,
	"DescribeKey": true, "ListKeys": true, "ListAliases": true, "ListGrants": true, "ListRetirableGrants": true,
	"ListKeyPolicies": true, "ListResourceTags": true, "ListKeyRotations": true, "GetKeyPolicy": true,
	"GetKeyRotationStatus": true, "GetKeyLastUsage": true, "DescribeCustomKeyStores": true,
}

func (h *Handler) writeError(w http.ResponseWriter, reqID string, err error) {
	status, typ, msg := wireError(err)
	noteCode(w, typ)
	if status >= 500 {
		h.log.Error("request failed", "requestId", reqID, "err", err)
	}
	var body []byte
	if msg == "" {
		body, _ = json.Marshal(struct {
			Type string `json:"__type"`
		}{typ})
	} else {
		body, _ = json.Marshal(struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}{typ, msg})
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/x-amz-json-1.1")
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

func isForm(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/x-www-form-urlencoded"
}

// callerOf turns an authenticated principal, making a request r in region,
// into the service's caller.
func (h *Handler) callerOf(p *identity.Principal, r *http.Request, region string) service.Caller {
	ri := h.requestInfo(r, region)
	return service.Caller{
		AccountID: p.Account,
		ARN:       p.ARN,
		Root:      p.Type == identity.TypeRoot,
		Principal: p.PolicyPrincipal(),
		Policies:  p.Policies,
		SourceIP:  ri.SourceIP,
		Region:    region,

		SecureTransport: ri.SecureTransport,
	}
}

// requestInfo is what policies' global condition keys see of r, a call
// made in region: the client's address, whether it came over TLS, and
// the region.
func (h *Handler) requestInfo(r *http.Request, region string) identity.RequestInfo {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return identity.RequestInfo{SourceIP: host, SecureTransport: r.TLS != nil || h.tlsInFront || r.Context().Value(viaTLSProxyKey{}) != nil,
		Region: region}
}
