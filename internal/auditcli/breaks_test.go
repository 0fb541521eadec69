package auditcli_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/auditcli"
)

// segmentLines returns the lines of each segment of dir, without their
// newlines.
func segmentLines(t *testing.T, dir string) ([]audit.Segment, [][]string) {
	t.Helper()
	segs, err := audit.Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]string, len(segs))
	for i, s := range segs {
		b, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	return segs, out
}

// editRecord rewrites the segment of dir that holds record seq with
// fn, given that segment's lines and the index of the record's line.
func editRecord(t *testing.T, dir string, seq int, fn func(lines []string, i int) []string) {
	t.Helper()
	segs, lines := segmentLines(t, dir)
	n := 0
	for k, ls := range lines {
		if seq <= n+len(ls) {
			var b []byte
			if out := fn(ls, seq-n-1); len(out) > 0 {
				b = []byte(strings.Join(out, "\n") + "\n")
			}
			if err := os.WriteFile(segs[k].Path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return
		}
		n += len(ls)
	}
	t.Fatalf("no record %d", seq)
}

// rehashed returns line with its event changed by edit and its hash made
// again over the changed event, as one who rewrites a record would.
func rehashed(t *testing.T, line string, edit func(event string) string) string {
	t.Helper()
	var ln struct {
		Event json.RawMessage `json:"event"`
	}
	var ev struct {
		PreviousHash string `json:"previousHash"`
	}
	if json.Unmarshal([]byte(line), &ln) != nil || json.Unmarshal(ln.Event, &ev) != nil {
		t.Fatalf("not a record: %s", line)
	}
	event := edit(string(ln.Event))
	sum := sha256.Sum256([]byte(ev.PreviousHash + event))
	return `{"hash":"` + hex.EncodeToString(sum[:]) + `","event":` + event + `}`
}

// relinked returns line with its previousHash changed from prev to
// next and its hash made again, as one who forges a record to follow
// another would.
func relinked(t *testing.T, line, prev, next string) string {
	t.Helper()
	var ln struct {
		Event json.RawMessage `json:"event"`
	}
	if json.Unmarshal([]byte(line), &ln) != nil || !strings.Contains(string(ln.Event), prev) {
		t.Fatalf("not a record after %s: %s", prev, line)
	}
	event := strings.Replace(string(ln.Event), prev, next, 1)
	sum := sha256.Sum256([]byte(next + event))
	return `{"hash":"` + hex.EncodeToString(sum[:]) + `","event":` + event + `}`
}

var breakLineRE = regexp.MustCompile(`(?m)^(also )?BROKEN.*$`)

// One change in the middle of a segmented trail signed after every
// record is reported once, where it is: a digest names a record by its
// sequence number, wherever the record stands, so the digests after the
// change match their records, and so do the high-water marks. Only a
// digest of a record that is gone or changed is reported beside the
// chain's break. Each still fails verification.
func TestVerifyReportsOneChangeOnce(t *testing.T) {
	t.Parallel()
	const n, at = 40, 17 // record 17 stands in a middle segment
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, dir string)
		breaks func(w where) []string // every BROKEN line, in order
		intact string                 // the line on what still verifies
	}{
		{"a record removed", func(t *testing.T, dir string) {
			editRecord(t, dir, at, func(ls []string, i int) []string { return append(ls[:i:i], ls[i+1:]...) })
		}, func(w where) []string {
			return []string{
				"BROKEN at record 17 (line 17): sequence 18 where 17 was expected, and its previousHash is not the hash of the record before: record 17 was removed (" + w.seg + ", line " + fmt.Sprint(w.line) + ")",
				"also BROKEN at digest 17: digest 17 names record 17, which the log does not hold (it was removed)",
			}
		}, "After the last break of the chain, records 18 to 40 chain intact; 39 of 40 signed digests match their records."},
		{"records cut off the end of a middle segment", func(t *testing.T, dir string) {
			editRecord(t, dir, at, func(ls []string, i int) []string { return ls[:i] })
		}, func(w where) []string {
			return append([]string{
				fmt.Sprintf("BROKEN at record 17 (line 17): sequence %d where 17 was expected, and its previousHash is not the hash of the record before: records 17 to %d were removed (%s, line 1)", w.last+1, w.last, w.next),
			}, digestsGone(17, w.last)...)
		}, ""},
		{"a record inserted", func(t *testing.T, dir string) {
			// A forgery with the sequence number and previousHash of the
			// record it is put before, and its own hash right.
			editRecord(t, dir, at, func(ls []string, i int) []string {
				forged := rehashed(t, ls[i], func(ev string) string { return strings.Replace(ev, `"Op16"`, `"Forged"`, 1) })
				return append(ls[:i:i], append([]string{forged}, ls[i:]...)...)
			})
		}, func(w where) []string {
			return []string{
				"BROKEN at record 17 (line 17): a record numbered 17 that the chain does not go on from: line 18 holds sequence 17 after the same record, and the record after it follows that one (a record was inserted) (" + w.seg + ", line " + fmt.Sprint(w.line) + ")",
			}
		}, "After the last break of the chain, records 17 to 40 chain intact; 40 of 40 signed digests match their records."},
		{"records inserted", func(t *testing.T, dir string) {
			// Forgeries of records 17 and 18, each following the one
			// before, put before the records they copy: the chain goes on
			// from the genuine ones.
			editRecord(t, dir, at, func(ls []string, i int) []string {
				if i+1 == len(ls) {
					t.Fatalf("record %d is the last of its segment", at)
				}
				f17 := rehashed(t, ls[i], func(ev string) string { return strings.Replace(ev, `"Op16"`, `"Forged"`, 1) })
				var genuine17, forged17 struct{ Hash string }
				if json.Unmarshal([]byte(ls[i]), &genuine17) != nil || json.Unmarshal([]byte(f17), &forged17) != nil {
					t.Fatal("not records")
				}
				f18 := relinked(t, ls[i+1], genuine17.Hash, forged17.Hash)
				return append(ls[:i:i], append([]string{f17, f18}, ls[i:]...)...)
			})
		}, func(w where) []string {
			return []string{
				"BROKEN at record 17 (line 17): records numbered 17 to 18 stand twice, on lines 17 to 18 and again from line 19, each following the record before it: the chain goes on from the second (records were inserted in one of the two places) (" + w.seg + ", line " + fmt.Sprint(w.line) + ")",
			}
		}, "After the last break of the chain, records 17 to 40 chain intact; 40 of 40 signed digests match their records."},
		{"a record duplicated", func(t *testing.T, dir string) {
			editRecord(t, dir, at, func(ls []string, i int) []string {
				return append(ls[:i+1:i+1], append([]string{ls[i]}, ls[i+1:]...)...)
			})
		}, func(w where) []string {
			return []string{
				"BROKEN at record 18 (line 18): sequence 17 where 18 was expected: a copy of the record before it (a record was duplicated) (" + w.seg + ", line " + fmt.Sprint(w.line+1) + ")",
			}
		}, "After the last break of the chain, records 18 to 40 chain intact; 40 of 40 signed digests match their records."},
		{"two records swapped", func(t *testing.T, dir string) {
			editRecord(t, dir, at, func(ls []string, i int) []string {
				if i+1 == len(ls) {
					t.Fatalf("record %d is the last of its segment", at)
				}
				ls[i], ls[i+1] = ls[i+1], ls[i]
				return ls
			})
		}, func(w where) []string {
			return []string{
				"BROKEN at record 17 (line 17): sequence 18 where 17 was expected: the record is out of place, and the chain goes on past it (a record was inserted, duplicated or moved) (" + w.seg + ", line " + fmt.Sprint(w.line) + ")",
			}
		}, "After the last break of the chain, records 17 to 40 chain intact; 40 of 40 signed digests match their records."},
		{"a record edited, its hash made again", func(t *testing.T, dir string) {
			editRecord(t, dir, at, func(ls []string, i int) []string {
				ls[i] = rehashed(t, ls[i], func(ev string) string { return strings.Replace(ev, `"Op16"`, `"Op61"`, 1) })
				return ls
			})
		}, func(w where) []string {
			return []string{
				"BROKEN at record 18 (line 18): previousHash does not match the record before (that record was edited, or this one put in its place) (" + w.seg + ", line " + fmt.Sprint(w.line+1) + ")",
				"also BROKEN at digest 17: digest 17 does not match record 17",
			}
		}, "After the last break of the chain, records 18 to 40 chain intact; 39 of 40 signed digests match their records."},
		{"a record edited", func(t *testing.T, dir string) {
			editRecord(t, dir, at, func(ls []string, i int) []string {
				ls[i] = strings.Replace(ls[i], `"Op16"`, `"Op61"`, 1)
				return ls
			})
		}, func(w where) []string {
			return []string{
				"BROKEN at record 17 (line 17): hash does not match the record (it was edited) (" + w.seg + ", line " + fmt.Sprint(w.line) + ")",
			}
		}, "After the last break of the chain, records 18 to 40 chain intact; 40 of 40 signed digests match their records."},
		{"records cut off the end", func(t *testing.T, dir string) {
			editRecord(t, dir, n, func(ls []string, i int) []string { return ls[:i-1] })
		}, func(w where) []string {
			return []string{
				"BROKEN: digest 39 names record 39, but the log ends at record 38 (records were cut off)",
				"also BROKEN at digest 40: digest 40 names record 40, but the log ends at record 38 (records were cut off)",
				"also BROKEN: the high-water mark in kms.db names record 40, but the log ends at record 38 (records were cut off)",
				"also BROKEN: the high-water mark in audit-head.json names record 40, but the log ends at record 38 (records were cut off)",
			}
		}, "Records 1 to 38 chain intact; 38 of 40 signed digests match their records."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := stoppedDirSegments(t, n, 8192)
			segs, lines := segmentLines(t, dir)
			if len(segs) < 4 {
				t.Fatalf("%d segments, want several", len(segs))
			}
			// Where record 17 stands, and its segment's last record.
			var w where
			for k, ls := range lines {
				if w.last+len(ls) >= at {
					if k == 0 || k == len(segs)-1 {
						t.Fatalf("record %d is in %s, want a middle segment", at, segs[k].Name())
					}
					w.seg, w.line, w.next = segs[k].Name(), at-w.last, segs[k+1].Name()
					w.last += len(ls)
					break
				}
				w.last += len(ls)
			}
			tc.tamper(t, dir)
			out, err := verifyOut(t, auditcli.Options{DataDir: dir})
			if err == nil {
				t.Fatalf("verify of the changed trail passed:\n%s", out)
			}
			got := breakLineRE.FindAllString(out, -1)
			want := tc.breaks(w)
			if !slices.Equal(got, want) {
				t.Errorf("verify printed\n%s\nwant the BROKEN lines\n%s", out, strings.Join(want, "\n"))
			}
			if tc.intact == "" {
				tc.intact = fmt.Sprintf("After the last break of the chain, records %d to 40 chain intact; %d of 40 signed digests match their records.", w.last+1, 40-(w.last-at+1))
			}
			if !strings.Contains(out, "\n"+tc.intact+"\n") {
				t.Errorf("verify printed\n%s\nwant a line %q", out, tc.intact)
			}
		})
	}
}

