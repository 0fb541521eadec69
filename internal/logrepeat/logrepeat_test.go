package logrepeat_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openkms/kms/internal/logrepeat"
	"github.com/openkms/kms/internal/testsupport"
)

// timers stands in for time.AfterFunc: the test ends the periods.
type timers struct {
	mu  sync.Mutex
	fns []func()
}

func (t *timers) afterFunc(d time.Duration, f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fns = append(t.fns, f)
}

// fire ends every period under way.
func (t *timers) fire() {
	t.mu.Lock()
	fns := t.fns
	t.fns = nil
	t.mu.Unlock()
	for _, f := range fns {
		f()
	}
}

// lines returns the JSON lines written to buf since the last call.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, m)
	}
	buf.Reset()
	return out
}

func TestRepeatedErrorsAreCounted(t *testing.T) {
	var buf bytes.Buffer
	tm := &timers{}
	clock := testsupport.NewClock(time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC))
	h := logrepeat.New(slog.NewJSONHandler(&buf, nil), logrepeat.Config{Varying: []string{"requestId"}, Now: clock.Now, AfterFunc: tm.afterFunc})
	log := slog.New(h)
	down := errors.New("pgstore: begin: dial tcp 127.0.0.1:5432: connect: connection refused")
	other := errors.New("audit: write to PostgreSQL: disk full")

	// The first line of a kind is logged, and each line of another kind:
	// another error, another message; the request log always.
	for i := range 1000 {
		log.Error("request failed", "requestId", fmt.Sprint("r", i), "err", down)
		log.Info("request", "requestId", fmt.Sprint("r", i), "status", 500)
	}
	log.Error("request failed", "requestId", "x", "err", other)
	log.Error("audit trail write failed; the call is refused", "requestId", "y", "err", down)
	got := lines(t, &buf)
	if len(got) != 1003 {
		t.Fatalf("%d lines, want 1003 (1000 request lines and 3 errors)", len(got))
	}
	if got[0]["msg"] != "request failed" || got[0]["requestId"] != "r0" || got[0]["err"] != down.Error() {
		t.Errorf("first line %v, want the first error in full", got[0])
	}
	errs := 0
	for _, l := range got {
		if l["level"] == "ERROR" {
			errs++
		}
	}
	if errs != 3 {
		t.Errorf("%d errors logged, want 3", errs)
	}

	// The period ends: the repeats' count, with the last of them.
	clock.Advance(5 * time.Second)
	tm.fire()
	got = lines(t, &buf)
	if len(got) != 1 || got[0]["msg"] != "request failed" || got[0]["err"] != down.Error() || got[0]["repeated"] != 999.0 || got[0]["requestId"] != "r999" {
		t.Fatalf("at the end of the period: %v, want one count of 999 repeats", got)
	}
	// A line still repeating is counted for another period; one that
	// stopped is forgotten, and logged in full when it comes again.
	log.Error("request failed", "requestId", "a", "err", down)
	log.Error("request failed", "requestId", "b", "err", other)
	if got := lines(t, &buf); len(got) != 1 || got[0]["requestId"] != "b" {
		t.Fatalf("after the first period: %v, want only the line that had stopped repeating", got)
	}
	tm.fire()
	got = lines(t, &buf)
	if len(got) != 1 || got[0]["repeated"] != 1.0 || got[0]["requestId"] != "a" {
		t.Fatalf("at the end of the second period: %v, want a count of 1", got)
	}
	tm.fire()
	tm.fire()
	if got := lines(t, &buf); len(got) != 0 {
		t.Fatalf("periods without repeats logged %v", got)
	}
	log.Error("request failed", "requestId", "c", "err", down)
	if got := lines(t, &buf); len(got) != 1 || got[0]["requestId"] != "c" || got[0]["repeated"] != nil {
		t.Fatalf("a line that had stopped repeating: %v, want it logged in full", got)
	}

	// Flush logs what is held back, as a server that stops does.
	log.Error("request failed", "requestId", "d", "err", down)
	h.Flush()
	if got := lines(t, &buf); len(got) != 1 || got[0]["repeated"] != 1.0 {
		t.Fatalf("Flush: %v, want a count of 1", got)
	}
}

// Lines of handlers with other attributes are of other kinds.
func TestWithAttrsIsAnotherKind(t *testing.T) {
	var buf bytes.Buffer
	tm := &timers{}
	log := slog.New(logrepeat.New(slog.NewJSONHandler(&buf, nil), logrepeat.Config{AfterFunc: tm.afterFunc}))
	a, b := log.With("component", "a"), log.With("component", "b")
	for range 3 {
		a.Warn("slow")
		b.Warn("slow")
		a.WithGroup("g").Warn("slow", "n", 1)
	}
	got := lines(t, &buf)
	if len(got) != 3 {
		t.Fatalf("%d lines, want 3: %v", len(got), got)
	}
	tm.fire()
	got = lines(t, &buf)
	if len(got) != 3 || got[0]["repeated"] != 2.0 || got[0]["component"] == nil {
		t.Fatalf("counts: %v, want 3 counts of 2, with their handler's attributes", got)
	}
}
