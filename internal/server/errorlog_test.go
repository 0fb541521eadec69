package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// recordsTo is a slog.Handler that sends every record, at any level, to
// a channel.
type recordsTo chan slog.Record

func (c recordsTo) Enabled(context.Context, slog.Level) bool { return true }
func (c recordsTo) Handle(_ context.Context, r slog.Record) error {
	select {
	case c <- r:
	default:
	}
	return nil
}
func (c recordsTo) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c recordsTo) WithGroup(string) slog.Handler      { return c }

// A client's failed TLS handshake is logged at debug level, not as a
// warning: anyone who reaches the port causes one per connection (a
// plain HTTP request, a scanner), and each line names the client's
// address and port, so the repeats of a warning were never the same line
// and every connection wrote one more to the server's log.
func TestTLSHandshakeErrorsAreDebug(t *testing.T) {
	o := Options{Listen: "127.0.0.1:0", Dev: true, DevTLS: true, DataDir: t.TempDir(), MaxConnections: 8,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute, IdleTimeout: time.Minute, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ep, err := openEndpoint(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := ep.devTLS(o); err != nil {
		t.Fatal(err)
	}
	records := make(recordsTo, 16)
	srv := httpServer(o, http.NotFoundHandler(), slog.New(records))
	srv.ConnState = ep.limit.track
	go srv.Serve(ep.ln)
	t.Cleanup(func() { srv.Close() })

	c, err := net.Dial("tcp", strings.TrimPrefix(ep.url, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case r := <-records:
		if !strings.Contains(r.Message, "TLS handshake error") || r.Level != slog.LevelDebug {
			t.Errorf("logged %v %q, want the TLS handshake error at debug level", r.Level, r.Message)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing logged of the failed handshake")
	}

	// The server's other complaints stay warnings.
	srv.ErrorLog.Print("http: Accept error: too many open files; retrying in 5ms")
	if r := <-records; r.Level != slog.LevelWarn {
		t.Errorf("logged %v %q, want a warning", r.Level, r.Message)
	}
}
