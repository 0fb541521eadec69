package audit

import (
	"strings"
	"testing"
)

// A named line's claim compares exactly as the string it is: a digest
// naming it in upper-case hex, or naming a line that is not a record,
// past the log, or not named, does not match a hash.
func TestNamedClaims(t *testing.T) {
	hash := strings.Repeat("0123456789abcdef", 4)
	n := &Named{}
	for _, seq := range []uint64{9, 2, 5, 7, 2} {
		n.Add(seq)
	}
	c := NewLogCheck(n)
	for _, ln := range []string{
		`{"hash":"` + hash + `"}`,                  // 1, not named
		`{"hash":"` + hash + `"}`,                  // 2
		`{"hash":"` + hash + `"}`,                  // 3
		`not a record`,                             // 4
		`not a record`,                             // 5: claims ""
		`{"hash":"` + hash[:63] + `"}`,             // 6
		`{"hash":"` + strings.ToUpper(hash) + `"}`, // 7: an odd claim
	} {
		c.Line([]byte(ln))
	}
	for _, tc := range []struct {
		seq   uint64
		claim string
	}{{1, ""}, {2, hash}, {3, ""}, {5, ""}, {7, strings.ToUpper(hash)}, {9, ""}, {100, ""}} {
		if got := n.Hash(tc.seq); got != tc.claim {
			t.Errorf("Hash(%d) = %q, want %q", tc.seq, got, tc.claim)
		}
		for _, h := range []string{"", hash, strings.ToUpper(hash), hash[:63]} {
			if got, want := n.claimsHash(tc.seq, h), tc.claim == h; got != want {
				t.Errorf("claimsHash(%d, %q) = %v, want %v", tc.seq, h, got, want)
			}
		}
	}
}
