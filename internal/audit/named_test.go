package audit

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// A named record's claim is found by the record's own sequence number,
// wherever its line stands, and compares exactly as the string it is: a
// digest naming it in upper-case hex, or naming a number no record
// carries, past the log, or not named, does not match a hash. Where
// several records carry a number (a damaged log), any of their claims
// matches, and Hash is the first.
func TestNamedClaims(t *testing.T) {
	hash := strings.Repeat("0123456789abcdef", 4)
	other := strings.Repeat("fedcba9876543210", 4)
	n := &Named{}
	for _, seq := range []uint64{9, 2, 5, 7, 2, 4} {
		n.Add(seq)
	}
	c := NewLogCheck(n)
	rec := func(h string, seq int) string {
		return fmt.Sprintf(`{"hash":"%s","event":{"sequence":%d}}`, h, seq)
	}
	for _, ln := range []string{
		rec(hash, 1),                         // not named
		rec(hash, 3),                         // not named
		rec(hash, 2),                         // named, on line 3
		`not a record`,                       // on line 4: claims nothing
		`{"hash":"` + hash + `"}`,            // no sequence: claims nothing
		rec(hash[:63], 6),                    // not named
		rec(strings.ToUpper(hash), 7),        // an odd claim
		rec(other, 2),                        // a second record numbered 2
		rec(hash, 2),                         // and a third, claiming the first's hash
		`{"hash":"","event":{"sequence":9}}`, // no hash: claims nothing
	} {
		c.Line([]byte(ln))
	}
	for _, tc := range []struct {
		seq    uint64
		first  string
		claims []string
	}{{1, "", nil}, {2, hash, []string{hash, other}}, {3, "", nil}, {4, "", nil}, {5, "", nil},
		{7, strings.ToUpper(hash), []string{strings.ToUpper(hash)}}, {9, "", nil}, {100, "", nil}} {
		if got := n.Hash(tc.seq); got != tc.first {
			t.Errorf("Hash(%d) = %q, want %q", tc.seq, got, tc.first)
		}
		if got := n.holds(tc.seq); got != (len(tc.claims) > 0) {
			t.Errorf("holds(%d) = %v", tc.seq, got)
		}
		for _, h := range []string{"", hash, other, strings.ToUpper(hash), hash[:63]} {
			want := false
			for _, cl := range tc.claims {
				want = want || cl == h
			}
			if got := n.claimsHash(tc.seq, h); got != want {
				t.Errorf("claimsHash(%d, %q) = %v, want %v", tc.seq, h, got, want)
			}
		}
	}
}

// A log edited to carry a named number on line after line, each with a
// hash of its own, is checked in memory bounded by the digests, not by
// the log, and in time that grows with its lines, not their square: the
// other claims of a number kept are at most maxOtherClaims, and a hash
// among them still matches.
func TestNamedBoundsOtherClaims(t *testing.T) {
	const lines = 20000
	claim := func(i int) string { return fmt.Sprintf("%064x", i) }
	n := &Named{}
	n.Add(5)
	n.prepare()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range lines {
		n.note(0, claim(i))
		n.note(0, claim(i)) // a copy adds nothing
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if held := int64(after.HeapAlloc) - int64(before.HeapAlloc); held > 256<<10 {
		t.Errorf("%d claims of one number hold %d KiB", lines, held>>10)
	}
	for i := range lines {
		if got, want := n.claimsHash(5, claim(i)), i <= maxOtherClaims; got != want {
			t.Errorf("claimsHash(5, claim %d) = %v, want %v", i, got, want)
		}
	}
	if !n.crowded(5) || n.crowded(4) {
		t.Errorf("crowded(5) = %v, crowded(4) = %v; want true, false", n.crowded(5), n.crowded(4))
	}
	runtime.KeepAlive(n)
}
