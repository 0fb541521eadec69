package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/service"
)

// Invoke serves the calls of another front end of the same server, the
// web console, which authenticates its principals itself (a session
// cookie, not a signature). A call goes through the same operation table
// as a signed request: the same service method, authorization and rate
// limit, and the same audit record, with the front end's user agent, and
// within the same bound (WithCallTimeout). Its errors are those the API
// would answer, as a *CallError.

// The services Invoke serves.
const (
	ServiceKMS   = "kms"   // the KMS operations; Input is the operation's JSON body
	ServiceIAM   = "iam"   // the IAM actions of query.go; Input is a JSON object of the form's fields
	ServiceTrail = "trail" // reading the audit trail (trail.go); Input is the JSON body
)

// Call is one operation a front end makes for an authenticated principal.
type Call struct {
	Principal *identity.Principal
	UserAgent string // recorded as the call's user agent
	Service   string // ServiceKMS, ServiceIAM or ServiceTrail
	Operation string // CreateKey, CreateUser, GetAuditRecords, ...
	Input     json.RawMessage
	// Region is the region of a KMS call; empty means the server's
	// default region.
	Region string
}

// CallError is a refused call as the API would answer it: the HTTP status,
// the AWS error type (IAM's code for IAM actions) and the message.
type CallError struct {
	Status        int
	Type, Message string
}

func (e *CallError) Error() string { return e.Type + ": " + e.Message }

// Invoke runs c for a request r of the front end (its address is
// recorded) and returns the operation's output as JSON: for KMS and the
// trail what the API returns, for IAM the members of the action's result.
// The call is recorded before Invoke returns; an error is a *CallError.
func (h *Handler) Invoke(r *http.Request, c Call) (json.RawMessage, error) {
	out, ce := h.invokeCall(r, c)
	if ce != nil {
		return nil, ce
	}
	return out, nil
}

// invokeCall runs, records and, like a signed call, reports c to the
// metrics and the request log.
func (h *Handler) invokeCall(r *http.Request, c Call) (json.RawMessage, *CallError) {
	start := time.Now()
	ci := h.newCall(r, keys.NewID().String())
	out, ce := h.invokeRecorded(r, ci, c)
	if h.observe != nil {
		a := &answerWriter{status: http.StatusOK}
		if ce != nil {
			a.status, a.code = ce.Status, ce.Type
		}
		h.report(a, ci.ev.RequestID, ci, start)
	}
	return out, ce
}

func (h *Handler) invokeRecorded(r *http.Request, ci *callInfo, c Call) (json.RawMessage, *CallError) {
	ci.ev.UserAgent = c.UserAgent
	ci.ev.Operation = c.Operation
	h.setPrincipal(ci, c.Principal)
	// Bounded as a signed call is once its body is read (WithCallTimeout);
	// the record is written under r's context, after.
	ctx, cancel := h.callContext(r)
	out, err := h.invokeGuarded(ctx, r, ci, c)
	err = timedOut(ctx, err)
	cancel()
	var body []byte
	if err == nil {
		if body, err = json.Marshal(out); err != nil {
			err = errors.New("encoding the output: " + err.Error())
		}
	}
	if aerr := h.audit(r.Context(), r, ci, err); aerr != nil {
		err = aerr
	}
	if err != nil {
		ce := callError(err, ci.ev.Source == "iam.amazonaws.com")
		if ce.Status >= 500 {
			h.log.Error("console call failed", "requestId", ci.ev.RequestID, "operation", c.Operation, "err", err)
		}
		return nil, ce
	}
	return body, nil
}

// invokeGuarded is invoke with a panic turned into an internal error, so
// that the call is recorded and answered as ServeHTTP does a signed
// call's.
func (h *Handler) invokeGuarded(ctx context.Context, r *http.Request, ci *callInfo, c Call) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, h.recovered(p, "panic serving a console call", "requestId", ci.ev.RequestID, "operation", c.Operation)
		}
	}()
	return h.invoke(ctx, r, ci, c)
}

