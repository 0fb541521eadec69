package server

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

// The metrics address (--metrics-listen) holds at most opsMaxConnections
// connections, as the API's holds --max-connections: connections left open
// without a request make room for a newcomer, so that whoever reaches the
// address cannot hold sockets until the process has no file descriptors
// left for the API, and a scraper still gets its answer.
func TestMetricsAddressHoldsFewConnections(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "kms_up 1\n") })
	addr, stop, err := serveMetrics("127.0.0.1:0", metrics, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)

	// Each of these sends part of a request's headers and then nothing.
	held := make([]net.Conn, opsMaxConnections+1)
	for i := range held {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		held[i] = c
	}
	// The first was closed to make room for the last, well before the
	// headers' timeout (10 s) would have closed it; the deadline only
	// bounds a broken limit.
	// Closed shows as the end of the stream, or as a reset when the
	// server closed it before it read the partial headers (a socket
	// closed with unread data sends a reset).
	held[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := held[0].Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%d connections without a request are all held open", len(held))
		}
		t.Fatalf("the first connection: read %d bytes, %v; want it closed", n, err)
	}

	// A scraper that comes now is answered.
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatalf("a scrape beside %d held connections: %v", len(held)-1, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "kms_up 1\n" {
		t.Errorf("a scrape: %d %q", resp.StatusCode, body)
	}
}

// The operator's addresses answer a request that announces a body they
// do not read at once, as the API's does (closeUnread): with at most
// opsMaxConnections places, and no read timeout on the profiles', a few
// such requests left unfinished would otherwise hold every place, with a
// request under way that no newcomer can take the place of.
func TestOpsAddressesAnswerWithoutWaitingForABody(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "kms_up 1\n") })
	addr, stop, err := serveMetrics("127.0.0.1:0", metrics, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer while the announced body was unsent: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("answered %d, closing %v; want 200 and the connection closed", resp.StatusCode, resp.Close)
	}
}
