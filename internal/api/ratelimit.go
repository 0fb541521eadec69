package api

import (
	"sync"

	"golang.org/x/time/rate"
)

// accountLimits throttles each account's calls to a steady rate with a
// burst, as AWS's per-account request quotas do: one bucket for each
// account in each service (KMS, IAM, STS and reading the audit trail; the
// console's calls count in their service's), so that an account busy
// assuming roles, or an auditor reading the trail page by page, is not
// held back in KMS. Calls over the limit are refused before the operation
// runs (ThrottlingException in KMS and the trail, Throttling in IAM and
// STS); they are still recorded in the audit trail. kms audit --endpoint
// waits and asks again when throttled, as SDKs do.
type accountLimits struct {
	rate  rate.Limit
	burst int

	mu       sync.Mutex
	accounts map[limitKey]*rate.Limiter
}

// limitKey names a bucket: a service and an account in it.
type limitKey struct{ service, account string }

// maxLimitedAccounts bounds the limiters kept; past it they start again
// (only authenticated accounts get one, so the set is the operator's).
const maxLimitedAccounts = 100000

// WithRateLimit limits every account to perSecond calls a second in each
// service, with bursts of burst; perSecond <= 0 means no limit (the
// default).
func (h *Handler) WithRateLimit(perSecond float64, burst int) *Handler {
	if perSecond <= 0 {
		h.limits = nil
		return h
	}
	h.limits = &accountLimits{rate: rate.Limit(perSecond), burst: max(burst, 1), accounts: make(map[limitKey]*rate.Limiter)}
	return h
}

// allow reports whether account may make one more call to service now,
// and takes a token for it if so.
func (l *accountLimits) allow(service, account string) bool {
	if l == nil {
		return true
	}
	k := limitKey{service, account}
	l.mu.Lock()
	lim, ok := l.accounts[k]
	if !ok {
		if len(l.accounts) >= maxLimitedAccounts {
			clear(l.accounts)
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.accounts[k] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}
