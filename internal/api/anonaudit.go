package api

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// anonBudget decides which calls refused before their caller was known
// (no signature, a bad one, an unknown key, a failed console sign-in) get
// a record each. Anyone who can reach the port can make such calls, and
// each was a record on disk: enough of them would fill the trail's disk
// and bury the calls that matter. So each source address (an IPv6 one by
// its /64, which one holder can spread its calls over) has a budget, and
// all sources together another. A call over budget is refused just the
// same, but not recorded; the next record of such a call says how many
// were left out (unrecordedBefore), and Handler.UnrecordedCalls counts
// them all.
// Calls whose caller is known are always recorded.
type anonBudget struct {
	now         func() time.Time
	perSource   rate.Limit
	sourceBurst int
	all         *rate.Limiter
	mu          sync.Mutex
	sources     map[string]*rate.Limiter
	skipped     uint64 // since the last record of such a call
	total       uint64 // left unrecorded since the start
	maxSources  int
}

// The default budgets: per source, 10 records a second in bursts of 100;
// in all, 200 a second in bursts of 2,000 (about 200 KiB a second of
// trail at most, some 17 GiB a day under a sustained flood).
const (
	anonPerSource   = 10
	anonSourceBurst = 100
	anonAll         = 200
	anonAllBurst    = 2000
	anonMaxSources  = 100000 // past it the per-source budgets start again
)

func newAnonBudget(now func() time.Time, perSource float64, sourceBurst int, all float64, allBurst int) *anonBudget {
	return &anonBudget{now: now, perSource: rate.Limit(perSource), sourceBurst: sourceBurst,
		all: rate.NewLimiter(rate.Limit(all), allBurst), sources: make(map[string]*rate.Limiter), maxSources: anonMaxSources}
}

// admit reports whether a call from ip refused before its caller was
// known gets a record; if so, skipped is the number of such calls left
// unrecorded since the previous one recorded.
func (b *anonBudget) admit(ip string) (ok bool, skipped uint64) {
	src := sourceKey(ip)
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	lim := b.sources[src]
	if lim == nil {
		if len(b.sources) >= b.maxSources {
			clear(b.sources)
		}
		lim = rate.NewLimiter(b.perSource, b.sourceBurst)
		b.sources[src] = lim
	}
	// The source's token is taken only if the whole budget has one too,
	// and given back otherwise: a flood from elsewhere does not use up a
	// quiet source's budget.
	r := lim.ReserveN(now, 1)
	if !r.OK() || r.DelayFrom(now) > 0 {
		r.CancelAt(now)
		b.skipped++
		b.total++
		return false, 0
	}
	if !b.all.AllowN(now, 1) {
		r.CancelAt(now)
		b.skipped++
		b.total++
		return false, 0
	}
	skipped, b.skipped = b.skipped, 0
	return true, skipped
}

// sourceKey is the budget an address draws on: itself, or its /64 for
// IPv6.
func sourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// unrecorded is the number of calls left unrecorded since the start.
func (b *anonBudget) unrecorded() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// pending is the number of calls left unrecorded since the last record
// of such a call: the count the next one will carry.
func (b *anonBudget) pending() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.skipped
}

// UnrecordedSinceLastRecord is the number of calls refused before their
// caller was known, left unrecorded over their budget, since the last such
// call that was recorded: no record says so yet. The server logs it when
// it stops.
func (h *Handler) UnrecordedSinceLastRecord() uint64 { return h.anon.pending() }

// UnrecordedCalls is the number of calls refused before their caller was
// known that were left unrecorded, over their budget (anonBudget), since
// h was made.
func (h *Handler) UnrecordedCalls() uint64 { return h.anon.unrecorded() }
