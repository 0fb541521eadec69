package audit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openkms/kms/internal/audit"
)

func rec(name string) *audit.Record {
	return &audit.Record{EventVersion: "1.11", EventName: name, EventSource: "kms.amazonaws.com", EventType: "AwsApiCall",
		RequestParameters: json.RawMessage(`{"keyId":"k"}`), ResponseElements: json.RawMessage("null")}
}

func writeLog(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Append(rec(fmt.Sprint("Op", i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func verify(t *testing.T, b []byte) (int, *audit.Problem) {
	t.Helper()
	n, p, err := audit.Verify(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return n, p
}

func TestConcurrentAppendsChain(t *testing.T) {
	path := writeLog(t, 200)
	b, _ := os.ReadFile(path)
	if n, p := verify(t, b); n != 200 || p != nil {
		t.Fatalf("verify: %d records, problem %+v", n, p)
	}
	// Reopening continues the chain.
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r := rec("After")
	if err := l.Append(r); err != nil || r.Sequence != 201 {
		t.Fatalf("append after reopen: seq %d, %v", r.Sequence, err)
	}
	l.Close()
	b, _ = os.ReadFile(path)
	if n, p := verify(t, b); n != 201 || p != nil {
		t.Fatalf("after reopen: %d, %+v", n, p)
	}
}

// Editing, removing, reordering or duplicating any one record is found.
func TestTamperingIsDetected(t *testing.T) {
	path := writeLog(t, 6)
	orig, _ := os.ReadFile(path)
	lines := strings.SplitAfter(strings.TrimSuffix(string(orig), "\n"), "\n")
	for i := range lines {
		if !strings.HasSuffix(lines[i], "\n") {
			lines[i] += "\n"
		}
	}
	join := func(ls []string) []byte { return []byte(strings.Join(ls, "")) }
	for i := range lines {
		edited := append([]string(nil), lines...)
		edited[i] = strings.Replace(edited[i], `"eventName":"Op`, `"eventName":"Xp`, 1)
		if _, p := verify(t, join(edited)); p == nil || p.Line != i+1 {
			t.Errorf("edit of record %d: %+v", i+1, p)
		}
		removed := append(append([]string(nil), lines[:i]...), lines[i+1:]...)
		if i < len(lines)-1 {
			if _, p := verify(t, join(removed)); p == nil {
				t.Errorf("removal of record %d not detected", i+1)
			}
		}
		if i+1 < len(lines) {
			swapped := append([]string(nil), lines...)
			swapped[i], swapped[i+1] = swapped[i+1], swapped[i]
			if _, p := verify(t, join(swapped)); p == nil {
				t.Errorf("swap of records %d and %d not detected", i+1, i+2)
			}
		}
		dup := append(append(append([]string(nil), lines[:i+1]...), lines[i]), lines[i+1:]...)
		if _, p := verify(t, join(dup)); p == nil {
			t.Errorf("duplicate of record %d not detected", i+1)
		}
	}
	// A flipped byte anywhere breaks the chain or the line.
	for i := range len(orig) - 1 {
		bad := bytes.Clone(orig)
		bad[i] ^= 0x01
		if n, p := verify(t, bad); p == nil && n == 6 {
			t.Fatalf("flipped byte %d (%q) not detected", i, orig[i])
		}
	}
}

// A crash in the middle of a write leaves a partial last line: that record
// was never acknowledged, and Open drops it.
func TestPartialLastLineIsDropped(t *testing.T) {
	path := writeLog(t, 3)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append(b, []byte(`{"hash":"ab","event":{"seq`)...), 0o600)
	l, err := audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r := rec("Next")
	if err := l.Append(r); err != nil || r.Sequence != 4 {
		t.Fatalf("seq %d, %v", r.Sequence, err)
	}
	l.Close()
	b, _ = os.ReadFile(path)
	if n, p := verify(t, b); n != 4 || p != nil {
		t.Fatalf("%d, %+v", n, p)
	}
}

func TestOpenRefusesADamagedLog(t *testing.T) {
	path := writeLog(t, 3)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte("Op"), []byte("Xp"), 1), 0o600)
	if l, err := audit.Open(path); err == nil {
		l.Close()
		t.Fatal("a damaged log opened")
	}
}

func TestAppendAfterClose(t *testing.T) {
	l, err := audit.Open(filepath.Join(t.TempDir(), "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if err := l.Append(rec("x")); err != audit.ErrClosed {
		t.Fatalf("got %v", err)
	}
}

func BenchmarkAppend(b *testing.B) {
	l, err := audit.Open(filepath.Join(b.TempDir(), "a.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Append(rec("Encrypt")); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// One break must not hide the others: VerifyAll takes up the chain again
// after each and reports every edited record.
func TestVerifyAllReportsEveryBreak(t *testing.T) {
	path := writeLog(t, 8)
	orig, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(orig), "\n")
	for _, i := range []int{1, 5} {
		lines[i] = strings.Replace(lines[i], `"eventName":"Op`, `"eventName":"Xp`, 1)
	}
	n, problems, err := audit.VerifyAll(strings.NewReader(strings.Join(lines, "")))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || len(problems) != 2 || problems[0].Line != 2 || problems[1].Line != 6 {
		t.Fatalf("VerifyAll: %d records before the first break, problems %+v; want 1 and breaks at records 2 and 6", n, problems)
	}
	if _, p := verify(t, []byte(strings.Join(lines, ""))); p == nil || p.Line != 2 {
		t.Fatalf("Verify: %+v, want the first break at record 2", p)
	}
}

// ChainCheck, the check of a database's chains and of --endpoint, also
// reports every break.
func TestChainCheckReportsEveryBreak(t *testing.T) {
	path := writeLog(t, 8)
	orig, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(orig), "\n"), "\n")
	lines[2] = strings.Replace(lines[2], `"eventName":"Op`, `"eventName":"Xp`, 1)
	c := audit.NewChainCheck("c", nil, nil, nil, time.Now())
	for i, ln := range lines {
		if i == 5 { // a row removed
			continue
		}
		if !c.Record(int64(i+1), []byte(ln)) {
			t.Fatalf("check stopped at record %d", i+1)
		}
	}
	r := c.Report()
	ps := r.Problems()
	// And the chain, whose records have no time, has no digest.
	if len(ps) != 3 || ps[0].Line != 3 || ps[1].Line != 6 || r.Records != 2 || !strings.Contains(ps[2].Reason, "no signed digest covers the chain") {
		t.Fatalf("report %+v, problems %+v; want breaks at records 3 and 6 after 2 good records, and no digest", r, ps)
	}
}