func (h *Handler) invoke(ctx context.Context, r *http.Request, ci *callInfo, c Call) (any, error) {
	p := c.Principal
	if p == nil {
		return nil, errNoPrincipal
	}
	// The region IAM and the trail's decisions see: IAM's calls are made
	// in us-east-1, the console's trail reads in the default region.
	region := h.region
	if c.Service == ServiceIAM {
		region = identity.IAMRegion
	}
	ctx = identity.WithRequest(ctx, h.requestInfo(r, region))
	switch c.Service { // the source first, so that a throttled call's record names it
	case ServiceIAM:
		ci.ev.Source, ci.ev.Region = "iam.amazonaws.com", identity.IAMRegion
	case ServiceTrail:
		ci.ev.Source = trailSource
	case ServiceKMS:
	default:
		// Before the rate limit: a bucket for each name a session sends
		// would fill the limiter's table, and its clearing give every
		// account a fresh burst.
		return nil, errUnknownOperation(c.Service + "." + c.Operation)
	}
	limitRegion := region
	if c.Service == ServiceKMS && c.Region != "" {
		limitRegion = c.Region
	}
	if c.Service != ServiceIAM && !h.dir.Serves(limitRegion) {
		limitRegion = "" // refused below, for its region
	}
	if !h.limits.allow(c.Service, limitRegion, p.Account) {
		return nil, errThrottled
	}
	if err := h.trailDown(ci.ev.RequestID); err != nil {
		return nil, err
	}
	switch c.Service {
	case ServiceKMS:
		o := h.ops[c.Operation]
		h.jsonParams(ci, c.Input, o.params)
		if o.run == nil {
			return nil, errUnknownOperation(targetPrefix + c.Operation)
		}
		if c.Region != "" {
			region = c.Region
		}
		if region != "" && !h.dir.Serves(region) {
			return nil, &fault.Error{Code: fault.Validation, Message: "This server does not serve the Region " + region + "."}
		}
		ci.ev.Region = region
		if !cachedOps[c.Operation] {
			ctx = service.WithPoliciesNow(service.WithoutCache(ctx), h.dir.PoliciesNow(p))
		}
		return o.run(audit.NewContext(ctx, ci.ev), h.callerOf(p, r, region), c.Input)
	case ServiceIAM:
		var fields map[string]string
		if len(c.Input) > 0 {
			if err := json.Unmarshal(c.Input, &fields); err != nil {
				return nil, errSerialization("The request body must be a JSON object of strings.")
			}
		}
		form := url.Values{}
		for k, v := range fields {
			form.Set(k, v)
		}
		h.formParams(ci, form)
		svc := h.query[c.Operation]
		if svc == nil || svc.name != "iam" {
			return nil, errInvalidAction(c.Operation, "2010-05-08")
		}
		if err := validateQuery(c.Operation, form); err != nil {
			return nil, err
		}
		if err := refuseUnsupported(c.Operation, form); err != nil {
			return nil, err
		}
		// The change is kept with its record, as a signed call's is
		// (internal/outbox).
		return svc.actions[c.Operation](audit.NewContext(ctx, ci.ev), p, form)
	case ServiceTrail:
		h.jsonParams(ci, c.Input, trailParams)
		fn := trailOps[c.Operation]
		if fn == nil {
			return nil, errUnknownOperation(trailTargetPrefix + c.Operation)
		}
		if err := h.dir.AuthorizeGlobal(ctx, p, trailAction); err != nil {
			return nil, err
		}
		if h.trailReader == nil {
			return nil, errTrailNotServed
		}
		scope := trailScope{account: p.Account, all: h.auditorAccounts[p.Account] && h.dir.AuthorizeGlobal(ctx, p, trailAllAction) == nil}
		return fn(ctx, h.trailReader, scope, c.Input)
	}
	return nil, errUnknownOperation(c.Service + "." + c.Operation)
}

// IAMError is err as an IAM action would answer it, for a front end that
// calls the identity layer itself (the console's sign-in).
func IAMError(err error) *CallError { return callError(err, true) }

