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
// its /64, which one host commonly holds whole), and
// maxFailuresPerNetwork from one IPv6 /48 (a site's allocation, which
// one holder can spread its attempts over: 65,536 /64s, enough to fill
// the table otherwise). Past any, sign-in is refused without checking
// the password until the window has moved on.
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
	maxFailuresPerNetwork = 100
	maxLimiterEntries     = 100000
	limiterSweepInterval  = time.Second
)

// signInLimiter counts failed sign-ins by name and by client address. It
// is safe for concurrent use.
type signInLimiter struct {
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*attempts // "name:...", "name#<sha-256>", "addr:..." or "net:..."
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
	keys := limitsOf(name, addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if l.count(k.key, now) >= k.limit {
			return false
		}
	}
	var held [3]*attempts
	for i, k := range keys {
		if held[i] = l.entry(k.key, now); held[i] == nil { // the table is full
			for j := range i {
				l.drop(keys[j].key, held[j])
			}
			return false
		}
	}
	for _, t := range held[:len(keys)] {
		t.pending++
	}
	return true
}

// limit is a key an attempt counts under, and the failures it may have.
type limit struct {
	key   string
	limit int
}

// limitsOf are the keys a sign-in for name from addr counts under: the
// name first, then the address, then an IPv6 address's /48.
func limitsOf(name, addr string) []limit {
	keys := []limit{{nameKey(name), maxFailuresPerName}, {addrKey(addr), maxFailuresPerAddress}}
	if a, err := netip.ParseAddr(addr); err == nil && a.Is6() && !a.Is4In6() {
		p, _ := a.Prefix(48)
		keys = append(keys, limit{"net:" + p.String(), maxFailuresPerNetwork})
	}
	return keys
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

// end ends an attempt that begin allowed: a failure counts toward every
// limit; a success forgets the name's failures (its owner knows the
// password); an attempt that was neither (it was not checked, or the
// check could not be made) leaves them as they were.
func (l *signInLimiter) end(name, addr string, failed, succeeded bool) {
	now := l.now()
	keys := limitsOf(name, addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, k := range keys {
		t := l.entry(k.key, now)
		t.pending--
		switch {
		case failed:
			t.add(now, k.limit)
		case succeeded && i == 0:
			t.failures = nil
		}
		l.drop(k.key, t)
	}
}

// refused counts an attempt that begin refused as a failure of the name
// and the addresses that have failures counted, so that trying on keeps
// the limit reached. It adds no entry: a throttled client trying new
// names does not grow the table.
func (l *signInLimiter) refused(name, addr string) {
	now := l.now()
	keys := limitsOf(name, addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if t := l.entries[k.key]; t != nil {
			t.expire(now)
			t.add(now, k.limit)
		}
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
