package console

import (
	"sync"
	"time"
)

// Limits on failed sign-ins: within signInWindow, at most
// maxFailuresPerName failures for one user name or access key id, and
// maxFailuresPerAddress from one client address. Past either, sign-in is
// refused without checking the password until the window has moved on.
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

	mu       sync.Mutex
	failures map[string][]time.Time // "name:..." or "addr:..." -> times of failures in the window
}

func newSignInLimiter(now func() time.Time) *signInLimiter {
	return &signInLimiter{now: now, failures: make(map[string][]time.Time)}
}

// allow reports whether a sign-in for name from addr may be tried.
func (l *signInLimiter) allow(name, addr string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recent("name:"+name, now)) < maxFailuresPerName && len(l.recent("addr:"+addr, now)) < maxFailuresPerAddress
}

// failed counts a failed sign-in for name from addr.
func (l *signInLimiter) failed(name, addr string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) >= maxLimiterEntries {
		for k := range l.failures {
			if len(l.recent(k, now)) == 0 {
				delete(l.failures, k)
			}
		}
	}
	for _, k := range []string{"name:" + name, "addr:" + addr} {
		l.failures[k] = append(l.recent(k, now), now)
	}
}

// succeeded forgets the failures of name: its owner knows the password.
func (l *signInLimiter) succeeded(name string) {
	l.mu.Lock()
	delete(l.failures, "name:"+name)
	l.mu.Unlock()
}

// recent returns the failures of key within the window, dropping older
// ones.
func (l *signInLimiter) recent(key string, now time.Time) []time.Time {
	ts := l.failures[key]
	i := 0
	for i < len(ts) && !now.Before(ts[i].Add(signInWindow)) {
		i++
	}
	if i == len(ts) {
		delete(l.failures, key)
		return nil
	}
	ts = ts[i:]
	l.failures[key] = ts
	return ts
}
