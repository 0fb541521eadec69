package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/audit"
)

// lineHashes returns the hash the records of log claim, by sequence
// number, for the numbers 1 to the number of lines, and the sequence
// number where its chain ends.
func lineHashes(t testing.TB, log []byte) (*audit.Named, uint64) {
	t.Helper()
	keep := &audit.Named{}
	for i := range bytes.Count(log, []byte("\n")) {
		keep.Add(uint64(i + 1))
	}
	c := audit.NewLogCheck(keep)
	if err := c.Read(bytes.NewReader(log)); err != nil {
		t.Fatal(err)
	}
	return c.Hashes(), c.End()
}

// chainLine is the line of record seq after a record hashed prev, as the
// documented chain frames it, with pad in the event; and its hash.
func chainLine(prev string, seq int, pad string) (string, string) {
	ev := fmt.Sprintf(`{"sequence":%d,"previousHash":"%s","pad":"%s"}`, seq, prev, pad)
	sum := sha256.Sum256([]byte(prev + ev))
	hash := hex.EncodeToString(sum[:])
	return fmt.Sprintf(`{"hash":"%s","event":%s}`+"\n", hash, ev), hash
}

// TestLogCheckKeepsOnlyWhatItIsAsked checks that the hashes kept are the
// lines' own, that no other line's is, and that the chain is checked as
// VerifyAll checks it.
func TestLogCheckKeepsOnlyWhatItIsAsked(t *testing.T) {
	log, err := os.ReadFile(writeLog(t, 20))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(log), "\n")
	lines[6] = "not a record\n" // line 7
	log = []byte(strings.Join(lines, ""))
	keep := &audit.Named{}
	for _, n := range []uint64{25, 7, 3, 20, 3} { // in any order, more than once
		keep.Add(n)
	}
	c := audit.NewLogCheck(keep)
	if err := c.Read(bytes.NewReader(log)); err != nil {
		t.Fatal(err)
	}
	var third struct{ Hash string }
	if err := json.Unmarshal([]byte(lines[2]), &third); err != nil {
		t.Fatal(err)
	}
	got := c.Hashes()
	if got.Hash(3) != third.Hash || got.Hash(7) != "" || got.Hash(20) == "" || got.Hash(4) != "" || got.Hash(25) != "" {
		t.Fatalf("kept hashes %q %q %q %q %q, want those of lines 3 (%s), 7 (empty) and 20 only",
			got.Hash(3), got.Hash(7), got.Hash(20), got.Hash(4), got.Hash(25), third.Hash)
	}
	n, problems, err := audit.VerifyAll(bytes.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if c.Verified() != n || !reflect.DeepEqual(c.Problems(), problems) || c.Lines() != 20 || n != 6 {
		t.Fatalf("check: %d verified, %d lines, %v; VerifyAll: %d, %v", c.Verified(), c.Lines(), c.Problems(), n, problems)
	}
}

// TestLogCheckLongLine checks lines longer than the read buffer: they are
// checked whole, and the lines after them keep their numbers.
func TestLogCheckLongLine(t *testing.T) {
	l1, h1 := chainLine(strings.Repeat("0", 64), 1, "a")
	l2, h2 := chainLine(h1, 2, strings.Repeat("x", 3<<20))
	l3, h3 := chainLine(h2, 3, "c")
	log := l1 + l2 + l3 + strings.Repeat("y", 2<<20) + "\n" + l3
	keep := &audit.Named{}
	keep.Add(2)
	keep.Add(3)
	c := audit.NewLogCheck(keep)
	if err := c.Read(strings.NewReader(log)); err != nil {
		t.Fatal(err)
	}
	if c.Verified() != 3 || c.Lines() != 5 || c.Hashes().Hash(2) != h2 || c.Hashes().Hash(3) != h3 {
		t.Fatalf("%d verified of %d lines, kept %q and %q; want 3 of 5 and the hashes of lines 2 and 3",
			c.Verified(), c.Lines(), c.Hashes().Hash(2), c.Hashes().Hash(3))
	}
	p := c.Problems()
	if len(p) != 2 || p[0].Line != 4 || p[1].Line != 5 {
		t.Fatalf("problems %+v, want lines 4 (not a record) and 5 (sequence)", p)
	}
}

