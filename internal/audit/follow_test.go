package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/audit"
)

// Each change of a chain is reported once, at the line where it is, and
// the check follows the chain on past it: every log changed still has
// problems, and the records after the change chain intact.
func TestFollowReportsEachChangeOnce(t *testing.T) {
	var chain []string // chain[i] is record i+1's line
	prev := strings.Repeat("0", 64)
	for i := 1; i <= 12; i++ {
		var ln string
		ln, prev = chainLine(prev, i, fmt.Sprint("r", i))
		chain = append(chain, strings.TrimSuffix(ln, "\n"))
	}
	// forged is a record numbered 6 that follows record 5.
	forged := func() string {
		ev := strings.Replace(strings.SplitN(chain[5], `"event":`, 2)[1], `"r6"`, `"f6"`, 1)
		ev = strings.TrimSuffix(ev, "}")
		prev5 := strings.SplitN(strings.SplitN(chain[4], `"hash":"`, 2)[1], `"`, 2)[0]
		sum := sha256.Sum256([]byte(prev5 + ev))
		return `{"hash":"` + hex.EncodeToString(sum[:]) + `","event":` + ev + `}`
	}()
	// forgedRun is records numbered 6 to 8 that follow record 5 and
	// each other.
	forgedRun := func() []string {
		var out []string
		prev := strings.SplitN(strings.SplitN(chain[4], `"hash":"`, 2)[1], `"`, 2)[0]
		for i := 6; i <= 8; i++ {
			var ln string
			ln, prev = chainLine(prev, i, fmt.Sprint("f", i))
			out = append(out, strings.TrimSuffix(ln, "\n"))
		}
		return out
	}()
	rec := func(seqs ...int) []string {
		var out []string
		for _, s := range seqs {
			out = append(out, chain[s-1])
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		lines  []string
		breaks []int  // the lines of the problems
		reason string // part of the first problem's reason
		first  uint64 // the first record chained intact after the last break
	}{
		{"intact", rec(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), nil, "", 1},
		{"one removed", rec(1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12), []int{5}, "record 5 was removed", 6},
		{"three removed", rec(1, 2, 3, 4, 8, 9, 10, 11, 12), []int{5}, "records 5 to 7 were removed", 8},
		{"the first removed", rec(2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), []int{1}, "record 1 was removed", 2},
		{"the last removed", rec(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12), []int{11}, "record 11 was removed", 12},
		{"one duplicated", rec(1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10, 11, 12), []int{6}, "a copy of the record before it", 6},
		{"the last duplicated", rec(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12), []int{13}, "a copy of the record before it", 0},
		{"an older one copied in", rec(1, 2, 3, 4, 5, 6, 2, 7, 8, 9, 10, 11, 12), []int{7}, "out of place", 7},
		{"a block copied in", rec(1, 2, 3, 4, 5, 6, 3, 4, 5, 7, 8, 9, 10, 11, 12), []int{7}, "the chain goes back", 7},
		{"two swapped", rec(1, 2, 3, 4, 6, 5, 7, 8, 9, 10, 11, 12), []int{5}, "out of place", 5},
		{"one moved back", rec(1, 2, 3, 4, 5, 6, 8, 9, 10, 7, 11, 12), []int{7, 10}, "record 7 was removed", 11},
		{"one moved forward", rec(1, 2, 9, 3, 4, 5, 6, 7, 8, 10, 11, 12), []int{3}, "out of place", 3},
		{"a forgery inserted", slices.Insert(rec(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), 5, forged), []int{6}, "a record was inserted", 6},
		{"a forgery inserted twice", slices.Insert(rec(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), 5, forged, forged), []int{6, 7}, "a record was inserted", 6},
		{"forged records inserted", slices.Insert(rec(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), 5, forgedRun[:2]...), []int{6}, "records numbered 6 to 7 stand twice, on lines 6 to 7 and again from line 8", 6},
		{"forged records inserted after a line", slices.Insert(rec(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), 5, append(forgedRun, "{}")...), []int{6, 9}, "records numbered 6 to 8 stand twice, on lines 6 to 8 and again from line 10", 6},
		{"one replaced by a forgery", slices.Replace(rec(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), 5, 6, forged), []int{7}, "previousHash does not match", 7},
		{"one made unreadable", slices.Replace(rec(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), 5, 6, "{"), []int{6}, "not a record", 7},
		{"a line inserted", slices.Insert(rec(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), 5, "{}"), []int{6}, "event is not JSON", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := []byte(strings.Join(tc.lines, "\n") + "\n")
			c := audit.NewLogCheck(nil)
			if err := c.Read(bytes.NewReader(log)); err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, p := range c.Problems() {
				got = append(got, p.Line)
			}
			if !slices.Equal(got, tc.breaks) || len(got) > 0 && !strings.Contains(c.Problems()[0].Reason, tc.reason) {
				t.Fatalf("problems %+v, want at lines %v, the first %q", c.Problems(), tc.breaks, tc.reason)
			}
			if n, first, last := c.Intact(); first != tc.first || (first != 0 && (last != 12 || n != 12-first+1)) {
				t.Errorf("intact: %d records, %d to %d; want %d to 12", n, first, last, tc.first)
			}
			if c.End() != 12 {
				t.Errorf("the chain ends at record %d, want 12", c.End())
			}
			if len(got) > 0 && c.Verified() != got[0]-1 {
				t.Errorf("%d records verified before the first break at line %d", c.Verified(), got[0])
			}
		})
	}
}

// Records of the same numbers on two branches from the same record stand
// twice whichever branch comes first: a forged branch after the genuine
// records, longer than they are, is reported where the first branch
// begins, as one before them is, and no record of either verifies.
func TestFollowTwoBranches(t *testing.T) {
	var log strings.Builder
	prev := strings.Repeat("0", 64)
	var fork string // the hash of record 5
	for i := 1; i <= 12; i++ {
		var ln string
		ln, prev = chainLine(prev, i, fmt.Sprint("r", i))
		log.WriteString(ln)
		if i == 5 {
			fork = prev
		}
	}
	prev = fork
	for i := 6; i <= 14; i++ {
		var ln string
		ln, prev = chainLine(prev, i, fmt.Sprint("f", i))
		log.WriteString(ln)
	}
	c := audit.NewLogCheck(nil)
	if err := c.Read(strings.NewReader(log.String())); err != nil {
		t.Fatal(err)
	}
	p := c.Problems()
	want := "records numbered 6 to 12 stand twice, on lines 6 to 12 and again from line 13, each following the record before it"
	if len(p) != 1 || p[0].Line != 6 || p[0].Seq != 6 || !strings.Contains(p[0].Reason, want) || c.Verified() != 5 || c.End() != 14 {
		t.Fatalf("problems %+v, %d verified, end %d; want one at line 6, %q, 5 verified, end 14", p, c.Verified(), c.End(), want)
	}
}
