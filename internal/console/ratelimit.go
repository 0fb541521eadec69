package console

import (
	"crypto/sha256"
	"encoding/hex"
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
//
// The limiter holds at most maxLimiterEntries names and addresses, each
// under a key of bounded length whatever name a client sends. A table
// full of entries still counting refuses sign-ins of names and addresses
// it does not hold, rather than forget the failures of others, and is
// swept at most once per limiterSweepInterval.
const (
	signInWindow          = 15 * time.Minute
	maxFailuresPerName    = 5
	maxFailuresPerAddress = 20
	maxLimiterEntries     = 100000
	limiterSweepInterval  = time.Second
)

// signInLimiter counts failed sign-ins by name and by client address. It
// is safe for concurrent use.
type signInLimiter struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*attempts // "name:...", "name#<sha-256>" or "addr:..."
	swept   time.Time            // when a full table was last swept
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
// so, counts it as being checked until end is called. A refused attempt
// adds no entry.
func (l *signInLimiter) begin(name, addr string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	nk, ak := nameKey(name), addrKey(addr)
	if l.count(nk, now) >= maxFailuresPerName || l.count(ak, now) >= maxFailuresPerAddress {
		return false
	}
	n, a := l.entry(nk, now), l.entry(ak, now)
	if n == nil || a == nil { // the table is full
		if n != nil {
			l.drop(nk, n)
		}
		return false
	}
	n.pending++
	a.pending++
	return true
}

// count is the failures and checks under way of key within the window.
func (l *signInLimiter) count(key string, now time.Time) int {
	t := l.entries[key]
	if t == nil {
		return 0
	}
	t.expire(now)
	return len(t.failures) + t.pending
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

// refused counts an attempt that begin refused as a failure of the name
// and the address that have failures counted, so that trying on keeps the
// limit reached. It adds no entry: a throttled client trying new names
// does not grow the table.
func (l *signInLimiter) refused(name, addr string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.entries[nameKey(name)]; t != nil {
		t.expire(now)
		t.add(now, maxFailuresPerName)
	}
	if t := l.entries[addrKey(addr)]; t != nil {
		t.expire(now)
		t.add(now, maxFailuresPerAddress)
	}
}

func (t *attempts) add(now time.Time, limit int) {
	t.failures = append(t.failures, now)
	if len(t.failures) > limit {
		t.failures = append(t.failures[:0], t.failures[len(t.failures)-limit:]...)
	}
}

// entry returns the attempts of key, their failures within the window,
// making it if need be; nil if the table is full. A full table first sheds
// the entries with nothing left to count, if it was not swept within
// limiterSweepInterval.
func (l *signInLimiter) entry(key string, now time.Time) *attempts {
	if t := l.entries[key]; t != nil {
		t.expire(now)
		return t
	}
	if len(l.entries) >= maxLimiterEntries {
		if now.Sub(l.swept) < limiterSweepInterval {
			return nil
		}
		l.swept = now
		for k, old := range l.entries {
			old.expire(now)
			l.drop(k, old)
		}
		if len(l.entries) >= maxLimiterEntries {
			return nil
		}
	}
	t := &attempts{}
	l.entries[key] = t
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

// maxNameKey bounds the names kept as they are: longer than any IAM
// name or access key id, which a sign-in names; a longer one is kept by
// its SHA-256, so that a client cannot make the table hold its bytes.
const maxNameKey = 256

func nameKey(name string) string {
	if len(name) > maxNameKey {
		sum := sha256.Sum256([]byte(name))
		return "name#" + hex.EncodeToString(sum[:])
	}
	return "name:" + name
}

// addrKey counts an IPv6 client by its /64.
func addrKey(addr string) string {
	if a, err := netip.ParseAddr(addr); err == nil && a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(64)
		return "addr:" + p.String()
	}
	return "addr:" + addr
}
