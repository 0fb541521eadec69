package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// connLimiter is a listener with at most max connections open. When all
// are taken and another arrives, it makes room before it waits: it closes
// the connection that has waited longest without a request under way, one
// kept alive between requests or one that has not finished sending its
// first request's headers. Only when every connection is serving a
// request does the newcomer wait (and those after it, in the kernel's
// queue) for the first to close or go idle.
//
// Without it, connections that merely stay open (a keep-alive pool left
// idle, or someone holding sockets on purpose) kept their places for the
// idle timeout while everyone else waited. A connection is never closed
// once its request's headers are in; one whose request was about to
// arrive is, at worst, reset, which SDKs retry.
//
// With a limit per source (limitSources), one client address (an IPv6
// one by its /64) holds at most that many of the places: its newcomer
// takes the place of its own longest-waiting connection, or, when every
// one of them has a request under way, is closed at once. So a single
// host holding connections open with slow requests cannot take them all.
//
// The http.Server that serves it must report connection states to track.
type connLimiter struct {
	net.Listener
	slots chan struct{} // one per open connection
	idled chan struct{} // a connection has gone idle: there may be room to make
	done  chan struct{} // closed with the listener
	now   func() time.Time
	// blocked, if set, is called when a newcomer finds no room to make
	// and waits; wentIdle, when a connection has gone idle (for tests).
	blocked, wentIdle func()

	perSource int            // 0: no limit per source
	exempt    []netip.Prefix // sources without one (proxies in front)

	mu       sync.Mutex
	conns    map[*limitedConn]struct{}
	bySource map[string]int // open connections of each limited source
	once     sync.Once
}

func newConnLimiter(ln net.Listener, max int, now func() time.Time) *connLimiter {
	return &connLimiter{Listener: ln, slots: make(chan struct{}, max), idled: make(chan struct{}, 1), done: make(chan struct{}), now: now,
		conns: map[*limitedConn]struct{}{}, bySource: map[string]int{}}
}

// limitSources limits each client address to n connections (none if
// n <= 0), but for those in exempt. It must be called before Accept.
func (l *connLimiter) limitSources(n int, exempt []netip.Prefix) {
	l.perSource, l.exempt = n, exempt
}

// Accept takes the next connection from the kernel, then finds it a
// place: a free one, or one it makes, or the first to come free.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := l.source(c.RemoteAddr())
		if src != "" && !l.roomFor(src) {
			c.Close() // every connection of its source is serving a request
			continue
		}
		if !l.acquire() {
			c.Close()
			return nil, net.ErrClosed
		}
		lc := &limitedConn{Conn: c, l: l, waiting: true, since: l.now(), source: src}
		l.mu.Lock()
		l.conns[lc] = struct{}{}
		if src != "" {
			l.bySource[src]++
		}
		l.mu.Unlock()
		return lc, nil
	}
}

// source is the name of the budget of connections from addr: the address,
// or its /64 for IPv6; "" if it has none.
func (l *connLimiter) source(addr net.Addr) string {
	if l.perSource <= 0 {
		return ""
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return ""
	}
	a := ap.Addr().Unmap().WithZone("")
	for _, p := range l.exempt {
		if p.Contains(a) {
			return ""
		}
	}
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// roomFor makes room for a newcomer from src if src has all its places:
// it closes the longest-waiting of src's connections. It reports false if
// each of them has a request under way.
func (l *connLimiter) roomFor(src string) bool {
	l.mu.Lock()
	if l.bySource[src] < l.perSource {
		l.mu.Unlock()
		return true
	}
	c := l.longestWaitingLocked(src)
	l.mu.Unlock()
	if c == nil {
		return false
	}
	c.Close()
	return true
}

func (l *connLimiter) acquire() bool {
	for {
		select {
		case l.slots <- struct{}{}:
			return true
		default:
		}
		if c := l.longestWaiting(""); c != nil {
			c.Close()
		} else if l.blocked != nil {
			l.blocked()
		}
		select {
		case l.slots <- struct{}{}:
			return true
		case <-l.idled:
		case <-l.done:
			return false
		}
	}
}

// longestWaiting is the open connection (of source src, or any if src is
// "") that has waited longest with no request under way, or nil if every
// one is serving a request.
func (l *connLimiter) longestWaiting(src string) *limitedConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.longestWaitingLocked(src)
}

func (l *connLimiter) longestWaitingLocked(src string) *limitedConn {
	var oldest *limitedConn
	for c := range l.conns {
		if c.waiting && (src == "" || c.source == src) && (oldest == nil || c.since.Before(oldest.since)) {
			oldest = c
		}
	}
	if oldest != nil {
		delete(l.conns, oldest) // closed by the caller; not chosen twice
	}
	return oldest
}

func (l *connLimiter) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// track follows a connection's state, as http.Server.ConnState.
func (l *connLimiter) track(c net.Conn, s http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	switch s {
	case http.StateActive:
		lc.waiting = false
	case http.StateIdle:
		lc.waiting, lc.since = true, l.now()
		select {
		case l.idled <- struct{}{}:
		default:
		}
	}
	l.mu.Unlock()
	if s == http.StateIdle && l.wentIdle != nil {
		l.wentIdle()
	}
}

// limitedConn is a connection holding one of its limiter's places until
// it is closed.
type limitedConn struct {
	net.Conn
	l      *connLimiter
	once   sync.Once
	source string    // its budget in l.bySource, if any
	since  time.Time // guarded by l.mu, as is waiting
	// waiting: no request is under way: the connection is idle between
	// requests, or its first request's headers are not yet in.
	waiting bool
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		if c.source != "" {
			if c.l.bySource[c.source]--; c.l.bySource[c.source] <= 0 {
				delete(c.l.bySource, c.source)
			}
		}
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return err
}
