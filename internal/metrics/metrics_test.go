package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLint checks every metric of a server against Prometheus's naming
// and exposition conventions (the checks of promtool check metrics).
func TestLint(t *testing.T) {
	m := New("test", func() (uint64, uint64) { return 3, 1 })
	m.UnrecordedCalls(func() uint64 { return 2 })
	m.BodyBytes(func() int64 { return 1024 })
	m.RSAKeyPairsWaiting(func() int { return 1 })
	m.Request("Encrypt", true, "ok", time.Millisecond)
	m.Appended(time.Millisecond, nil)
	m.Committed(4, time.Millisecond, nil)
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "go_") || strings.HasPrefix(p.Metric, "process_") {
			continue // the library's own collectors
		}
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// A client names any operation it likes: one the server does not serve
// is counted under "unknown", so the series stay bounded.
func TestUnknownOperationsShareOneSeries(t *testing.T) {
	m := New("test", func() (uint64, uint64) { return 0, 0 })
	for _, op := range []string{"Encrypt", "NoSuchOperation1", "NoSuchOperation2", "x\nkms_build_info 2"} {
		m.Request(op, op == "Encrypt", "ok", time.Millisecond)
	}
	if n := testutil.CollectAndCount(m.requests); n != 2 {
		t.Errorf("%d request series, want 2 (Encrypt and unknown)", n)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("unknown", "ok")); got != 3 {
		t.Errorf("unknown operations counted %v times, want 3", got)
	}
}
