package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRecoverInPieces checks a segment in pieces, on several workers,
// against reading it in order: the same last record, end and error, for
// an intact log, a log cut anywhere, a byte changed anywhere, and a later
// segment (whose first record's link is taken as it says).
func TestRecoverInPieces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.SyncEvery(time.Hour)
	for i := range 120 {
		rec := &Record{EventVersion: "1.11", EventTime: FormatTime(time.Unix(int64(i), 0)), EventSource: "kms.amazonaws.com",
			EventName: "Encrypt", UserIdentity: UserIdentity{Type: "Root"}, RequestID: fmt.Sprint(i), EventID: fmt.Sprint(i)}
		if err := l.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	intact, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	second := bytes.Index(intact, []byte("\n")) + 1 // a later segment: the log from its second record
	check := func(name string, data []byte, prev string) {
		t.Helper()
		file := filepath.Join(t.TempDir(), "segment")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		seq, last, end, err := recoverFileIn(f, prev, 0, 1, 0)
		want := fmt.Sprint(seq, last, end, err)
		for _, workers := range []int{2, 5} {
			seq, last, end, err := recoverFileIn(f, prev, 0, workers, 0)
			if got := fmt.Sprint(seq, last, end, err); got != want {
				t.Fatalf("%s, %d workers: %s; in order: %s", name, workers, got, want)
			}
		}
	}
	check("intact", intact, genesis)
	check("a later segment", intact[second:], "")
	for cut := 0; cut < len(intact); cut += 1999 {
		check(fmt.Sprintf("cut at %d", cut), intact[:cut], genesis)
	}
	for at := 0; at < len(intact); at += 997 {
		for _, mask := range []byte{0x01, 0x20} {
			changed := bytes.Clone(intact)
			changed[at] ^= mask
			check(fmt.Sprintf("byte %d ^ %#x", at, mask), changed, genesis)
			check(fmt.Sprintf("later, byte %d ^ %#x", at, mask), changed[second:], "")
		}
	}
	// A record removed: where it was the first of a piece, each piece
	// chains and only their link breaks.
	lines := bytes.SplitAfter(intact, []byte("\n"))
	for i := range lines {
		removed := bytes.Join(append(append([][]byte{}, lines[:i]...), lines[i+1:]...), nil)
		check(fmt.Sprintf("record %d removed", i+1), removed, genesis)
	}
}