// RecordSignIn records a sign-in to a front end, successful or not, as
// CloudTrail records console sign-ins: the event ConsoleLogin from
// signin.amazonaws.com, with the principal if one signed in, else only the
// name that was tried (signInName): an access key id, or an account id and
// user name as "111122223333/alice". err is the failure the front end
// answered, or nil.
func (h *Handler) RecordSignIn(r *http.Request, userAgent string, p *identity.Principal, tried string, err error) error {
	ci := h.newCall(r, keys.NewID().String())
	ci.ev.Source = "signin.amazonaws.com"
	ci.ev.Operation = "ConsoleLogin"
	ci.ev.UserAgent = userAgent
	ci.principal = p
	if p == nil && tried != "" {
		ci.ev.Params, _ = json.Marshal(map[string]string{"userName": h.signInName(r.Context(), tried)})
	}
	if h.recorder == nil {
		return nil
	}
	if p == nil && err != nil && !h.admitAnonymous(ci) {
		return nil
	}
	ev := ci.ev
	if p != nil {
		ev.Identity = recordedIdentity(p)
	}
	if err != nil {
		ev.ErrorCode, ev.ErrorMessage = "AccessDenied", "Failed authentication"
		var ce *CallError
		if errors.As(err, &ce) {
			ev.ErrorCode, ev.ErrorMessage = ce.Type, ce.Message
		}
	}
	if rerr := h.recorder.Record(r.Context(), ev); rerr != nil {
		h.log.Error("audit trail write failed; the sign-in is refused", "requestId", ev.RequestID, "err", rerr)
		return errAuditFailed
	}
	return nil
}

// MayChange returns the error that refuses a change a front end makes
// itself (a password changed at sign-in) before it begins, as a call is
// refused: the node may not serve now, or the trail cannot record (the
// change would stay made without its record); nil if it may begin.
func (h *Handler) MayChange() error {
	return h.trailDown(keys.NewID().String())
}

// PasswordChange is the ChangePassword record of an IAM user's password
// changed as it signed in to the console (its login profile required a
// new password), as CloudTrail records one: eventSource
// iam.amazonaws.com, the user its caller, no parameters (no password is
// ever recorded). It is begun before the change, whose context carries
// it (Context) and whose transaction names the user (By), so that the
// store keeps the record with the change (internal/outbox); Record
// writes it before the sign-in is answered. A nil PasswordChange records
// nothing.
type PasswordChange struct {
	h  *Handler
	ci *callInfo
}

// BeginPasswordChange starts the record of a password changed at sign-in;
// nil without a trail.
func (h *Handler) BeginPasswordChange(r *http.Request, userAgent string) *PasswordChange {
	if h.recorder == nil {
		return nil
	}
	ci := h.newCall(r, keys.NewID().String())
	ci.ev.Source = "iam.amazonaws.com"
	ci.ev.Operation = "ChangePassword"
	ci.ev.Region = identity.IAMRegion
	ci.ev.UserAgent = userAgent
	return &PasswordChange{h: h, ci: ci}
}

// Context returns ctx carrying the record, for the change.
func (c *PasswordChange) Context(ctx context.Context) context.Context {
	if c == nil {
		return ctx
	}
	return audit.NewContext(ctx, c.ci.ev)
}

// By names the user whose password the change's transaction changes.
func (c *PasswordChange) By(p *identity.Principal) {
	if c != nil {
		c.h.setPrincipal(c.ci, p)
	}
}

// Record writes the record of the change the user p made. An error means
// it was not written, and is logged as a change without its record (the
// password stays changed; its record is kept with it in the store).
func (c *PasswordChange) Record(r *http.Request, p *identity.Principal) error {
	if c == nil {
		return nil
	}
	c.By(p)
	if err := c.h.recorder.Record(r.Context(), c.ci.ev); err != nil {
		c.h.log.Error("audit trail write failed: a password was changed at sign-in without its ChangePassword record; the sign-in is refused",
			"requestId", c.ci.ev.RequestID, "account", p.Account, "userName", p.Username, "err", err)
		return errAuditFailed
	}
	return nil
}

