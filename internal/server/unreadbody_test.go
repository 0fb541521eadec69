package server

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveForTest serves h through httpServer with long timeouts on a
// loopback listener, and returns its address.
func serveForTest(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: time.Minute}
	srv := httpServer(o, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// A request answered without its body being read (GET /healthz, an
// unknown operation) is answered at once and its connection closed: the
// server does not wait, for up to the read timeout, for a body that an
// unauthenticated client announces and never sends, which would let it
// hold a connection with a request under way for the whole read timeout
// instead of the few seconds an unknown caller's body gets.
func TestAnswerWithoutBodyClosesAtOnce(t *testing.T) {
	t.Parallel()
	addr := serveForTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	}))
	for _, framing := range []string{"Content-Length: 1000\r\n", "Transfer-Encoding: chunked\r\n\r\n10\r\n0123456789"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n%s\r\n", framing)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%q: no answer while the body was unsent: %v", framing, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !resp.Close {
			t.Errorf("%q: answered %d, closing %v; want 200 and the connection closed", framing, resp.StatusCode, resp.Close)
		}
	}
}

// A request whose body its handler reads whole keeps its connection
// alive: the next request on it is answered.
func TestAnswerAfterBodyKeepsAlive(t *testing.T) {
	t.Parallel()
	addr := serveForTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Exactly the announced length, as api's reader does, not to EOF.
		b := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(b)
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range 2 {
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello" || resp.Close {
			t.Fatalf("request %d: answered %q, closing %v; want hello on a connection kept alive", i, strings.TrimSpace(string(body)), resp.Close)
		}
	}
}

// Headers are bounded at 16 KiB (net/http adds 4 KiB of room), which
// bounds what a connection that never finishes its headers holds: a
// request's headers of 12 KiB are read, one of 24 KiB is refused.
func TestHeadersBounded(t *testing.T) {
	t.Parallel()
	addr := serveForTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	}))
	for _, tc := range []struct {
		size int
		want int
	}{{12 << 10, http.StatusOK}, {24 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: %s\r\n\r\n", strings.Repeat("a", tc.size))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%d bytes of headers: no answer: %v", tc.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d bytes of headers: answered %d, want %d", tc.size, resp.StatusCode, tc.want)
		}
	}
}
