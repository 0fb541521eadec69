package server

import (
	"crypto/tls"
	"net"
	"net/http"
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

	mu    sync.Mutex
	conns map[*limitedConn]struct{}
	once  sync.Once
}

func newConnLimiter(ln net.Listener, max int, now func() time.Time) *connLimiter {
	return &connLimiter{Listener: ln, slots: make(chan struct{}, max), idled: make(chan struct{}, 1), done: make(chan struct{}), now: now,
		conns: map[*limitedConn]struct{}{}}
}

// Accept takes the next connection from the kernel, then finds it a
// place: a free one, or one it makes, or the first to come free.
func (l *connLimiter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if !l.acquire() {
		c.Close()
		return nil, net.ErrClosed
	}
	lc := &limitedConn{Conn: c, l: l, waiting: true, since: l.now()}
	l.mu.Lock()
	l.conns[lc] = struct{}{}
	l.mu.Unlock()
	return lc, nil
}

func (l *connLimiter) acquire() bool {
	for {
		select {
		case l.slots <- struct{}{}:
			return true
		default:
		}
		if c := l.longestWaiting(); c != nil {
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

// longestWaiting is the open connection that has waited longest with no
// request under way, or nil if every one is serving a request.
func (l *connLimiter) longestWaiting() *limitedConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	var oldest *limitedConn
	for c := range l.conns {
		if c.waiting && (oldest == nil || c.since.Before(oldest.since)) {
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
	l     *connLimiter
	once  sync.Once
	since time.Time // guarded by l.mu, as is waiting
	// waiting: no request is under way: the connection is idle between
	// requests, or its first request's headers are not yet in.
	waiting bool
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return err
}
