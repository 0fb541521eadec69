package main_test

// One change in the middle of a server's segmented trail, with several
// signed digests after it, is reported once by `kms audit verify`: a
// digest names its record by sequence number, wherever the record now
// stands, so the digests after the change still match their records.

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
	"syscall"
	"testing"

	"github.com/openkms/kms/internal/audit"
)

// signedSegmentsDir runs a dev server with 4 KiB segments through four
// rounds of calls, each ended by SIGTERM, which signs a digest of the
// trail: several digests, in several segments. It returns the data
// directory and the number of records.
func signedSegmentsDir(t *testing.T) (string, int) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	for range 4 {
		s := startServer(t, dir, baseEnv(), "--dev", "--audit-segment-bytes", "4096")
		encryptCalls(t, s, 9)
		if code := s.stop(syscall.SIGTERM); code != 0 {
			t.Fatalf("SIGTERM: exit %d", code)
		}
	}
	segs, lines := trailSegments(t, dir)
	if len(segs) < 5 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	n := 0
	for _, ls := range lines {
		n += len(ls)
	}
	return dir, n
}

// trailSegments returns the segments of dir and the lines of each,
// without their newlines.
func trailSegments(t *testing.T, dir string) ([]audit.Segment, [][]string) {
	t.Helper()
	segs, err := audit.Segments(dir)
	noErr(t, err, "list the segments")
	out := make([][]string, len(segs))
	for i, s := range segs {
		b, err := os.ReadFile(s.Path)
		noErr(t, err, "read %s", s.Name())
		if len(b) > 0 {
			out[i] = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		}
	}
	return segs, out
}

// rewriteRecord rewrites the segment of dir that holds record seq with
// fn, given the segment's lines and the index of the record's line, and
// returns the segment's name.
func rewriteRecord(t *testing.T, dir string, seq int, fn func(lines []string, i int) []string) string {
	t.Helper()
	segs, lines := trailSegments(t, dir)
	before := 0
	for k, ls := range lines {
		if seq <= before+len(ls) {
			var b []byte
			if out := fn(slices.Clone(ls), seq-before-1); len(out) > 0 {
				b = []byte(strings.Join(out, "\n") + "\n")
			}
			noErr(t, os.WriteFile(segs[k].Path, b, 0o600), "rewrite %s", segs[k].Name())
			return segs[k].Name()
		}
		before += len(ls)
	}
	t.Fatalf("no record %d", seq)
	return ""
}

// rehashLine returns a record's line with its event changed by edit and
// its hash made again, as one who rewrites a record would.
func rehashLine(t *testing.T, line string, edit func(event string) string) string {
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

// digestsOf returns the records the digests of dir name.
func digestsOf(t *testing.T, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "audit-digests.log"))
	noErr(t, err, "read the digests")
	var out []int
	for _, ln := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var d struct{ Sequence int }
		noErr(t, json.Unmarshal([]byte(ln), &d), "digest %s", ln)
		out = append(out, d.Sequence)
	}
	return out
}

var verifyBreakRE = regexp.MustCompile(`(?m)^(also )?BROKEN.*$`)

