package api

import (
	"testing"
	"time"

	"github.com/openkms/kms/internal/testsupport"
)

// TestAnonBudget: each source has its budget, an IPv6 source is its /64,
// and a call refused for the shared budget leaves its source's intact.
func TestAnonBudget(t *testing.T) {
	clock := testsupport.NewClock(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
	b := newAnonBudget(clock.Now, 1, 3, 1, 5)
	admit := func(ip string) bool { ok, _ := b.admit(ip); return ok }
	for i := range 3 {
		if !admit("192.0.2.1") {
			t.Fatalf("call %d of a burst of 3 refused", i+1)
		}
	}
	if admit("192.0.2.1") || admit("::ffff:192.0.2.1") {
		t.Error("a fourth call from the source (or its IPv4-mapped form) was recorded")
	}
	if !admit("2001:db8:1:2::1") || !admit("2001:db8:1:2:ffff::9") {
		t.Fatal("a new IPv6 source refused")
	}
	// 2001:db8:1:2::/64 has one token left; the shared budget none.
	if admit("2001:db8:1:2::7") || admit("192.0.2.2") {
		t.Error("recorded past the shared budget")
	}
	clock.Advance(time.Second) // one more token everywhere
	ok, skipped := b.admit("2001:db8:1:2::8")
	if !ok || skipped != 2 {
		t.Errorf("after a second: recorded %v, %d skipped before; want true, 2 (those since the last record)", ok, skipped)
	}
	if ok, _ := b.admit("2001:db8:1:2::9"); ok {
		t.Error("the /64's budget was not used up")
	}
	if got := b.unrecorded(); got != 5 {
		t.Errorf("unrecorded %d, want 5", got)
	}
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"::ffff:192.0.2.1":     "192.0.2.1",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"fe80::1%eth0":         "fe80::/64",
		"not an address":       "not an address",
	} {
		if got := sourceKey(in); got != want {
			t.Errorf("sourceKey(%q) = %q, want %q", in, got, want)
		}
	}
}
