package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// limitedServer serves handler over TCP with at most max connections,
// kept alive for an hour between requests, and returns its address.
func limitedServer(t *testing.T, max int, handler http.HandlerFunc) string {
	return limitedServerWith(t, max, handler, nil)
}

// limitedServerWith is limitedServer with setup run on the limiter before
// it serves (to set its test hooks).
func limitedServerWith(t *testing.T, max int, handler http.HandlerFunc, setup func(*connLimiter)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var tick atomic.Int64
	base := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	l := newConnLimiter(ln, max, func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Millisecond) })
	if setup != nil {
		setup(l)
	}
	srv := &http.Server{Handler: handler, IdleTimeout: time.Hour, ReadHeaderTimeout: time.Hour, ConnState: l.track}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// client is a raw keep-alive connection to the server.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute)) // a bound on a broken limiter, not a measure
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// do sends a request and reads its answer; an error means the server
// closed the connection.
func (c *client) do(path string) (string, error) {
	if _, err := io.WriteString(c.conn, "GET "+path+" HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func echo(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }

// At the limit, a newcomer takes the place of the connection idle longest;
// the others are kept.
func TestConnLimiterClosesTheLongestIdle(t *testing.T) {
	idle := make(chan struct{}, 2)
	addr := limitedServerWith(t, 2, echo, func(l *connLimiter) { l.wentIdle = func() { idle <- struct{}{} } })
	first, second := dial(t, addr), dial(t, addr)
	for _, c := range []*client{first, second} {
		if got, err := c.do("/a"); err != nil || got != "/a" {
			t.Fatalf("first request: %q, %v", got, err)
		}
		// The server marks the connection idle after the client has its
		// answer: wait, so that first has been idle longer.
		<-idle
	}
	third := dial(t, addr)
	if got, err := third.do("/b"); err != nil || got != "/b" {
		t.Fatalf("a newcomer while two connections idle: %q, %v", got, err)
	}
	if _, err := first.do("/c"); err == nil {
		t.Error("the connection idle longest is still served: no room was made")
	}
	if got, err := second.do("/c"); err != nil || got != "/c" {
		t.Errorf("the connection idle since later was closed: %q, %v", got, err)
	}
}

// A connection that has not finished sending its headers makes room too.
func TestConnLimiterClosesAnUnfinishedRequest(t *testing.T) {
	addr := limitedServer(t, 1, echo)
	slow := dial(t, addr)
	if _, err := io.WriteString(slow.conn, "GET /slow HTTP/1.1\r\nHost: te"); err != nil {
		t.Fatal(err)
	}
	if got, err := dial(t, addr).do("/b"); err != nil || got != "/b" {
		t.Fatalf("a newcomer while the only place is held by half a header: %q, %v", got, err)
	}
	if _, err := slow.r.ReadByte(); err == nil {
		t.Error("the half-sent request's connection is still open")
	}
}

// A connection whose request is being served is never closed: the
// newcomer waits for it.
func TestConnLimiterWaitsForRequestsInFlight(t *testing.T) {
	started, release, blocked := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var released atomic.Bool
	addr := limitedServerWith(t, 1, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/busy" {
			close(started)
			<-release
			released.Store(true)
		} else if !released.Load() {
			http.Error(w, "served while the only place was busy", http.StatusInternalServerError)
			return
		}
		echo(w, r)
	}, func(l *connLimiter) { l.blocked = func() { close(blocked) } })
	busy := dial(t, addr)
	busyDone := make(chan error, 1)
	go func() {
		got, err := busy.do("/busy")
		if err == nil && got != "/busy" {
			err = io.ErrUnexpectedEOF
		}
		busyDone <- err
	}()
	<-started
	waiting := make(chan string, 1)
	go func() {
		got, err := dial(t, addr).do("/next")
		if err != nil {
			got = err.Error()
		}
		waiting <- got
	}()
	<-blocked // the newcomer found no connection to close, and waits
	close(release)
	if err := <-busyDone; err != nil {
		t.Fatalf("the request in flight was cut: %v", err)
	}
	if got := <-waiting; got != "/next" {
		t.Fatalf("the newcomer: %q", got)
	}
}