// A line far longer than any record (an edit of the trail) is reported
// without being held whole: verifying it takes memory bounded by the
// longest line a record can have, and the lines after it are checked.
func TestLogCheckOverlongLine(t *testing.T) {
	l1, h1 := chainLine(strings.Repeat("0", 64), 1, "a")
	l3, _ := chainLine(h1, 3, "b") // the chain taken up after the long line
	const huge = 300 << 20
	log := io.MultiReader(strings.NewReader(l1+`{"hash":"`),
		io.LimitReader(repeatReader('y'), huge), strings.NewReader("\n"+l3+`{"hash":"`),
		io.LimitReader(repeatReader('z'), huge))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c := audit.NewLogCheck(nil)
	if err := c.Read(log); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 200<<20 {
		t.Errorf("verifying took %d MiB", alloc>>20)
	}
	p := c.Problems()
	if c.Verified() != 1 || c.Lines() != 3 || len(p) != 2 ||
		p[0].Line != 2 || !strings.Contains(p[0].Reason, "longer than 64 MiB") ||
		p[1].Line != 4 || p[1].Reason != "the last line is incomplete" {
		t.Fatalf("%d verified of %d lines, problems %+v", c.Verified(), c.Lines(), p)
	}
}

// repeatReader reads as an endless run of its byte. It fills p by
// doubling copies, not byte by byte: the race detector checks each store
// of a loop, and hundreds of MiB of them took seconds.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	if len(p) > 0 {
		p[0] = byte(r)
		for n := 1; n < len(p); n *= 2 {
			copy(p[n:], p[:n])
		}
	}
	return len(p), nil
}