func TestAuditVerifyReportsOneChangeOnce(t *testing.T) {
	t.Parallel()
	dir, n := signedSegmentsDir(t)
	if code, out := auditVerify(t, dir); code != 0 || !strings.HasPrefix(out, fmt.Sprintf("OK: %d records", n)) {
		t.Fatalf("verify of the intact trail: exit %d\n%s", code, out)
	}
	digests := digestsOf(t, dir)
	if len(digests) < 4 || digests[len(digests)-1] != n {
		t.Fatalf("digests of records %v in a trail of %d, want one per round at least", digests, n)
	}
	// The record changed: after the first digest, with two digests or
	// more after it, neither it nor the next signed, and not the last of
	// its segment, which is neither the first nor the last.
	at := 0
	segs, lines := trailSegments(t, dir)
	for k, before := 0, 0; k < len(segs) && at == 0; k++ {
		for i := range lines[k] {
			s := before + i + 1
			if k > 0 && k < len(segs)-1 && i+1 < len(lines[k]) && s > digests[0] &&
				!slices.Contains(digests, s) && !slices.Contains(digests, s+1) && digests[len(digests)-2] > s+1 {
				at = s
				break
			}
		}
		before += len(lines[k])
	}
	if at == 0 {
		t.Fatalf("no record to change in segments of %v records, digests of %v", len(lines), digests)
	}
	r := strings.NewReplacer("{a}", fmt.Sprint(at), "{b}", fmt.Sprint(at+1)).Replace
	d := len(digests)
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, dir string) string // returns the segment changed
		breaks []string                              // the BROKEN lines, each a prefix
		intact string
	}{
		{"a record removed", func(t *testing.T, dir string) string {
			return rewriteRecord(t, dir, at, func(ls []string, i int) []string { return slices.Delete(ls, i, i+1) })
		}, []string{r("BROKEN at record {a} (line {a}): sequence {b} where {a} was expected, and its previousHash is not the hash of the record before: record {a} was removed (")},
			fmt.Sprintf("After the last break of the chain, records %d to %d chain intact; %d of %d signed digests match their records.", at+1, n, d, d)},
		{"a record inserted", func(t *testing.T, dir string) string {
			return rewriteRecord(t, dir, at, func(ls []string, i int) []string {
				forged := rehashLine(t, ls[i], func(ev string) string { return strings.Replace(ev, `"Encrypt"`, `"Decrypt"`, 1) })
				return slices.Insert(ls, i, forged)
			})
		}, []string{r("BROKEN at record {a} (line {a}): a record numbered {a} that the chain does not go on from: line {b} holds sequence {a} after the same record, and the record after it follows that one (a record was inserted) (")},
			fmt.Sprintf("After the last break of the chain, records %d to %d chain intact; %d of %d signed digests match their records.", at, n, d, d)},
		{"a record duplicated", func(t *testing.T, dir string) string {
			return rewriteRecord(t, dir, at, func(ls []string, i int) []string { return slices.Insert(ls, i, ls[i]) })
		}, []string{r("BROKEN at record {b} (line {b}): sequence {a} where {b} was expected: a copy of the record before it (a record was duplicated) (")},
			fmt.Sprintf("After the last break of the chain, records %d to %d chain intact; %d of %d signed digests match their records.", at+1, n, d, d)},
		{"two records swapped", func(t *testing.T, dir string) string {
			return rewriteRecord(t, dir, at, func(ls []string, i int) []string {
				if i+1 == len(ls) {
					t.Fatalf("record %d ends its segment", at)
				}
				ls[i], ls[i+1] = ls[i+1], ls[i]
				return ls
			})
		}, []string{r("BROKEN at record {a} (line {a}): sequence {b} where {a} was expected: the record is out of place, and the chain goes on past it (a record was inserted, duplicated or moved) (")},
			fmt.Sprintf("After the last break of the chain, records %d to %d chain intact; %d of %d signed digests match their records.", at, n, d, d)},
		{"a record edited, its hash made again", func(t *testing.T, dir string) string {
			return rewriteRecord(t, dir, at, func(ls []string, i int) []string {
				ls[i] = rehashLine(t, ls[i], func(ev string) string { return strings.Replace(ev, `"Encrypt"`, `"Decrypt"`, 1) })
				return ls
			})
		}, []string{r("BROKEN at record {b} (line {b}): previousHash does not match the record before (that record was edited, or this one put in its place) (")},
			fmt.Sprintf("After the last break of the chain, records %d to %d chain intact; %d of %d signed digests match their records.", at+1, n, d, d)},
		{"records cut off the end", func(t *testing.T, dir string) string {
			return rewriteRecord(t, dir, n, func(ls []string, i int) []string { return ls[:i] })
		}, []string{
			fmt.Sprintf("BROKEN: digest %d names record %d, but the log ends at record %d (records were cut off)", d, n, n-1),
			fmt.Sprintf("also BROKEN: the high-water mark in kms.db names record %d, but the log ends at record %d (records were cut off)", n, n-1),
			fmt.Sprintf("also BROKEN: the high-water mark in audit-head.json names record %d, but the log ends at record %d (records were cut off)", n, n-1),
		}, fmt.Sprintf("Records 1 to %d chain intact; %d of %d signed digests match their records.", n-1, d-1, d)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyAuditDir(t, dir)
			seg := tc.tamper(t, d)
			code, out := auditVerify(t, d)
			got := verifyBreakRE.FindAllString(out, -1)
			ok := code == 1 && len(got) == len(tc.breaks) && strings.Contains(out, "\n"+tc.intact+"\n")
			for i := 0; ok && i < len(got); i++ {
				ok = strings.HasPrefix(got[i], tc.breaks[i])
			}
			if ok && !strings.HasPrefix(tc.breaks[0], "BROKEN:") {
				ok = strings.Contains(got[0], "("+seg+", line ")
			}
			if !ok {
				t.Errorf("exit %d, want 1 with the BROKEN lines\n%s\nand %q; verify printed\n%s", code, strings.Join(tc.breaks, "\n"), tc.intact, out)
			}
		})
	}

	// The records from at to the end of its segment cut off: the chain
	// breaks once, at the next segment's first record, and only the
	// digests of the records cut off fail.
	t.Run("records cut off the end of a middle segment", func(t *testing.T) {
		d := copyAuditDir(t, dir)
		end := 0
		rewriteRecord(t, d, at, func(ls []string, i int) []string {
			end = at + len(ls) - i - 1 // the segment's last record
			return ls[:i]
		})
		if end == n {
			t.Fatalf("record %d is in the last segment", at)
		}
		want := []string{fmt.Sprintf("BROKEN at record %d (line %d): sequence %d where %d was expected, and its previousHash is not the hash of the record before: records %d to %d were removed (", at, at, end+1, at, at, end)}
		for k, s := range digests {
			if s >= at && s <= end {
				want = append(want, fmt.Sprintf("also BROKEN at digest %d: digest %d names record %d, which the log does not hold (it was removed)", k+1, k+1, s))
			}
		}
		intact := fmt.Sprintf("After the last break of the chain, records %d to %d chain intact; %d of %d signed digests match their records.", end+1, n, len(digests)-len(want)+1, len(digests))
		code, out := auditVerify(t, d)
		got := verifyBreakRE.FindAllString(out, -1)
		ok := code == 1 && len(got) == len(want) && strings.Contains(out, "\n"+intact+"\n")
		for i := 0; ok && i < len(got); i++ {
			ok = strings.HasPrefix(got[i], want[i])
		}
		if !ok {
			t.Errorf("exit %d, want 1 with the BROKEN lines\n%s\nand %q; verify printed\n%s", code, strings.Join(want, "\n"), intact, out)
		}
	})
}
