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

// writeSegments appends n records to a data directory's trail with
// segments of at most max bytes, four at a time.
func writeSegments(t *testing.T, dir string, n int, max int64) {
	t.Helper()
	l, err := audit.OpenDir(dir, max)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 4 {
		var wg sync.WaitGroup
		for j := i; j < min(i+4, n); j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := l.Append(rec(fmt.Sprint("Op", j))); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// verifyDir verifies a directory's segments as one log.
func verifyDir(t *testing.T, dir string) (int, []*audit.Problem) {
	t.Helper()
	segs, err := audit.Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := audit.NewLogCheck(nil)
	if _, err := audit.CheckSegments(segs, c); err != nil {
		t.Fatal(err)
	}
	return c.Verified(), append(audit.SegmentGaps(segs), c.Problems()...)
}

func TestSegmentsRollAndChain(t *testing.T) {
	dir := t.TempDir()
	writeSegments(t, dir, 100, 2048)
	segs, err := audit.Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) < 3 || segs[0].Name() != "audit.log" || segs[1].Name() != "audit-000002.log" {
		t.Fatalf("segments %v, want audit.log, audit-000002.log, ...", segs)
	}
	for i, s := range segs {
		b, _ := os.ReadFile(s.Path)
		if len(b) == 0 || b[len(b)-1] != '\n' {
			t.Fatalf("%s does not end with a complete record", s.Name())
		}
		if i < len(segs)-1 && len(b) > 2048 && bytes.Count(b, []byte("\n")) > 1 {
			t.Fatalf("%s holds %d bytes in several batches, over the limit", s.Name(), len(b))
		}
	}
	if n, problems := verifyDir(t, dir); n != 100 || problems != nil {
		t.Fatalf("verify: %d records, %v", n, problems)
	}
	// Reopening continues the chain in the last segment.
	writeSegments(t, dir, 20, 2048)
	if n, problems := verifyDir(t, dir); n != 120 || problems != nil {
		t.Fatalf("after reopen: %d records, %v", n, problems)
	}
}

// A crash right after a roll leaves an empty last segment: the log goes on
// in it, after the last record of the segment before.
func TestSegmentEmptyAfterRoll(t *testing.T) {
	dir := t.TempDir()
	writeSegments(t, dir, 30, 1024)
	segs, _ := audit.Segments(dir)
	last := segs[len(segs)-1]
	empty := filepath.Join(dir, audit.SegmentName(last.N+1))
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	writeSegments(t, dir, 1, 1<<20)
	if b, _ := os.ReadFile(empty); bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("the record went elsewhere than the empty last segment: %q", b)
	}
	if n, problems := verifyDir(t, dir); n != 31 || problems != nil {
		t.Fatalf("verify: %d records, %v", n, problems)
	}
	// A cut-short line (a batch never acknowledged) is dropped.
	f, _ := os.OpenFile(empty, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"hash":"ab`)
	f.Close()
	writeSegments(t, dir, 1, 1<<20)
	if n, problems := verifyDir(t, dir); n != 32 || problems != nil {
		t.Fatalf("verify after a cut line: %d records, %v", n, problems)
	}
}

// Removing, reordering or editing a segment is found, and a log does not
// continue a trail whose last segment does not follow the one before.
func TestSegmentTampering(t *testing.T) {
	setup := func(t *testing.T) (string, []audit.Segment) {
		dir := t.TempDir()
		writeSegments(t, dir, 60, 1024)
		segs, _ := audit.Segments(dir)
		if len(segs) < 4 {
			t.Fatalf("%d segments, want at least 4", len(segs))
		}
		return dir, segs
	}
	t.Run("first removed", func(t *testing.T) {
		dir, segs := setup(t)
		os.Remove(segs[0].Path)
		_, problems := verifyDir(t, dir)
		if len(problems) == 0 || !strings.Contains(problems[0].Reason, "segment 1 (audit.log) is missing") {
			t.Fatalf("problems %v", problems)
		}
	})
	t.Run("middle removed", func(t *testing.T) {
		dir, segs := setup(t)
		os.Remove(segs[2].Path)
		_, problems := verifyDir(t, dir)
		if len(problems) < 2 || !strings.Contains(problems[0].Reason, "segment 3 (audit-000003.log) is missing") {
			t.Fatalf("problems %v", problems)
		}
		if _, err := audit.OpenDir(dir, 1024); err != nil {
			t.Fatalf("a middle segment is not needed to go on: %v", err)
		}
	})
	t.Run("reordered", func(t *testing.T) {
		dir, segs := setup(t)
		a, _ := os.ReadFile(segs[1].Path)
		b, _ := os.ReadFile(segs[2].Path)
		os.WriteFile(segs[1].Path, b, 0o600)
		os.WriteFile(segs[2].Path, a, 0o600)
		_, problems := verifyDir(t, dir)
		if len(problems) == 0 || !strings.Contains(problems[0].Reason, "sequence") {
			t.Fatalf("problems %v", problems)
		}
	})
	t.Run("edited", func(t *testing.T) {
		dir, segs := setup(t)
		b, _ := os.ReadFile(segs[1].Path)
		os.WriteFile(segs[1].Path, bytes.Replace(b, []byte(`"Op`), []byte(`"Xp`), 1), 0o600)
		_, problems := verifyDir(t, dir)
		if len(problems) == 0 || !strings.Contains(problems[0].Reason, "edited") {
			t.Fatalf("problems %v", problems)
		}
	})
	t.Run("last record before the last segment edited", func(t *testing.T) {
		dir, segs := setup(t)
		p := segs[len(segs)-2]
		b, _ := os.ReadFile(p.Path)
		at := bytes.LastIndex(b, []byte(`"Op`))
		b[at+1] = 'X'
		os.WriteFile(p.Path, b, 0o600)
		if _, err := audit.OpenDir(dir, 1024); err == nil || !strings.Contains(err.Error(), p.Name()+": audit log is damaged at its last record") {
			t.Fatalf("open after an edit of the last record of %s: %v", p.Name(), err)
		}
	})
	t.Run("segment before the last cut short", func(t *testing.T) {
		dir, segs := setup(t)
		p := segs[len(segs)-2]
		b, _ := os.ReadFile(p.Path)
		os.WriteFile(p.Path, b[:len(b)-10], 0o600)
		if _, err := audit.OpenDir(dir, 1024); err == nil || !strings.Contains(err.Error(), "last line is incomplete") {
			t.Fatalf("open after %s was cut short: %v", p.Name(), err)
		}
	})
	t.Run("last replaced", func(t *testing.T) {
		dir, segs := setup(t)
		last := segs[len(segs)-1]
		b, _ := os.ReadFile(segs[1].Path)
		os.WriteFile(last.Path, b, 0o600)
		if _, err := audit.OpenDir(dir, 1024); err == nil || !strings.Contains(err.Error(), "does not follow") {
			t.Fatalf("open over a replaced last segment: %v", err)
		}
	})
}

// The last record of the segment before the active one is read from the
// end of its file, however long its line.
func TestSegmentLongLastRecord(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.OpenDir(dir, 1024)
	if err != nil {
		t.Fatal(err)
	}
	long := rec("Long")
	long.RequestParameters = json.RawMessage(`{"policy":"` + strings.Repeat("x", 300<<10) + `"}`)
	for _, r := range []*audit.Record{rec("A"), long} {
		if err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The long record fills segment 2; the next record starts segment 3,
	// and the next open goes on in it after the long record.
	writeSegments(t, dir, 1, 1024)
	writeSegments(t, dir, 1, 1024)
	if n, problems := verifyDir(t, dir); n != 4 || problems != nil {
		t.Fatalf("verify: %d records, %v", n, problems)
	}
	segs, _ := audit.Segments(dir)
	if fi, err := os.Stat(segs[1].Path); err != nil || fi.Size() < 300<<10 {
		t.Fatalf("the long record is not alone in segment 2: %v %v", fi, err)
	}
}

func TestSegmentNames(t *testing.T) {
	for n, want := range map[int]string{1: "audit.log", 2: "audit-000002.log", 999999: "audit-999999.log", 1000000: "audit-1000000.log"} {
		if got := audit.SegmentName(n); got != want {
			t.Errorf("SegmentName(%d) = %q, want %q", n, got, want)
		}
		if got, ok := audit.ParseSegmentName(want); !ok || got != n {
			t.Errorf("ParseSegmentName(%q) = %d, %v", want, got, ok)
		}
	}
	for _, bad := range []string{"audit-000001.log", "audit-2.log", "audit-00002.log", "audit-0000002.log", "audit-+00002.log",
		"audit-digests.log", "audit.pub", "audit-000002.log.tmp", "xaudit.log", ""} {
		if n, ok := audit.ParseSegmentName(bad); ok {
			t.Errorf("ParseSegmentName(%q) = %d, want not a segment", bad, n)
		}
	}
}

// FuzzParseSegmentName: a name is a segment's exactly when SegmentName
// gives it back.
func FuzzParseSegmentName(f *testing.F) {
	for _, s := range []string{"audit.log", "audit-000002.log", "audit-1234567.log", "audit-000001.log", "audit-digests.log"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n, ok := audit.ParseSegmentName(name)
		if ok != (n >= 1 && audit.SegmentName(n) == name) {
			t.Fatalf("ParseSegmentName(%q) = %d, %v", name, n, ok)
		}
	})
}

// SegmentReader follows a trail across a roll.
func TestSegmentReaderFollows(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.OpenDir(dir, 600)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := audit.NewSegmentReader(dir)
	defer r.Close()
	var seqs []uint64
	read := func() {
		t.Helper()
		err := r.Next(func(b []byte) error {
			var ln struct {
				Event audit.Record `json:"event"`
			}
			if err := json.Unmarshal(b, &ln); err != nil {
				return err
			}
			seqs = append(seqs, ln.Event.Sequence)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 12 {
		if err := l.Append(rec(fmt.Sprint("Op", i))); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			read()
		}
	}
	read()
	if segs, _ := audit.Segments(dir); len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("read %v, want 1..12 in order", seqs)
		}
	}
	if len(seqs) != 12 {
		t.Fatalf("read %d records, want 12", len(seqs))
	}
}

// The relaxed mode's background fsync runs beside rolls.
func TestSegmentsRelaxedRoll(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.OpenDir(dir, 700)
	if err != nil {
		t.Fatal(err)
	}
	l.SyncEvery(time.Millisecond)
	for i := range 50 {
		if err := l.Append(rec(fmt.Sprint("Op", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n, problems := verifyDir(t, dir); n != 50 || problems != nil {
		t.Fatalf("verify: %d records, %v", n, problems)
	}
}

// BenchmarkAppendSegments is BenchmarkAppend on a data directory's trail:
// with the default segment size (no roll: the cost of the size check) and
// with 1 MiB segments (a roll, two fsyncs more, every few thousand
// records).
func BenchmarkAppendSegments(b *testing.B) {
	for _, size := range []int64{audit.DefaultSegmentBytes, 1 << 20} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			l, err := audit.OpenDir(b.TempDir(), size)
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
		})
	}
}

// serverRecord is a record the size and shape of a served Encrypt's.
func serverRecord() *audit.Record {
	const key = "arn:aws:kms:us-east-1:111122223333:key/269b50c7-f325-4738-9b3a-b43b2cb55a7a"
	return &audit.Record{EventVersion: "1.11",
		UserIdentity: audit.UserIdentity{Type: "Root", PrincipalID: "111122223333", ARN: "arn:aws:iam::111122223333:root",
			AccountID: "111122223333", AccessKeyID: "AKIAYPGWQG2BNJBXTW5Q"},
		EventTime: "2026-12-04T16:37:27Z", EventSource: "kms.amazonaws.com", EventName: "Encrypt", AWSRegion: "us-east-1",
		SourceIPAddress: "127.0.0.1", UserAgent: "aws-sdk-go-v2/1.36.3 os/linux lang/go#1.26 md/GOOS#linux api/kms#1.38.1",
		RequestParameters: json.RawMessage(`{"keyId":"269b50c7-f325-4738-9b3a-b43b2cb55a7a","encryptionAlgorithm":"SYMMETRIC_DEFAULT"}`),
		ResponseElements:  json.RawMessage("null"), RequestID: "eeb5fc86-e8c9-4627-ade8-f4e4c13af48a",
		EventID: "69a1732a-bfea-4e38-a5e2-d6336888f969", ReadOnly: true,
		Resources: []audit.Resource{{AccountID: "111122223333", Type: "AWS::KMS::Key", ARN: key}},
		EventType: "AwsApiCall", ManagementEvent: true, RecipientAccountID: "111122223333", EventCategory: "Management"}
}

// BenchmarkOpenDir is a server's start on a trail of two full 8 MiB
// segments and a third half full: the time to take up the chain again.
// It scales with the segment size (256 MiB by default).
func BenchmarkOpenDir(b *testing.B) {
	dir := b.TempDir()
	const max = 8 << 20
	l, err := audit.OpenDir(dir, max)
	if err != nil {
		b.Fatal(err)
	}
	l.SyncEvery(time.Hour)
	for full := false; !full; {
		for range 1000 {
			if err := l.Append(serverRecord()); err != nil {
				b.Fatal(err)
			}
		}
		segs, err := audit.Segments(dir)
		if err != nil {
			b.Fatal(err)
		}
		fi, err := os.Stat(segs[len(segs)-1].Path)
		if err != nil {
			b.Fatal(err)
		}
		full = len(segs) == 3 && fi.Size() >= max/2
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		l, err := audit.OpenDir(dir, max)
		if err != nil {
			b.Fatal(err)
		}
		l.Close()
	}
}

// TestMergeSegmentsCopies checks that a segment in two directories (a data
// directory and an archive) is one segment only if the copies are the
// same bytes, whatever their size.
func TestMergeSegmentsCopies(t *testing.T) {
	for _, size := range []int{0, 100, 512 << 10, 600 << 10} {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i * 7)
		}
		for _, c := range []struct {
			name string
			copy []byte
			same bool
		}{
			{"same", body, true},
			{"one byte more", append(bytes.Clone(body), 'x'), false},
			{"last byte changed", func() []byte {
				b := bytes.Clone(body)
				if len(b) > 0 {
					b[len(b)-1]++
				} else {
					b = []byte{1}
				}
				return b
			}(), false},
		} {
			a, b := t.TempDir(), t.TempDir()
			os.WriteFile(filepath.Join(a, audit.FirstSegment), body, 0o600)
			os.WriteFile(filepath.Join(b, audit.FirstSegment), c.copy, 0o600)
			segs, err := audit.MergeSegments(a, b)
			if c.same && (err != nil || len(segs) != 1) {
				t.Fatalf("%d bytes, %s: %v, %v; want one segment", size, c.name, segs, err)
			}
			if !c.same && (err == nil || !strings.Contains(err.Error(), "differ")) {
				t.Fatalf("%d bytes, %s: %v, want an error that the copies differ", size, c.name, err)
			}
		}
	}
}