// TestCheckSegmentsAsOneLog checks a trail's segments against VerifyAll of
// their concatenation: a segment before the last that lost its newline
// ends with a complete line, the last one's cut line is incomplete, and
// the problems are found at the same lines, located in their segment.
func TestCheckSegmentsAsOneLog(t *testing.T) {
	dir := t.TempDir()
	writeSegments(t, dir, 60, 2048)
	segs, err := audit.Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 4 {
		t.Fatalf("%d segments, want 4 or more", len(segs))
	}
	edit := func(s audit.Segment, fn func([]byte) []byte) {
		b, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.Path, fn(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// An edited record in the second segment, the first segment's last
	// newline gone, and the last segment cut in its last line.
	edit(segs[1], func(b []byte) []byte { return bytes.Replace(b, []byte(`"Op`), []byte(`"Xp`), 1) })
	edit(segs[0], func(b []byte) []byte { return b[:len(b)-1] })
	last := segs[len(segs)-1]
	edit(last, func(b []byte) []byte { return b[:len(b)-10] })

	var log []byte
	var starts []int
	for i, s := range segs {
		starts = append(starts, bytes.Count(log, []byte("\n")))
		b, _ := os.ReadFile(s.Path)
		if i < len(segs)-1 && b[len(b)-1] != '\n' {
			b = append(b, '\n')
		}
		log = append(log, b...)
	}
	n, want, err := audit.VerifyAll(bytes.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	c := audit.NewLogCheck(nil)
	gotStarts, err := audit.CheckSegments(segs, c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Verified() != n || !reflect.DeepEqual(c.Problems(), want) || !reflect.DeepEqual(gotStarts, starts) {
		t.Fatalf("CheckSegments: %d verified, %+v, starts %v; VerifyAll: %d, %+v, starts %v", c.Verified(), c.Problems(), gotStarts, n, want, starts)
	}
	p := c.Problems()
	if len(p) != 2 || !strings.Contains(p[1].Reason, "incomplete") {
		t.Fatalf("problems %+v, want the edit and the incomplete last line", p)
	}
	if name, _ := audit.Locate(segs, gotStarts, p[0].Line); name != segs[1].Name() {
		t.Fatalf("the edit is located in %s, want %s", name, segs[1].Name())
	}
	if name, _ := audit.Locate(segs, gotStarts, p[1].Line); name != last.Name() {
		t.Fatalf("the cut line is located in %s, want %s", name, last.Name())
	}
	if err := os.Remove(filepath.Join(dir, segs[2].Name())); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.CheckSegments(segs, audit.NewLogCheck(nil)); err == nil {
		t.Fatal("a segment gone while checked: no error")
	}
}

// Read, which export uses for archived segments, stops at a line longer
// than any record before holding it whole, with the records before it
// read.
func TestReadOverlongLine(t *testing.T) {
	l1, h1 := chainLine(strings.Repeat("0", 64), 1, "a")
	l2, _ := chainLine(h1, 2, "b")
	const huge = 300 << 20
	log := io.MultiReader(strings.NewReader(l1+`{"hash":"`),
		io.LimitReader(repeatReader('y'), huge), strings.NewReader("\n"+l2))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var read int
	err := audit.Read(log, func(*audit.Record, json.RawMessage) error { read++; return nil })
	runtime.ReadMemStats(&after)
	if read != 1 || err == nil || !strings.Contains(err.Error(), "longer than 64 MiB") {
		t.Fatalf("read %d records, then %v; want 1, then the line's length", read, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 200<<20 {
		t.Errorf("reading took %d MiB", alloc>>20)
	}
}

// A log edited to break on every line is checked in memory bounded by the
// breaks it keeps, the first 1,000 in the order of the log, not by its
// lines: the others are counted. A break judged after lines that broke
// later is kept in its place.
func TestLogCheckBoundsProblems(t *testing.T) {
	const garbage = 200000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := audit.NewLogCheck(nil)
	l1, _ := chainLine(strings.Repeat("0", 64), 1, "a")
	l5, h5 := chainLine(strings.Repeat("1", 64), 5, "e") // records 2 to 4 removed
	l6, _ := chainLine(h5, 6, "f")
	c.Line([]byte(strings.TrimSuffix(l1, "\n")))
	c.Line([]byte(strings.TrimSuffix(l5, "\n")))
	for range garbage {
		c.Line([]byte("{}"))
	}
	c.Line([]byte(strings.TrimSuffix(l6, "\n")))
	p := c.Problems()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if held := int64(after.HeapAlloc) - int64(before.HeapAlloc); held > 2<<20 {
		t.Errorf("%d breaks hold %d KiB", garbage+1, held>>10)
	}
	if len(p) != 1000 || c.Dropped() != garbage+1-1000 || p[0].Line != 2 || !strings.Contains(p[0].Reason, "records 2 to 4 were removed") || p[999].Line != 1001 {
		t.Fatalf("%d problems kept, %d dropped, the first %+v, the last at line %d", len(p), c.Dropped(), p[0], p[len(p)-1].Line)
	}
	runtime.KeepAlive(c)

	// A line cut short at the end, past the breaks kept, is taken out of
	// the count.
	c = audit.NewLogCheck(nil)
	if err := c.Read(strings.NewReader(strings.Repeat("{}\n", 1500) + "{")); err != nil {
		t.Fatal(err)
	}
	if !c.EndsIncomplete() || c.Dropped() != 501 {
		t.Fatalf("incomplete %v, %d dropped; want 501", c.EndsIncomplete(), c.Dropped())
	}
	if p := c.DropIncomplete(); len(p) != 1000 || c.Dropped() != 500 || p[999].Line != 1000 {
		t.Fatalf("after DropIncomplete: %d kept, %d dropped", len(p), c.Dropped())
	}
}
