package audit_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/audit"
)

// TestCheckResume checks a trail of several segments against marks
// naming records in each: the last record, one in the active segment, one
// in a segment before it, one in a segment archived away, and marks the
// trail no longer holds.
func TestCheckResume(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.OpenDir(dir, 2048) // a few records a segment
	if err != nil {
		t.Fatal(err)
	}
	d, err := audit.OpenDigester(filepath.Join(dir, "audit-digests.log"), priv)
	if err != nil {
		t.Fatal(err)
	}
	var marks [][]byte // marks[i] names record i+1
	d.OnDigest(func(line []byte) error {
		marks = append(marks, append([]byte(nil), line...))
		return nil
	})
	for range 30 {
		if err := l.Append(rec("Encrypt")); err != nil {
			t.Fatal(err)
		}
		if err := d.Write(l, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	seq, hash := l.Head()
	l.Close()
	d.Close()
	segs, err := audit.Segments(dir)
	if err != nil || len(segs) < 4 {
		t.Fatalf("%d segments (%v), want at least 4", len(segs), err)
	}
	digests := filepath.Join(dir, "audit-digests.log")
	check := func(mark []byte, seq uint64, hash string) error {
		return audit.CheckResume(dir, seq, hash, mark, pub, digests)
	}
	for n := 1; n <= 30; n++ {
		if err := check(marks[n-1], seq, hash); err != nil {
			t.Errorf("mark of record %d: %v", n, err)
		}
	}
	refused := func(name string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, want)
		}
	}
	refused("the trail cut before the mark", check(marks[29], 28, hash), "the trail ends at record 28")
	refused("another last record", check(marks[29], seq, strings.Repeat("0", 64)), "record of that number is another")
	other := append([]byte(nil), marks[29]...)
	other[len(other)-5] ^= 1
	refused("a mark not signed", check(other, seq, hash), "not a digest signed")
	refused("a mark signed by another key", audit.CheckResume(dir, seq, hash, marks[29], ed25519.PublicKey(make([]byte, 32)), digests), "not a digest signed")

	// A crash in the first write to a new segment leaves it with its first
	// line cut short, not cut off yet when the start checks the mark: the
	// mark's record is looked for in the segments before it.
	torn := filepath.Join(dir, fmt.Sprintf("audit-%06d.log", segs[len(segs)-1].N+1))
	if err := os.WriteFile(torn, []byte(`{"eventVersion":"1.08","sequence":31,"prevHa`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 15, 29} {
		if err := check(marks[n-1], seq, hash); err != nil {
			t.Errorf("mark of record %d with a new segment's first line cut short: %v", n, err)
		}
	}
	if err := os.Remove(torn); err != nil {
		t.Fatal(err)
	}

	// Records 1 to 30 are in segments 1 to n: edit a record's claimed hash
	// in the second segment, whose records the start does not check.
	b, err := os.ReadFile(segs[1].Path)
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(string(b), "\n", 2)[0]
	var n int
	for i, m := range marks {
		if strings.Contains(first, mustDigest(t, m).Hash) {
			n = i + 1
		}
	}
	if n == 0 {
		t.Fatal("no mark names the second segment's first record")
	}
	h := mustDigest(t, marks[n-1]).Hash
	edited := strings.Replace(string(b), h, strings.Repeat("f", 64), 1)
	if err := os.WriteFile(segs[1].Path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	refused("an edited record before the active segment", check(marks[n-1], seq, hash), "record of that number is another")
	// Archived: the mark's record is in no segment of dir.
	if err := os.Remove(segs[0].Path); err != nil {
		t.Fatal(err)
	}
	if err := check(marks[0], seq, hash); err != nil {
		t.Errorf("a mark naming an archived record: %v", err)
	}
	// The newest digests removed.
	lines := strings.SplitAfter(readFile(t, digests), "\n")
	if err := os.WriteFile(digests, []byte(strings.Join(lines[:20], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	refused("the newest digests removed", check(marks[29], seq, hash), "the newest digest in audit-digests.log names record 20")
	if err := check(marks[19], seq, hash); err != nil {
		t.Errorf("a mark of the newest digest left: %v", err)
	}
}

func mustDigest(t *testing.T, line []byte) *audit.Digest {
	t.Helper()
	dg, err := audit.ParseDigest(line)
	if err != nil {
		t.Fatal(err)
	}
	return dg
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
