package console

import (
	"net/netip"
	"sync"
	"time"
)

// Limits on failed sign-ins: within signInWindow, at most
// maxFailuresPerName failures for one user name or access key id, and
// maxFailuresPerAddress from one client address (an IPv6 client counts by
// its /64, which one host commonly holds whole). Past either, sign-in is
// refused without checking the password until the window has moved on.
// An attempt being checked counts as a failure until it ends, so that
// attempts sent at once cannot all pass the limit before any has failed.
const (
	signInWindow          = 15 * time.Minute
	maxFailuresPerName    = 5
	maxFailuresPerAddress = 20
	maxLimiterEntries     = 100000
)

// signInLimiter counts failed sign-ins by name and by client address. It
// is safe for concurrent use.
type signInLimiter struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*attempts // "name:..." or "addr:..."
}

// attempts are one name's or address's failures within the window, oldest
// first (no more than its limit: only whether it is reached matters), and
// its attempts being checked.
type attempts struct {
	failures []time.Time
	pending  int
}

func newSignInLimiter(now func() time.Time) *signInLimiter {
	return &signInLimiter{now: now, entries: make(map[string]*attempts)}
}

// begin reports whether a sign-in for name from addr may be tried and, if
// so, counts it as being checked until end is called.
func (l *signInLimiter) begin(name, addr string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	n, a := l.entry(nameKey(name), now), l.entry(addrKey(addr), now)
	if len(n.failures)+n.pending >= maxFailuresPerName || len(a.failures)+a.pending >= maxFailuresPerAddress {
		return false
	}
	n.pending++
	a.pending++
	return true
}

// end ends an attempt that begin allowed: a failure counts toward both
// limits; a success forgets the name's failures (its owner knows the
// password); an attempt that was neither (it was not checked, or the
// check could not be made) leaves them as they were.
func (l *signInLimiter) end(name, addr string, failed, succeeded bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	n, a := l.entry(nameKey(name), now), l.entry(addrKey(addr), now)
	n.pending--
	a.pending--
	switch {
	case failed:
		n.add(now, maxFailuresPerName)
		a.add(now, maxFailuresPerAddress)
	case succeeded:
		n.failures = nil
	}
	l.drop(nameKey(name), n)
	l.drop(addrKey(addr), a)
}

// refused counts an attempt that begin refused as a failure, so that
// trying on keeps the limit reached.
func (l *signInLimiter) refused(name, addr string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entry(nameKey(name), now).add(now, maxFailuresPerName)
	l.entry(addrKey(addr), now).add(now, maxFailuresPerAddress)
}

func (t *attempts) add(now time.Time, limit int) {
	t.failures = append(t.failures, now)
	if len(t.failures) > limit {
		t.failures = append(t.failures[:0], t.failures[len(t.failures)-limit:]...)
	}
}

// entry returns the attempts of key, their failures within the window,
// making it if need be. A full table first sheds the entries with nothing
// left to count.
func (l *signInLimiter) entry(key string, now time.Time) *attempts {
	t := l.entries[key]
	if t == nil {
		if len(l.entries) >= maxLimiterEntries {
			for k, old := range l.entries {
				old.expire(now)
				l.drop(k, old)
			}
		}
		t = &attempts{}
		l.entries[key] = t
	}
	t.expire(now)
	return t
}

func (t *attempts) expire(now time.Time) {
	i := 0
	for i < len(t.failures) && !now.Before(t.failures[i].Add(signInWindow)) {
		i++
	}
	t.failures = t.failures[i:]
}

// drop forgets key if t has nothing left to count.
func (l *signInLimiter) drop(key string, t *attempts) {
	if len(t.failures) == 0 && t.pending == 0 {
		delete(l.entries, key)
	}
}

func nameKey(name string) string { return "name:" + name }

// addrKey counts an IPv6 client by its /64.
func addrKey(addr string) string {
	if a, err := netip.ParseAddr(addr); err == nil && a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + addr
}
