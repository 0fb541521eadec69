package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/identity"
)

// signInRequest is the body of POST /console/api/signin: an account id,
// user name and password, or an access key id and secret.
type signInRequest struct {
	Account         string `json:"account"`
	UserName        string `json:"userName"`
	Password        string `json:"password"`
	NewPassword     string `json:"newPassword"` // when the password must be reset
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

var (
	errSignInFailed = &api.CallError{Status: http.StatusUnauthorized, Type: "SignInFailed",
		Message: "Your authentication information is incorrect. Please try again."}
	errPasswordResetRequired = &api.CallError{Status: http.StatusForbidden, Type: "PasswordResetRequired",
		Message: "Your password must be changed before you sign in. Choose a new password."}
	errTooManySessions = &api.CallError{Status: http.StatusServiceUnavailable, Type: "ServiceUnavailable",
		Message: "The console has as many sessions as it can hold. Try again later."}
	errVerifyBusy = &api.CallError{Status: http.StatusTooManyRequests, Type: "Throttling",
		Message: "The audit trail is being verified for another request. Try again when it is done."}
	errSignInBody      = api.BodyRefused("A sign-in request must be at most 8 KiB and arrive at once.")
	errSignInThrottled = &api.CallError{Status: http.StatusTooManyRequests, Type: "Throttling",
		Message: "Too many failed sign-in attempts. Wait a few minutes before trying again."}
	// errSignInInternal answers a sign-in that the directory could not
	// check, as any request that fails inside is answered.
	errSignInInternal = &api.CallError{Status: http.StatusInternalServerError, Type: "InternalError",
		Message: "An internal error occurred. Retry the request."}
	// errPasswordChangedUnrecorded answers a sign-in whose password was
	// changed but whose record of the change could not be written: the
	// temporary password no longer signs in, and a retry with it would
	// count as a failure.
	errPasswordChangedUnrecorded = &api.CallError{Status: http.StatusInternalServerError, Type: "InternalError",
		Message: "Your password was changed, but the sign-in could not be completed. Sign in with your new password."}
)

// signIn checks the credentials, starts a session and sets its cookie.
// Every attempt is recorded in the audit trail; failures count toward the
// rate limit, and once past it an attempt is refused, and recorded, without
// checking the credentials.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request, body []byte) {
	var in signInRequest
	if err := json.Unmarshal(body, &in); err != nil {
		h.fail(w, api.NotJSONObject())
		return
	}
	// IAM names are unique regardless of case: so is their count of
	// failures.
	name := in.AccessKeyID
	if in.AccessKeyID == "" {
		name = in.Account + "/" + strings.ToLower(in.UserName)
	}
	addr := clientAddr(r)
	if !h.limiter.begin(name, addr) {
		h.limiter.refused(name, addr)
		if h.record(w, r, nil, name, errSignInThrottled) {
			h.fail(w, errSignInThrottled)
		}
		return
	}
	failed, succeeded := false, false
	defer func() { h.limiter.end(name, addr, failed, succeeded) }()
	// Each password check holds 19 MiB for Argon2id: bound how many run
	// at once, whatever the number of clients.
	select {
	case h.checks <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	defer func() { <-h.checks }()
	ctx, cancel := h.callContext(r)
	defer cancel()
	var p *identity.Principal
	var err error
	var change *api.PasswordChange
	switch {
	case in.AccessKeyID != "":
		p, err = h.dir.SignInWithAccessKey(ctx, in.AccessKeyID, in.SecretAccessKey)
	case in.NewPassword != "":
		// A password is not changed while its record cannot be written
		// (it would stay changed without one): asked once the caller is
		// known, so that no one else learns of the trail or fills the log.
		// Its record is kept with the change in the store.
		change = h.backend.BeginPasswordChange(r, UserAgent)
		p, err = h.dir.ChangePasswordAtSignIn(change.Context(ctx), in.Account, in.UserName, in.Password, in.NewPassword, h.backend.MayChange, change.By)
	default:
		p, err = h.dir.SignInWithPassword(ctx, in.Account, in.UserName, in.Password)
	}
	if errors.Is(err, identity.ErrPasswordResetRequired) {
		// The password was right: not a failure to count, but the user
		// may not sign in until it has chosen another.
		if h.record(w, r, nil, name, errPasswordResetRequired) {
			h.fail(w, errPasswordResetRequired)
		}
		return
	}
	if err != nil && !errors.Is(err, identity.ErrSignInFailed) {
		if ce := api.IAMError(err); ce.Status < 500 {
			// The new password was refused (the password policy).
			if h.record(w, r, nil, name, ce) {
				h.fail(w, ce)
			}
			return
		}
	}
	if errors.Is(err, identity.ErrSignInFailed) {
		failed = true
		if h.record(w, r, nil, name, errSignInFailed) {
			h.fail(w, errSignInFailed)
		}
		return
	}
	if err != nil {
		// The directory failed (its store, or the time allowed): no
		// fault of the caller's, but an attempt all the same, recorded
		// as the API records a call that failed, with what it answers.
		failure := timedOut(ctx, err)
		if _, ok := errors.AsType[*api.CallError](failure); !ok {
			h.log.Error("console sign-in failed", "err", err)
			failure = errSignInInternal
		}
		if h.record(w, r, nil, name, failure) {
			h.fail(w, failure)
		}
		return
	}
	if in.NewPassword != "" && in.AccessKeyID == "" {
		// The password was changed: a call of its own in the trail,
		// before the sign-in.
		if err := change.Record(r, p); err != nil {
			h.fail(w, errPasswordChangedUnrecorded)
			return
		}
	}
	succeeded = true
	if c, err := r.Cookie(h.cookieName(r)); err == nil {
		h.sessions.delete(c.Value) // a session of this browser from before
	}
	token, csrf, ok := h.sessions.create(p)
	if !ok {
		if h.record(w, r, nil, name, errTooManySessions) {
			h.fail(w, errTooManySessions)
		}
		return
	}
	if !h.record(w, r, p, name, nil) {
		h.sessions.delete(token)
		return
	}
	http.SetCookie(w, h.cookie(r, token, 0))
	writeJSON(w, http.StatusOK, h.whoami(&session{principal: p, csrf: csrf}))
}

// record writes the sign-in's audit record; if it cannot be written, it
// answers the request with the failure and reports false.
func (h *Handler) record(w http.ResponseWriter, r *http.Request, p *identity.Principal, name string, failure error) bool {
	tried := name
	if p != nil {
		tried = ""
	}
	if err := h.backend.RecordSignIn(r, UserAgent, p, tried, failure); err != nil {
		h.fail(w, err)
		return false
	}
	return true
}

// verifyTrail answers whether the audit trail's chains verify, for a
// principal allowed to read every account's records (the backend's
// VerifyTrail says who).
func (h *Handler) verifyTrail(w http.ResponseWriter, r *http.Request, se *session) {
	// Listing the chains is the authorization (cloudtrail:LookupEvents),
	// and the record of the check.
	if _, err := h.backend.Invoke(r, api.Call{Principal: se.principal, UserAgent: UserAgent, Service: api.ServiceTrail,
		Operation: "ListAuditChains", Input: []byte("{}")}); err != nil {
		h.fail(w, err)
		return
	}
	// A check reads the whole trail: one at a time, whoever asks.
	select {
	case h.verifying <- struct{}{}:
		defer func() { <-h.verifying }()
	default:
		h.fail(w, errVerifyBusy)
		return
	}
	reports, err := h.backend.VerifyTrail(r.Context(), se.principal)
	if err != nil {
		h.fail(w, err)
		return
	}
	type chain struct {
		Chain    string   `json:"chain"`
		Records  uint64   `json:"records"`
		Digests  int      `json:"digests"`
		Problems []string `json:"problems,omitempty"`
	}
	out := struct {
		Verified bool    `json:"verified"`
		Chains   []chain `json:"chains"`
	}{Verified: true, Chains: []chain{}}
	for _, rep := range reports {
		c := chain{Chain: rep.Chain, Records: rep.Total, Digests: rep.Digests}
		for _, p := range rep.Problems() {
			c.Problems = append(c.Problems, p.Reason)
			out.Verified = false
		}
		if rep.More > 0 {
			c.Problems = append(c.Problems, fmt.Sprintf("... and %d more breaks", rep.More))
		}
		out.Chains = append(out.Chains, c)
	}
	writeJSON(w, http.StatusOK, out)
}
