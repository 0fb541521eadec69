package server

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/metrics"
)

// Zeros the trail could not write are logged as a warning and counted.
func TestTrailObserverZerosFailed(t *testing.T) {
	var logged bytes.Buffer
	m := metrics.New("test", func() (uint64, uint64) { return 0, 0 })
	o := trailObserver{Metrics: m, log: slog.New(slog.NewTextHandler(&logged, nil))}
	o.ZerosFailed(errors.New("write audit.log: no space left on device"))
	o.ZerosFailed(errors.New("write audit-000002.log: no space left on device"))
	if n := strings.Count(logged.String(), "level=WARN"); n != 2 || !strings.Contains(logged.String(), "no space left on device") {
		t.Fatalf("logged %d warnings:\n%s", n, logged.String())
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "\nkms_audit_prezero_failures_total 2\n") {
		t.Fatalf("the counter is not 2:\n%s", rec.Body.String())
	}
}
