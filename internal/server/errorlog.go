package server

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"time"
)

// httpErrorLog is the ErrorLog of an http.Server: its lines go to l as
// warnings, but for a client's failed TLS handshake, which goes at debug
// level. Anyone who reaches the port causes one of those per connection
// (plain HTTP sent to HTTPS, a scanner, a client that does not trust the
// certificate), and each names the client's address and port, so no two
// are the same line for the log's count of repeats (logrepeat): as
// warnings, every connection wrote one more line to the server's log.
func httpErrorLog(l *slog.Logger) *log.Logger {
	return log.New(errorLogWriter{l}, "", 0)
}

type errorLogWriter struct{ l *slog.Logger }

// Write logs one line of the http.Server's log.
func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	ctx := context.Background()
	if w.l.Enabled(ctx, level) {
		_ = w.l.Handler().Handle(ctx, slog.NewRecord(time.Now(), level, msg, 0))
	}
	return len(p), nil
}