// dialFrom is dial from the local address ip (any of 127/8 on loopback).
func dialFrom(t *testing.T, addr, ip string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute))
	return &client{t: t, conn: c, r: bufio.NewReader(c)}
}

// One address holds at most its share of the places: its newcomer takes
// the place of its own longest idle connection, not another address's.
func TestConnLimiterPerSourceClosesItsOwnIdle(t *testing.T) {
	idle := make(chan struct{}, 3)
	addr := limitedServerWith(t, 3, echo, func(l *connLimiter) {
		l.limitSources(2, nil)
		l.wentIdle = func() { idle <- struct{}{} }
	})
	other := dialFrom(t, addr, "127.0.0.2")
	a1, a2 := dialFrom(t, addr, "127.0.0.1"), dialFrom(t, addr, "127.0.0.1")
	for _, c := range []*client{other, a1, a2} {
		if got, err := c.do("/a"); err != nil || got != "/a" {
			t.Fatalf("first request: %q, %v", got, err)
		}
		<-idle
	}
	// other has been idle longest, but a3's address has its two places.
	if got, err := dialFrom(t, addr, "127.0.0.1").do("/b"); err != nil || got != "/b" {
		t.Fatalf("a third connection from one address: %q, %v", got, err)
	}
	if _, err := a1.do("/c"); err == nil {
		t.Error("the address's longest idle connection is still served")
	}
	for _, c := range []*client{a2, other} {
		if got, err := c.do("/c"); err != nil || got != "/c" {
			t.Errorf("a connection that was not the address's longest idle was closed: %q, %v", got, err)
		}
	}
}

// When every connection of an address is serving a request, its newcomer
// is closed at once, while other addresses still get in; a trusted proxy
// has no such limit.
func TestConnLimiterPerSourceRefusesWhenAllBusy(t *testing.T) {
	for _, exempt := range []bool{false, true} {
		release := make(chan struct{})
		started := make(chan struct{}, 2)
		addr := limitedServerWith(t, 4, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/busy" {
				started <- struct{}{}
				<-release
			}
			echo(w, r)
		}, func(l *connLimiter) {
			var proxies []netip.Prefix
			if exempt {
				proxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			}
			l.limitSources(2, proxies)
		})
		done := make(chan error, 2)
		for range 2 {
			c := dialFrom(t, addr, "127.0.0.1")
			go func() { _, err := c.do("/busy"); done <- err }()
			<-started
		}
		got, err := dialFrom(t, addr, "127.0.0.1").do("/b")
		if exempt && (err != nil || got != "/b") {
			t.Errorf("a trusted proxy's third connection: %q, %v", got, err)
		}
		if !exempt && err == nil {
			t.Errorf("a third connection of an address whose two are busy was served: %q", got)
		}
		if got, err := dialFrom(t, addr, "127.0.0.2").do("/b"); err != nil || got != "/b" {
			t.Errorf("another address, while the first has its places busy: %q, %v", got, err)
		}
		close(release)
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("a busy request: %v", err)
			}
		}
	}
}

func TestConnLimiterSource(t *testing.T) {
	l := newConnLimiter(nil, 1, time.Now)
	l.limitSources(1, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	for in, want := range map[string]string{
		"192.0.2.1:80":          "192.0.2.1",
		"[::ffff:192.0.2.1]:80": "192.0.2.1",
		"[2001:db8:1:2::9]:80":  "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":     "fe80::/64",
		"10.1.2.3:80":           "", // exempt
	} {
		addr, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.source(addr); got != want {
			t.Errorf("source(%s) = %q, want %q", in, got, want)
		}
	}
}
