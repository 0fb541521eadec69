package api

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/identity"
)

// The server's audit trail, read over the API (docs/audit.md, "Reading the
// trail over the API"): AWS JSON 1.1 operations on the KMS endpoint under
// a target prefix of our own, signed for the service "kms", that hand out
// the trail as stored — the chains, and page by page each chain's record
// and digest lines and its public key — so that `kms audit verify
// --endpoint` runs the checks it runs on the files or the database.
//
// Reading it is for auditors: an account's root, or a principal whose
// identity policies allow cloudtrail:LookupEvents on "*". Each sees only
// its own account's records; the records of every account, and those of
// calls that no account made, only a principal of an auditor account
// (WithAuditorAccounts) that is its root or whose identity policies allow
// openkms:ReadAllAccountsAuditTrail.

const (
	trailTargetPrefix = "OpenKMSAudit_20261127."
	trailSource       = "cloudtrail.amazonaws.com"
	trailAction       = "cloudtrail:LookupEvents"
	trailAllAction    = "openkms:ReadAllAccountsAuditTrail"

	// A page holds at most maxTrailPage lines and, past its first line, at
	// most maxTrailPageBytes bytes of lines.
	maxTrailPage      = 1000
	maxTrailPageBytes = 4 << 20
	// A call reads at most maxTrailScan lines of the trail, shown to its
	// caller or not, and past the first at most maxTrailPageBytes bytes of
	// them: a reader who may see few records does not make one call read
	// the whole trail.
	maxTrailScan = 10 * maxTrailPage
)

// A TrailReader reads the stored trail for the audit operations. A
// record's or digest's position is its line number in a file (from 1) or
// its seq in PostgreSQL. Implementations are safe for concurrent use and
// read a trail that is being written: a line still being written is left
// out. audit.FileTrail and audit.PostgresTrail implement it.
type TrailReader interface {
	// Chains lists the chains, ordered by id; a log file's one chain is "".
	Chains(ctx context.Context) ([]string, error)
	// Records returns chain's record lines after position after, in order,
	// at most limit of them and, past the first, at most maxBytes bytes of
	// lines; more reports whether others follow. A chain the trail does
	// not hold has none.
	Records(ctx context.Context, chain string, after int64, limit, maxBytes int) (rows []audit.Row, more bool, err error)
	// Digests is Records for the chain's signed digests.
	Digests(ctx context.Context, chain string, after int64, limit, maxBytes int) (rows []audit.Row, more bool, err error)
	// PublicKey returns the PEM key kept for chain's digests, or nil.
	PublicKey(ctx context.Context, chain string) ([]byte, error)
}

var (
	_ TrailReader = (*audit.FileTrail)(nil)
	_ TrailReader = (*audit.PostgresTrail)(nil)
)

// WithTrailReader makes h serve its audit trail, read with r, to callers
// allowed to read it.
func (h *Handler) WithTrailReader(r TrailReader) *Handler {
	h.trailReader = r
	return h
}

// WithAuditorAccounts names the accounts whose principals may be allowed
// to read the records of every account: their roots, and their IAM users
// and role sessions whose identity policies allow
// openkms:ReadAllAccountsAuditTrail. An account cannot grant that to
// itself, as it can any action in its own identity policies: only the
// server's operator names these accounts.
func (h *Handler) WithAuditorAccounts(accounts ...string) *Handler {
	h.auditorAccounts = map[string]bool{}
	for _, a := range accounts {
		h.auditorAccounts[a] = true
	}
	return h
}

// trailScope is which records a reader of the trail may see.
type trailScope struct {
	all     bool   // every record
	account string // or those of this account
}

