package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/audit"
)

func TestDigestsAnchorTheChain(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := audit.OpenDigester(filepath.Join(dir, "digests.log"), priv)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		for range 4 {
			if err := l.Append(rec("Encrypt")); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Write(l, now.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := d.Write(l, now); err != nil { // nothing new: no digest
			t.Fatal(err)
		}
	}
	l.Close()
	d.Close()
	logBytes, _ := os.ReadFile(filepath.Join(dir, "audit.log"))
	digBytes, _ := os.ReadFile(filepath.Join(dir, "digests.log"))
	check := func(logB, digB []byte, pk ed25519.PublicKey) (int, *audit.Problem) {
		t.Helper()
		hashes, n := lineHashes(t, logB)
		c, p, err := audit.VerifyDigests(bytes.NewReader(digB), pk, hashes, n)
		if err != nil {
			t.Fatal(err)
		}
		return c, p
	}
	if c, p := check(logBytes, digBytes, pub); c != 3 || p != nil {
		t.Fatalf("intact trail: %d digests, %+v", c, p)
	}
	// The newest records cut off: the chain alone still verifies, the
	// last digest does not.
	lines := strings.SplitAfter(string(logBytes), "\n")
	cut := []byte(strings.Join(lines[:10], ""))
	if n, p, _ := audit.Verify(bytes.NewReader(cut)); p != nil || n != 10 {
		t.Fatalf("the cut chain: %d, %+v", n, p)
	}
	if _, p := check(cut, digBytes, pub); p == nil || !strings.Contains(p.Reason, "cut off") {
		t.Fatalf("cut-off records not detected: %+v", p)
	}
	// A forged digest, or another key's, does not verify.
	forged := bytes.Replace(digBytes, []byte(`"sequence":12`), []byte(`"sequence":11`), 1)
	if _, p := check(logBytes, forged, pub); p == nil {
		t.Fatal("a forged digest verified")
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, p := check(logBytes, digBytes, other); p == nil {
		t.Fatal("digests verified under another key")
	}
}

// The high-water mark is the newest digest as the digester wrote it: it
// catches the newest records cut off with the newest digests, a forged
// mark, and digests removed behind it.
func TestMarkCatchesACutEnd(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := audit.OpenDigester(filepath.Join(dir, "digests.log"), priv)
	if err != nil {
		t.Fatal(err)
	}
	var mark []byte
	d.OnDigest(func(line []byte) error { mark = append([]byte(nil), line...); return nil })
	for range 3 {
		for range 4 {
			if err := l.Append(rec("Encrypt")); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Write(l, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	d.Close()
	if dg, err := audit.ParseDigest(mark); err != nil || dg.Sequence != 12 {
		t.Fatalf("mark %s, want the digest of record 12", mark)
	}
	logBytes, _ := os.ReadFile(filepath.Join(dir, "audit.log"))
	lines := strings.SplitAfter(string(logBytes), "\n")
	hashesOf := func(n int) *audit.Named {
		h, _ := lineHashes(t, []byte(strings.Join(lines[:n], "")))
		return h
	}
	if p := audit.CheckMark(mark, pub, hashesOf(12), 12, 12, "m"); p != nil {
		t.Fatalf("intact trail: %+v", p)
	}
	// Records 9-12 and the digest of record 12 removed: the digests alone
	// would verify (the newest names record 8); the mark does not.
	if p := audit.CheckMark(mark, pub, hashesOf(8), 8, 8, "m"); p == nil || !strings.Contains(p.Reason, "cut off") {
		t.Fatalf("records and digests cut off: %+v", p)
	}
	if p := audit.CheckMark(mark, pub, hashesOf(12), 12, 8, "m"); p == nil || !strings.Contains(p.Reason, "digests were removed") {
		t.Fatalf("digests removed: %+v", p)
	}
	forged := bytes.Replace(mark, []byte(`"sequence":12`), []byte(`"sequence":8`), 1)
	if p := audit.CheckMark(forged, pub, hashesOf(8), 8, 8, "m"); p == nil || !strings.Contains(p.Reason, "signature") {
		t.Fatalf("forged mark: %+v", p)
	}
}

// TestDigestFileCutShort is a machine crash in the middle of writing a
// digest: the cut digest was never acknowledged, and the digests written
// after it must verify and let the server start again.
func TestDigestFileCutShort(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	path := filepath.Join(dir, "digests.log")
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	write := func(n int) {
		t.Helper()
		d, err := audit.OpenDigester(path, priv)
		if err != nil {
			t.Fatalf("open the digests: %v", err)
		}
		for range n {
			if err := l.Append(rec("Encrypt")); err != nil {
				t.Fatal(err)
			}
			if err := d.Write(l, now); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write(2)
	b, _ := os.ReadFile(path)
	whole := bytes.Count(b, []byte("\n"))
	// Half of a third digest reached the disk.
	third := bytes.SplitAfter(b, []byte("\n"))[1]
	if err := os.WriteFile(path, append(b, third[:len(third)/2]...), 0o600); err != nil {
		t.Fatal(err)
	}
	write(2)
	write(1)
	b, _ = os.ReadFile(path)
	if n := bytes.Count(b, []byte("\n")); n != whole+3 || b[len(b)-1] != '\n' {
		t.Fatalf("%d digest lines, want %d, and a complete last one:\n%s", n, whole+3, b)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "audit.log"))
	hashes, records := lineHashes(t, log)
	if c, p, err := audit.VerifyDigests(bytes.NewReader(b), pub, hashes, records); c != whole+3 || p != nil || err != nil {
		t.Fatalf("the digests: %d, %+v, %v", c, p, err)
	}
}

// TestOpenDigesterGoesOnFromTheLast checks that opening reads the last
// digest only: a damaged one before it is left to kms audit verify, and a
// damaged last one stops the opening.
func TestOpenDigesterGoesOnFromTheLast(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	path := filepath.Join(dir, "digests.log")
	d, err := audit.OpenDigester(path, priv)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		l.Append(rec("Encrypt"))
		if err := d.Write(l, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	b, _ := os.ReadFile(path)
	b[0] = '!'
	os.WriteFile(path, b, 0o600)
	if d, err = audit.OpenDigester(path, priv); err != nil {
		t.Fatalf("a damaged first digest: %v", err)
	}
	// Nothing was logged since the last digest: no new one.
	if err := d.Write(l, time.Now()); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
		t.Fatalf("a digest of record 3 written again:\n%s", after)
	}
	b[len(b)-2] = '!'
	os.WriteFile(path, b, 0o600)
	if _, err := audit.OpenDigester(path, priv); err == nil || !strings.Contains(err.Error(), "last digest is damaged") {
		t.Fatalf("a damaged last digest: %v", err)
	}
}

// TestVerifyDigestsInBatches checks more digests than one batch holds,
// checked on every core: each is judged at its own line, in order.
func TestVerifyDigestsInBatches(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	l.SyncEvery(time.Hour) // the digests are what is tested
	d, err := audit.OpenDigester(filepath.Join(dir, "digests.log"), priv)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2600
	for i := range n {
		if err := l.Append(rec("Encrypt")); err != nil {
			t.Fatal(err)
		}
		if err := d.Write(l, time.Date(2026, 11, 26, 12, 0, i, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	d.Close()
	logBytes, _ := os.ReadFile(filepath.Join(dir, "audit.log"))
	digests := strings.SplitAfter(string(must(os.ReadFile(filepath.Join(dir, "digests.log")))), "\n")
	hashes, records := lineHashes(t, logBytes)
	count, good, problems, err := audit.VerifyDigestsAll(strings.NewReader(strings.Join(digests, "")), pub, hashes, records)
	if err != nil || count != n || good != n || len(problems) != 0 {
		t.Fatalf("intact: %d digests, %d good, %v, %v", count, good, problems, err)
	}
	// A record replaced in the first batch, a signature broken in the
	// second, a line that is not JSON in the third.
	lines := strings.SplitAfter(string(logBytes), "\n")
	lines[100] = lines[101]
	hashes, _ = lineHashes(t, []byte(strings.Join(lines, "")))
	digests[1499] = strings.Replace(digests[1499], `"signature":"`, `"signature":"AAAA`, 1)
	digests[2099] = "{\n"
	count, good, problems, err = audit.VerifyDigestsAll(strings.NewReader(strings.Join(digests, "")), pub, hashes, records)
	if err != nil || count != n || good != n-3 || len(problems) != 3 {
		t.Fatalf("damaged: %d digests, %d good, %d problems, %v", count, good, len(problems), err)
	}
	for i, want := range []string{"digest 101 names record 101, which the log does not hold", "digest 1500 has a signature", "digest 2100 is not JSON"} {
		if !strings.Contains(problems[i].Reason, want) || problems[i].Line != []int{101, 1500, 2100}[i] {
			t.Errorf("problem %d: line %d %q, want %q", i, problems[i].Line, problems[i].Reason, want)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A record's digest matches it wherever it stands, after copies of its
// number with other hashes too, as long as their claims are kept; past
// that, the digest's problem says the record may be among those left out.
func TestDigestOfARecordCrowdedByForgeries(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	l := must(audit.Open(filepath.Join(dir, "audit.log")))
	d := must(audit.OpenDigester(filepath.Join(dir, "digests.log"), priv))
	for i := range 10 {
		if err := l.Append(rec("Encrypt")); err != nil {
			t.Fatal(err)
		}
		if err := d.Write(l, time.Date(2026, 11, 26, 12, 0, i, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	d.Close()
	lines := strings.SplitAfter(string(must(os.ReadFile(filepath.Join(dir, "audit.log")))), "\n")
	digests := string(must(os.ReadFile(filepath.Join(dir, "digests.log"))))
	for _, tc := range []struct {
		forged int
		want   string // the problem of digest 6
	}{{2, ""}, {8, ""}, {9, "digest 6 does not match record 6 as far as it was looked for: more than 9 records carry that number"}} {
		var forged []string
		for i := range tc.forged {
			forged = append(forged, fmt.Sprintf(`{"hash":"%064x","event":{"sequence":6}}`+"\n", i))
		}
		log := strings.Join(slices.Insert(slices.Clone(lines), 5, forged...), "")
		hashes, end := lineHashes(t, []byte(log))
		_, good, problems, err := audit.VerifyDigestsAll(strings.NewReader(digests), pub, hashes, end)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case tc.want == "" && (good != 10 || len(problems) != 0):
			t.Errorf("%d forged: %d digests match, %v; want all 10", tc.forged, good, problems)
		case tc.want != "" && (good != 9 || len(problems) != 1 || !strings.Contains(problems[0].Reason, tc.want)):
			t.Errorf("%d forged: %d digests match, %v; want 9 and %q", tc.forged, good, problems, tc.want)
		}
	}
}

// A digest file edited to hold many lines that are not digests is not
// held in memory as problems: the first 1,000 are kept, and the count of
// the digests that do not verify says how many there are.
func TestVerifyDigestsKeepsTheFirstProblems(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	_, good, problems, err := audit.VerifyDigestsAll(strings.NewReader(strings.Repeat("{}\n", 1500)), pub, nil, 0)
	if err != nil || good != 0 || len(problems) != 1000 || problems[999].Line != 1000 {
		t.Fatalf("%d good, %d problems, %v", good, len(problems), err)
	}
}
