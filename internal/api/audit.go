package api

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/sigv4"
)

// callInfo is what the protocol layer learns about a call as it serves it:
// the audit event it fills in, and the principal once authenticated.
type callInfo struct {
	ev        *audit.Event // &event
	principal *identity.Principal
	w         http.ResponseWriter // the answer's, for deadlines of the connection; nil for console calls
	event     audit.Event         // in the same allocation as the callInfo
}

// newCall starts the record of a call. The event travels to the service in
// the context of its operation (serve), so that it can add the keys it
// resolves.
func (h *Handler) newCall(r *http.Request, reqID string) *callInfo {
	ci := &callInfo{event: audit.Event{Time: h.now(), Source: "kms.amazonaws.com", Region: h.region,
		SourceIP: sourceIP(r), UserAgent: r.UserAgent(), RequestID: reqID, EventID: keys.NewID().String()}}
	ci.ev = &ci.event
	return ci
}

// jsonParams notes the audited members of a JSON request body that the
// operation's input has (has; nil: any), when there is a trail to write
// them to.
func (h *Handler) jsonParams(ci *callInfo, body []byte, has *paramSet) {
	if h.recorder != nil {
		ci.ev.Params = requestParameters(body, has)
	}
}

// formParams notes the audited members of a query-protocol form.
func (h *Handler) formParams(ci *callInfo, form url.Values) {
	if h.recorder != nil {
		ci.ev.Params = formParameters(form)
	}
}

// setPrincipal notes the caller of a call once it is authenticated, in
// its record too: a change the call makes is kept with its record as it
// stands at the commit (internal/outbox).
func (h *Handler) setPrincipal(ci *callInfo, p *identity.Principal) {
	ci.principal = p
	if h.recorder != nil && p != nil {
		ci.ev.Identity = recordedIdentity(p)
	}
}

// audit records a call before it is answered. Without a trail it does
// nothing. An error means the call must not be acknowledged.
func (h *Handler) audit(ctx context.Context, r *http.Request, ci *callInfo, callErr error) error {
	if h.recorder == nil {
		return nil
	}
	ev := ci.ev
	if p := ci.principal; p != nil {
		if ev.Identity.Type == "" {
			ev.Identity = recordedIdentity(p)
		}
	} else if callErr != nil && !h.admitAnonymous(ci) {
		return nil
	} else if a, err := sigv4.Parse(r); err == nil {
		ev.Identity = audit.UserIdentity{AccessKeyID: triedAccessKeyID(a.AccessKeyID)}
	}
	if callErr != nil {
		_, typ, msg := wireError(callErr)
		if ev.Source == "iam.amazonaws.com" || ev.Source == "sts.amazonaws.com" {
			_, typ, msg = queryWireError(callErr)
		}
		ev.ErrorCode, ev.ErrorMessage = typ, msg
	}
	if err := h.recorder.Record(ctx, ev); err != nil {
		h.log.Error("audit trail write failed; the call is refused", "requestId", ev.RequestID, "err", err)
		return errAuditFailed
	}
	return nil
}

// triedAccessKeyID is the access key id of a request whose authentication
// failed, as its record keeps it: only if it has the shape of one
// (isAccessKeyID), as every id this server issues has. Anything else is
// recorded as hiddenName: a caller whose id and secret are swapped sends
// its secret access key there, and one without a '/' parses as an id.
func triedAccessKeyID(id string) string {
	if isAccessKeyID(id) {
		return id
	}
	return hiddenName
}

// trailDown refuses a call before it begins while its record could not be
// written (audit.Recorder.Err): the call would change things, answered or
// not, that the trail would never show; and while the node may not serve
// (WithServing). The refusal itself is offered to the trail, as every
// answer is.
func (h *Handler) trailDown(reqID string) error {
	if h.serving != nil {
		if err := h.serving(); err != nil {
			h.log.Error("the node may not serve now; the call is refused before it begins", "requestId", reqID, "err", err)
			return errNotServing
		}
	}
	if h.recorder == nil {
		return nil
	}
	if err := h.recorder.Err(); err != nil {
		h.log.Error("audit trail failing; the call is refused before it begins", "requestId", reqID, "err", err)
		return errAuditFailed
	}
	return nil
}

// admitAnonymous decides whether the call, refused before its caller was
// known, is recorded (anonBudget): if so it notes on its event how many
// such calls went unrecorded before it.
func (h *Handler) admitAnonymous(ci *callInfo) bool {
	ok, skipped := h.anon.admit(ci.ev.SourceIP)
	ci.ev.UnrecordedBefore = skipped
	return ok
}

// formParameters keeps the audited members of a form, named as CloudTrail
// names them (lower camel case), in auditedParams order and bounded as
// those of a JSON body are.
func formParameters(form url.Values) json.RawMessage {
	var found [len(auditedParams)][]byte
	for k, v := range form {
		if !isAuditedForm(k) || len(v) == 0 {
			continue
		}
		f, _ := paramIndex([]byte(k))
		s := v[0]
		// A string is cut at its bound as written in JSON, which is never
		// shorter than the string: past the bound, the rest is not read.
		if n := maxParamString(paramNames[f]) + 1; len(s) > n {
			s = s[:n]
		}
		found[f], _ = json.Marshal(s)
	}
	b, _ := writeParams(&found)
	return b
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Bounds on the request parameters of a record: each string, as written in
// JSON, but for policies, which maxPolicyBytes bounds as AWS does a key
// policy; the elements kept of each array (AWS takes at most 50 tags, and
// fewer grant tokens and grant operations); and the whole object, as
// written, so that no request body, however made, gives a large record.
const (
	maxParamBytes  = 2048
	maxPolicyBytes = 32 << 10
	maxParamItems  = 50
	maxParamsBytes = 64 << 10
)

// maxParamString is the bound on the strings of the request parameter
// named name.
func maxParamString(name string) int {
	switch name {
	case "policy", "policyDocument", "assumeRolePolicyDocument":
		return maxPolicyBytes
	}
	return maxParamBytes
}

// recordedIdentity is how a call's record names its caller. A role
// session's record also names the role that issued it (CloudTrail's
// sessionContext); its Principal's UserID is ROLEID:SESSION.
func recordedIdentity(p *identity.Principal) audit.UserIdentity {
	u := audit.UserIdentity{Type: p.Type, PrincipalID: p.UserID, ARN: p.ARN, AccountID: p.Account,
		AccessKeyID: p.AccessKeyID, UserName: p.Username}
	if p.Type == identity.TypeAssumedRole && p.RoleARN != "" {
		roleID, _, _ := strings.Cut(p.UserID, ":")
		u.SessionContext = &audit.SessionContext{
			SessionIssuer: audit.SessionIssuer{Type: "Role", PrincipalID: roleID, ARN: p.RoleARN, AccountID: p.Account,
				UserName: p.RoleARN[strings.LastIndexByte(p.RoleARN, '/')+1:]},
			Attributes: audit.SessionAttributes{CreationDate: audit.FormatTime(p.SessionIssued), MFAAuthenticated: "false"},
		}
	}
	return u
}