// visible reports whether a record line is in the scope: a record whose
// caller or recipient account is the reader's, or, as AWS logs a
// cross-account call in the account whose resource it used too, one that
// names a key of the reader's account among its resources and was not
// refused for access, or an AssumeRole, not refused, of a role of the
// reader's account (the record its sessions' calls are traced back by).
// A line that is not a record, or a record of a call no account made,
// only an auditor of all accounts sees.
func (s trailScope) visible(line []byte) bool {
	if s.all {
		return true
	}
	var ln struct {
		Event struct {
			UserIdentity struct {
				AccountID string `json:"accountId"`
			} `json:"userIdentity"`
			RecipientAccountID string `json:"recipientAccountId"`
			ErrorCode          string `json:"errorCode"`
			Resources          []struct {
				AccountID string `json:"accountId"`
			} `json:"resources"`
			EventSource string          `json:"eventSource"`
			EventName   string          `json:"eventName"`
			Params      json.RawMessage `json:"requestParameters"`
		} `json:"event"`
	}
	if json.Unmarshal(line, &ln) != nil {
		return false
	}
	ev := &ln.Event
	if ev.UserIdentity.AccountID == s.account || ev.RecipientAccountID == s.account {
		return true
	}
	if ev.ErrorCode == wireTypes[fault.AccessDenied] {
		return false
	}
	for _, r := range ev.Resources {
		if r.AccountID == s.account {
			return true
		}
	}
	if ev.EventSource == "sts.amazonaws.com" && ev.EventName == "AssumeRole" && ev.ErrorCode == "" {
		var params struct {
			RoleArn string `json:"roleArn"`
		}
		json.Unmarshal(ev.Params, &params) // a role named, the call succeeded: the role is of its account
		return arnAccount(params.RoleArn) == s.account
	}
	return false
}

// arnAccount is the account field of an ARN, or "".
func arnAccount(arn string) string {
	f := strings.SplitN(arn, ":", 6)
	if len(f) < 6 || f[0] != "arn" {
		return ""
	}
	return f[4]
}

// trailOp is one audit operation, its caller authorized.
type trailOp func(ctx context.Context, r TrailReader, scope trailScope, body []byte) (any, error)

var trailOps = map[string]trailOp{
	"ListAuditChains":   listAuditChains,
	"GetAuditRecords":   getAuditRecords,
	"GetAuditDigests":   getAuditDigests,
	"GetAuditPublicKey": getAuditPublicKey,
}

