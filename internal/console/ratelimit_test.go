package console

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A throttled address that tries name after name adds no entry for them,
// and a name of any length is kept under a key of bounded length.
func TestSignInLimiterBoundsWhatClientsSend(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newSignInLimiter(func() time.Time { return now })
	const addr = "198.51.100.7"
	long := strings.Repeat("A", 250_000)
	for i := range maxFailuresPerAddress {
		name := fmt.Sprint(i, long)
		if !l.begin(name, addr) {
			t.Fatalf("attempt %d refused before the address's limit", i)
		}
		l.end(name, addr, true, false)
	}
	held := len(l.entries)
	if held != maxFailuresPerAddress+1 {
		t.Fatalf("%d entries after %d failures of as many names, want one per name and the address's", held, maxFailuresPerAddress)
	}
	for i := range 1000 {
		name := fmt.Sprint("new", i, long)
		if l.begin(name, addr) {
			t.Fatalf("attempt %d from a throttled address allowed", i)
		}
		l.refused(name, addr)
	}
	if len(l.entries) != held {
		t.Fatalf("a throttled address's refused attempts grew the table from %d to %d entries", held, len(l.entries))
	}
	for k := range l.entries {
		if len(k) > 5+maxNameKey {
			t.Fatalf("an entry is kept under a %d-byte key", len(k))
		}
	}
	// The names were counted, each under its own key: the first is at
	// one failure, and its sixth try from elsewhere is still allowed.
	first := fmt.Sprint(0, long)
	for i := range maxFailuresPerName - 1 {
		other := fmt.Sprint("203.0.113.", i)
		if !l.begin(first, other) {
			t.Fatalf("the long name refused after %d failures", i+1)
		}
		l.end(first, other, true, false)
	}
	if l.begin(first, "203.0.113.99") {
		t.Fatal("the long name allowed past its limit")
	}
	// The window moves on: the address may try again.
	now = now.Add(signInWindow)
	if !l.begin("alice", addr) {
		t.Fatal("the address still refused after the window")
	}
}

// A table full of entries still counting refuses new names and addresses
// instead of growing or forgetting, sweeps at most once per interval, and
// takes new entries again once the old ones have expired.
func TestSignInLimiterFullTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newSignInLimiter(func() time.Time { return now })
	for i := range maxLimiterEntries {
		l.entries[fmt.Sprint("name:u", i)] = &attempts{failures: []time.Time{now}}
	}
	l.entries["addr:198.51.100.7"] = &attempts{failures: []time.Time{now}}
	if l.begin("u1", "198.51.100.7") != true {
		t.Fatal("a name and an address the table holds were refused")
	}
	l.end("u1", "198.51.100.7", true, false)
	if l.begin("newcomer", "198.51.100.7") {
		t.Fatal("a new name allowed into a full table")
	}
	l.refused("newcomer", "198.51.100.7")
	if got := len(l.entries); got != maxLimiterEntries+1 {
		t.Fatalf("%d entries, want the %d it was full with", got, maxLimiterEntries+1)
	}
	swept := l.swept
	now = now.Add(limiterSweepInterval / 2)
	l.begin("another", "198.51.100.8")
	if l.swept != swept {
		t.Fatal("the full table was swept again within the interval")
	}
	// Once the window has passed, a sweep frees the table.
	now = now.Add(signInWindow)
	if !l.begin("newcomer", "198.51.100.9") {
		t.Fatal("a new name refused after the old entries expired")
	}
	if got := len(l.entries); got > 2 {
		t.Fatalf("%d entries after the sweep, want the newcomer's two", got)
	}
}

// A client holding an IPv6 /48 cannot spread its attempts over the /64s
// in it to go past the limits: the /48 counts as one network, so that
// neither guessing nor the table it fills grows with the addresses held.
func TestSignInLimiterCountsAnIPv6Network(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := newSignInLimiter(func() time.Time { return now })
	addr := func(i int) string { return fmt.Sprintf("2001:db8:7:%x::1", i) } // a new /64 of one /48 each time
	for i := range maxFailuresPerNetwork {
		name := fmt.Sprint("guess", i)
		if !l.begin(name, addr(i)) {
			t.Fatalf("attempt %d from a fresh /64 refused before the network's limit", i)
		}
		l.end(name, addr(i), true, false)
	}
	held := len(l.entries)
	for i := range 10_000 {
		name, a := fmt.Sprint("more", i), addr(maxFailuresPerNetwork+i)
		if l.begin(name, a) {
			t.Fatalf("attempt %d from another /64 of a /48 past its limit allowed", i)
		}
		l.refused(name, a)
	}
	if len(l.entries) != held {
		t.Fatalf("a throttled /48's attempts grew the table from %d to %d entries", held, len(l.entries))
	}
	if !l.begin("alice", "2001:db8:8::1") {
		t.Fatal("another /48 refused")
	}
	l.end("alice", "2001:db8:8::1", false, true)
	now = now.Add(signInWindow)
	if !l.begin("bob", addr(0)) {
		t.Fatal("the /48 still refused after the window")
	}
}
