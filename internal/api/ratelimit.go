package api

import (
	"sync"

	"golang.org/x/time/rate"
)

// accountLimits throttles each account's calls to a steady rate with a
// burst, as AWS's per-account request quotas do: one bucket for each
// account in each service (KMS, IAM, STS and reading the audit trail; the
// console's calls count in their service's) and each region the server
// serves (IAM's calls are all made in one), as AWS's quotas apply in each
// Region, so that an account busy assuming roles, an auditor reading the
// trail page by page, or a busy region, does not hold back the rest. Calls over the limit are refused before the operation
// runs (ThrottlingException in KMS and the trail, Throttling in IAM and
// STS); they are still recorded in the audit trail. kms audit --endpoint
// waits and asks again when throttled, as SDKs do.
type accountLimits struct {
	rate  rate.Limit
	burst int

	mu       sync.Mutex
	accounts map[limitKey]*rate.Limiter
}

// limitKey names a bucket: a service, a region of it and an account.
type limitKey struct{ service, region, account string }

// maxLimitedAccounts bounds the limiters kept; past it they start again
// (only authenticated accounts get one, so the set is the operator's).
const maxLimitedAccounts = 100000

// WithRateLimit limits every account to perSecond calls a second in each
// service and region, with bursts of burst; perSecond <= 0 means no limit (the
// default).
func (h *Handler) WithRateLimit(perSecond float64, burst int) *Handler {
	if perSecond <= 0 {
		h.limits = nil
		return h
	}
	h.limits = &accountLimits{rate: rate.Limit(perSecond), burst: max(burst, 1), accounts: make(map[limitKey]*rate.Limiter)}
	return h
}

// allow reports whether account may make one more call to service in
// region now, and takes a token for it if so. The caller names a region
// the server serves, or "" (a call refused later for its region shares
// the bucket of ""): a caller naming regions of its own cannot fill the
// table, whose clearing would give its buckets back.
func (l *accountLimits) allow(service, region, account string) bool {
	if l == nil {
		return true
	}
	k := limitKey{service, region, account}
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