// serveTrail is serve for the audit operations: the same request checks
// and authentication, then authorization to read the trail.
func (h *Handler) serveTrail(r *http.Request, ci *callInfo) (any, error) {
	ci.ev.Source = trailSource
	target := r.Header.Get("X-Amz-Target")
	name := strings.TrimPrefix(target, trailTargetPrefix)
	ci.ev.Operation = name
	fn := trailOps[name]
	switch {
	case r.Method != http.MethodPost:
		return nil, errNotPost
	case fn == nil:
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
	h.jsonParams(ci, body, trailParams)
	ctx, cancel := h.callContext(r)
	defer cancel()
	out, err := h.trailCall(ctx, r, ci, fn, body)
	return out, timedOut(ctx, err)
}

// trailCall authenticates and authorizes an audit operation whose body
// has been read, and runs it.
func (h *Handler) trailCall(ctx context.Context, r *http.Request, ci *callInfo, fn trailOp, body []byte) (any, error) {
	p, region, err := h.dir.Authenticate(ctx, r, body, "kms")
	if err != nil {
		return nil, err
	}
	ci.principal = p
	ci.ev.Region = region
	if !h.limits.allow(ServiceTrail, region, p.Account) {
		return nil, errThrottled
	}
	actx := identity.WithRequest(ctx, h.requestInfo(r, region))
	if err := h.dir.AuthorizeGlobal(actx, p, trailAction); err != nil {
		return nil, err
	}
	if h.trailReader == nil {
		return nil, errTrailNotServed
	}
	scope := trailScope{account: p.Account, all: h.auditorAccounts[p.Account] && h.dir.AuthorizeGlobal(actx, p, trailAllAction) == nil}
	return fn(ctx, h.trailReader, scope, body)
}

// trailPageInput is the request of GetAuditRecords and GetAuditDigests.
type trailPageInput struct {
	Chain         string
	AfterSequence int64 // the position of the last line read; 0 for the first page
	Limit         int   // lines; 0 for the most, maxTrailPage
}

// trailLine is a stored line, without its newline, and its position.
type trailLine struct {
	Sequence int64
	Line     string
}

type trailPage func(ctx context.Context, chain string, after int64, limit, maxBytes int) ([]audit.Row, bool, error)

// readPage decodes a page request and reads the page with read, keeping
// the lines visible in scope, at most Limit of them. Past lines out of
// scope it reads on, in batches of maxTrailPage lines, until it has Limit
// lines, the trail ends or it has read maxTrailScan lines or
// maxTrailPageBytes bytes: so a page may be empty and still be truncated.
// It returns the lines, whether lines follow the last one read, and that
// one's position.
func readPage(ctx context.Context, body []byte, scope trailScope, read trailPage) (lines []trailLine, more bool, last int64, err error) {
	var in trailPageInput
	if err := decodeBody(body, &in); err != nil {
		return nil, false, 0, err
	}
	switch {
	case in.AfterSequence < 0:
		return nil, false, 0, trailValidation("AfterSequence must be at least 0.")
	case in.Limit < 0 || in.Limit > maxTrailPage:
		return nil, false, 0, trailValidation("Limit must be between 1 and %d.", maxTrailPage)
	case in.Limit == 0:
		in.Limit = maxTrailPage
	}
	lines, last = []trailLine{}, in.AfterSequence
	scanned, size := 0, 0 // lines read, and their bytes
	batch := in.Limit     // the first batch may be the page; the next, the most
	for {
		rows, more, err := read(ctx, in.Chain, last, min(batch, maxTrailScan-scanned), max(maxTrailPageBytes-size, 0))
		if err != nil {
			return nil, false, 0, err
		}
		for i, r := range rows {
			if scanned > 0 && size+len(r.Line) > maxTrailPageBytes {
				return lines, true, last, nil
			}
			scanned++
			size += len(r.Line)
			last = r.Seq
			if scope.visible(r.Line) {
				lines = append(lines, trailLine{Sequence: r.Seq, Line: string(r.Line)})
				if len(lines) == in.Limit {
					return lines, more || i < len(rows)-1, last, nil
				}
			}
		}
		if !more || len(rows) == 0 {
			return lines, false, last, nil
		}
		if scanned >= maxTrailScan {
			return lines, true, last, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, false, 0, err
		}
		batch = maxTrailPage
	}
}

func trailValidation(format string, args ...any) error { return errValidation(format, args...) }

func listAuditChains(ctx context.Context, r TrailReader, _ trailScope, body []byte) (any, error) {
	if err := decodeBody(body, &struct{}{}); err != nil {
		return nil, err
	}
	chains, err := r.Chains(ctx)
	if err != nil {
		return nil, err
	}
	return &struct{ Chains []string }{append([]string{}, chains...)}, nil
}

func getAuditRecords(ctx context.Context, r TrailReader, scope trailScope, body []byte) (any, error) {
	lines, more, last, err := readPage(ctx, body, scope, r.Records)
	if err != nil {
		return nil, err
	}
	return &struct {
		Records      []trailLine
		Truncated    bool
		LastSequence int64
	}{lines, more, last}, nil
}

// getAuditDigests hands out every digest: a digest names a record by
// sequence number and hash only.
func getAuditDigests(ctx context.Context, r TrailReader, _ trailScope, body []byte) (any, error) {
	lines, more, last, err := readPage(ctx, body, trailScope{all: true}, r.Digests)
	if err != nil {
		return nil, err
	}
	return &struct {
		Digests      []trailLine
		Truncated    bool
		LastSequence int64
	}{lines, more, last}, nil
}

func getAuditPublicKey(ctx context.Context, r TrailReader, _ trailScope, body []byte) (any, error) {
	var in struct{ Chain string }
	if err := decodeBody(body, &in); err != nil {
		return nil, err
	}
	key, err := r.PublicKey(ctx, in.Chain)
	if err != nil {
		return nil, err
	}
	return &struct {
		PublicKey string `json:",omitempty"`
	}{string(key)}, nil
}
