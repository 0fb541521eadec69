package api

import (
	"sync"

	"golang.org/x/time/rate"
)

// accountLimits throttles each account's KMS calls to a steady rate with
// a burst, as AWS KMS's per-account request quotas do. Calls over it are
// refused with ThrottlingException before the operation runs; they are
// still recorded in the audit trail.
type accountLimits struct {
	rate  rate.Limit
	burst int

	mu       sync.Mutex
	accounts map[string]*rate.Limiter
}

// maxLimitedAccounts bounds the limiters kept; past it they start again
// (only authenticated accounts get one, so the set is the operator's).
const maxLimitedAccounts = 100000

// WithRateLimit limits every account to perSecond KMS calls a second, with
// bursts of burst; perSecond <= 0 means no limit (the default).
func (h *Handler) WithRateLimit(perSecond float64, burst int) *Handler {
	if perSecond <= 0 {
		h.limits = nil
		return h
	}
	h.limits = &accountLimits{rate: rate.Limit(perSecond), burst: max(burst, 1), accounts: make(map[string]*rate.Limiter)}
	return h
}

func (l *accountLimits) allow(account string) bool {
	l.mu.Lock()
	lim, ok := l.accounts[account]
	if !ok {
		if len(l.accounts) >= maxLimitedAccounts {
			clear(l.accounts)
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.accounts[account] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}