// where is where a record stands in a segmented trail: its segment and
// line in it, the number of the segment's last record, and the segment
// after it.
type where struct {
	seg, next string
	line      int
	last      int
}

// digestsGone returns the BROKEN lines of the digests of records from to
// to, removed: each digest is the record's.
func digestsGone(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("also BROKEN at digest %d: digest %d names record %d, which the log does not hold (it was removed)", i, i, i))
	}
	return out
}

// Lines that are not records, put in a trail by the thousand, and lines
// that are not digests in its digests' file, are each a break: verify
// prints the first ones and counts them all, those its checks did not
// keep included.
func TestVerifyCountsBreaksNotKept(t *testing.T) {
	dir, _ := stoppedDirSegments(t, 40, 8192)
	segs, _ := segmentLines(t, dir)
	f, err := os.OpenFile(segs[len(segs)-1].Path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(strings.Repeat("{}\n", 1500)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// And lines that are not digests in the digests' file.
	f, err = os.OpenFile(filepath.Join(dir, "audit-digests.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(strings.Repeat("{}\n", 1200)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := verifyOut(t, auditcli.Options{DataDir: dir})
	if err == nil || len(breakLineRE.FindAllString(out, -1)) != 11 || !strings.Contains(out, "\n... and 2689 more breaks after these.\n") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
}