// hiddenName is what CloudTrail records for a sign-in name that is not a
// user's.
const hiddenName = "HIDDEN_DUE_TO_SECURITY_REASONS"

// signInName is the name a sign-in tried, as its record keeps it: only
// if it is a name the sign-in form asks for, an access key id (AKIA or
// ASIA and 16 upper-case letters or digits), or a 12-digit account id, a
// slash and the name of one of that account's IAM users, as CloudTrail
// records only the names of users that exist. Anything else is recorded
// as hiddenName: a secret typed or pasted into the wrong field, and a
// password typed into the user name field, which has the shape of a user
// name as often as not.
func (h *Handler) signInName(ctx context.Context, tried string) string {
	if isAccessKeyID(tried) {
		return tried
	}
	account, user, ok := strings.Cut(tried, "/")
	if !ok || !isAccountID(account) || !isUserName(user) || h.dir == nil {
		return hiddenName
	}
	if exists, err := h.dir.UserExists(ctx, account, user); err != nil || !exists {
		return hiddenName
	}
	return tried
}

func isAccessKeyID(s string) bool {
	if len(s) != 20 || (s[:4] != "AKIA" && s[:4] != "ASIA") {
		return false
	}
	for _, c := range []byte(s[4:]) {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isUserName reports whether s is a valid IAM user name: 1 to 64 letters,
// digits and characters of +=,.@_-.
func isUserName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("+=,.@_-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// VerifyTrail checks every chain of the trail as `kms audit verify
// --endpoint` does (the records' hashes and sequence, and the signed
// digests against each chain's stored key) and returns a report per chain.
// It reads the whole trail, page by page. It does not check a log file
// against its high-water mark, as kms audit verify does.
//
// Only a principal who reads every account's records over the API (an
// auditor of all accounts: its account among --auditor-accounts, and
// openkms:ReadAllAccountsAuditTrail) may: the reports count and describe
// every account's records, and the check reads the whole trail, which a
// reader of one account's records could otherwise make the server do
// again and again.
//
// A refusal is a *CallError, answered as the API answers it. A panic in
// the check, which reads what the store and the trail's files hold, is an
// internal error: the console calls it outside the guard of a signed
// call.
func (h *Handler) VerifyTrail(ctx context.Context, p *identity.Principal) (out []audit.Report, err error) {
	if !h.auditorAccounts[p.Account] {
		return nil, callError(fault.Newf(fault.AccessDenied, "User: %s is not authorized to perform: %s because its account is not an auditor account of this server", p.ARN, trailAllAction), false)
	}
	if err := h.dir.AuthorizeGlobal(ctx, p, trailAllAction); err != nil {
		return nil, callError(err, false)
	}
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, h.recovered(p, "panic verifying the trail")
		}
	}()
	return h.verifyTrail(ctx)
}

func (h *Handler) verifyTrail(ctx context.Context) ([]audit.Report, error) {
	if h.trailReader == nil {
		return nil, errTrailNotServed
	}
	chains, err := h.trailReader.Chains(ctx)
	if err != nil {
		return nil, err
	}
	var out []audit.Report
	for _, chain := range chains {
		key, err := h.trailReader.PublicKey(ctx, chain)
		if err != nil {
			return nil, err
		}
		if chain == "" {
			// A log file: its digests are lines of their own file, which
			// name records by sequence number.
			r, err := h.verifyFileChain(ctx, key)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
			continue
		}
		read := time.Now() // the digests read are at least those written by then
		digests, err := readAll(ctx, chain, h.trailReader.Digests)
		if err != nil {
			return nil, err
		}
		check := audit.NewChainCheck(chain, nil, key, digests, read)
		_, err = eachRow(ctx, chain, h.trailReader.Records, math.MaxInt64, func(row audit.Row) error {
			if !check.Record(row.Seq, row.Line) {
				return errChainChecked
			}
			return nil
		})
		if err != nil && err != errChainChecked {
			return nil, err
		}
		out = append(out, check.Report())
	}
	return out, nil
}

// errChainChecked stops the reading of a chain whose check needs no more.
var errChainChecked = errors.New("the chain's check needs no more records")

// readAll returns every line that read pages.
func readAll(ctx context.Context, chain string, read trailPage) ([]audit.Row, error) {
	var all []audit.Row
	_, err := eachRow(ctx, chain, read, math.MaxInt64, func(r audit.Row) error {
		all = append(all, r)
		return nil
	})
	return all, err
}

// eachRow calls fn with each line that read pages, in order, from the
// first to the one at position upTo, and returns the position of the last.
func eachRow(ctx context.Context, chain string, read trailPage, upTo int64, fn func(audit.Row) error) (int64, error) {
	var after int64
	for {
		rows, more, err := read(ctx, chain, after, maxTrailPage, maxTrailPageBytes)
		if err != nil {
			return after, err
		}
		for _, r := range rows {
			if r.Seq > upTo {
				return after, nil
			}
			if err := fn(r); err != nil {
				return after, err
			}
			after = r.Seq
		}
		if !more || len(rows) == 0 {
			return after, nil
		}
	}
}

// verifyFileChain checks the log file's records, read after its digests
// (so that every digest names a record already written), as kms audit
// verify checks a data directory's. The records are checked page by page,
// keeping the hashes of only those the digests name; the digests are read
// twice, page by page, so that none is held but the page being read.
func (h *Handler) verifyFileChain(ctx context.Context, key []byte) (audit.Report, error) {
	named := &audit.Named{}
	lastDigest, err := eachRow(ctx, "", h.trailReader.Digests, math.MaxInt64, func(d audit.Row) error {
		if dg, err := audit.ParseDigest(d.Line); err == nil {
			named.Add(dg.Sequence)
		}
		return nil
	})
	if err != nil {
		return audit.Report{}, err
	}
	check := audit.NewLogCheck(named)
	if _, err := eachRow(ctx, "", h.trailReader.Records, math.MaxInt64, func(row audit.Row) error {
		check.Line(row.Line)
		return nil
	}); err != nil {
		return audit.Report{}, err
	}
	problems := check.Problems()
	r := audit.Report{Records: uint64(check.Verified()), More: check.Dropped()}
	// A digest names a record by its sequence number, matched wherever
	// the record stands; end is where the chain ends.
	hashes, end := check.Hashes(), check.End()
	r.Total = check.Lines()
	r.Intact, r.IntactFirst, r.IntactLast = check.Intact()
	switch {
	case key == nil && r.Total > 0:
		problems = append(problems, &audit.Problem{Digest: true, Reason: "the trail has no public key to check its digests with"})
	case key != nil:
		pub, err := audit.ParsePublicKey(key)
		if err != nil {
			problems = append(problems, &audit.Problem{Digest: true, Reason: "the trail's public key is " + err.Error()})
			break
		}
		// The digests read before the records, and no later one.
		digests, w := io.Pipe()
		defer digests.Close() // the reader below stops at its next write
		go func() {
			// Not the caller's goroutine: a panic here would end the
			// process, and no call may.
			defer func() {
				if p := recover(); p != nil {
					h.log.Error("panic reading the trail's digests", "panic", p)
					w.CloseWithError(&fault.Error{Code: fault.Internal})
				}
			}()
			_, err := eachRow(ctx, "", h.trailReader.Digests, lastDigest, func(d audit.Row) error {
				_, err := w.Write(append(bytes.Clone(d.Line), '\n'))
				return err
			})
			w.CloseWithError(err)
		}()
		read, good, dp, err := audit.VerifyDigestsAll(digests, pub, hashes, end)
		if err != nil {
			return audit.Report{}, err
		}
		r.Digests, r.DigestsRead = good, read
		problems = append(problems, dp...)
		r.More += uint64(read - good - len(dp)) // the problems not kept
	}
	for i, p := range problems {
		if i == 0 {
			r.Problem = p
		} else {
			r.Later = append(r.Later, p)
		}
	}
	return r, nil
}
