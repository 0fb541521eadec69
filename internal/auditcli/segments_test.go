package auditcli_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/auditcli"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// segmentedDir writes n records, a minute apart from start, to a data
// directory's trail in segments of 1 KiB, with a digest after each
// record and audit.pub, and returns the directory.
func segmentedDir(t *testing.T, n int, start time.Time) string {
	t.Helper()
	dir := t.TempDir()
	l, err := audit.OpenDir(dir, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	d, err := audit.OpenDigester(filepath.Join(dir, "audit-digests.log"), priv)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		at := start.Add(time.Duration(i) * time.Minute)
		appendTo(t, l, event(fmt.Sprint("Op", i), audit.FormatTime(at), alice, key1, ""))
		if err := d.Write(l, at); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	d.Close()
	b, _ := audit.MarshalPublicKey(pub)
	if err := os.WriteFile(filepath.Join(dir, "audit.pub"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func verifyOut(t *testing.T, o auditcli.Options) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := auditcli.Verify(context.Background(), o, &out)
	if err != nil && !errors.Is(err, auditcli.ErrBroken) {
		t.Fatal(err)
	}
	return out.String(), err
}

func TestVerifySegments(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	setup := func(t *testing.T) (string, []audit.Segment) {
		dir := segmentedDir(t, 40, start)
		segs, _ := audit.Segments(dir)
		if len(segs) < 4 {
			t.Fatalf("%d segments, want at least 4", len(segs))
		}
		return dir, segs
	}
	t.Run("intact", func(t *testing.T) {
		t.Parallel()
		dir, _ := setup(t)
		if out, err := verifyOut(t, auditcli.Options{DataDir: dir}); err != nil || !strings.HasPrefix(out, "OK: 40 records") {
			t.Fatalf("verify: %v\n%s", err, out)
		}
	})
	for _, c := range []struct {
		name   string
		tamper func(segs []audit.Segment)
		want   string
	}{
		{"first removed", func(segs []audit.Segment) { os.Remove(segs[0].Path) }, "segment 1 (audit.log) is missing"},
		{"middle removed", func(segs []audit.Segment) { os.Remove(segs[1].Path) }, "segment 2 (audit-000002.log) is missing"},
		{"last removed", func(segs []audit.Segment) { os.Remove(segs[len(segs)-1].Path) }, "records were cut off"},
		{"reordered", func(segs []audit.Segment) {
			a, _ := os.ReadFile(segs[1].Path)
			b, _ := os.ReadFile(segs[2].Path)
			os.WriteFile(segs[1].Path, b, 0o600)
			os.WriteFile(segs[2].Path, a, 0o600)
		}, "(audit-000002.log, line 1)"},
		{"edited", func(segs []audit.Segment) {
			b, _ := os.ReadFile(segs[2].Path)
			os.WriteFile(segs[2].Path, bytes.Replace(b, []byte(`"Op`), []byte(`"Xp`), 1), 0o600)
		}, "it was edited) (audit-000003.log, line 1)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir, segs := setup(t)
			c.tamper(segs)
			out, err := verifyOut(t, auditcli.Options{DataDir: dir})
			if err == nil || !strings.Contains(out, c.want) {
				t.Fatalf("verify: %v\n%s\nwant %q", err, out, c.want)
			}
		})
	}
}

// archiveAllButLast moves every segment of dir but the newest to a new
// archive directory, with copies of the trail's public key and digests,
// as docs/audit.md's archiving procedure does. It returns dir's segments
// as they were, and the archive.
func archiveAllButLast(t *testing.T, dir string) ([]audit.Segment, string) {
	t.Helper()
	segs, _ := audit.Segments(dir)
	archive := t.TempDir()
	for _, name := range []string{"audit.pub", "audit-digests.log"} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		os.WriteFile(filepath.Join(archive, name), b, 0o600)
	}
	for _, s := range segs[:len(segs)-1] {
		b, _ := os.ReadFile(s.Path)
		os.WriteFile(filepath.Join(archive, s.Name()), b, 0o600)
		os.Remove(s.Path)
	}
	return segs, archive
}

// Segments moved to an archive are verified there, and with the data
// directory as one trail.
func TestVerifyArchive(t *testing.T) {
	dir := segmentedDir(t, 40, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC))
	_, archive := archiveAllButLast(t, dir)
	if out, err := verifyOut(t, auditcli.Options{DataDir: archive, Archive: true}); err != nil || !strings.HasPrefix(out, "OK:") {
		t.Fatalf("verify the archive: %v\n%s", err, out)
	}
	out, err := verifyOut(t, auditcli.Options{DataDir: dir})
	if err == nil || !strings.Contains(out, "segment 1 (audit.log) is missing") {
		t.Fatalf("verify without the archive: %v\n%s", err, out)
	}
	// The first break is the one to act on: the digests it breaks after
	// it are counted, not each printed.
	if n := strings.Count(out, "also BROKEN"); n != 10 || !regexp.MustCompile(`\.\.\. and \d+ more breaks after these\.\n`).MatchString(out) {
		t.Fatalf("verify without the archive printed %d follow-on breaks, want 10 and a count of the rest:\n%s", n, out)
	}
	if out, err := verifyOut(t, auditcli.Options{DataDir: dir, ArchiveDirs: []string{archive}}); err != nil || !strings.HasPrefix(out, "OK: 40 records") {
		t.Fatalf("verify with the archive: %v\n%s", err, out)
	}
	// Removing the archive's last segment is found with the data directory.
	as, _ := audit.Segments(archive)
	removed := countLines(t, as[len(as)-1].Path)
	os.Remove(as[len(as)-1].Path)
	if out, err := verifyOut(t, auditcli.Options{DataDir: dir, ArchiveDirs: []string{archive}}); err == nil || !strings.Contains(out, "is missing") {
		t.Fatalf("verify with a cut archive: %v\n%s", err, out)
	}
	// Events read the archived segments first.
	var events bytes.Buffer
	if err := auditcli.Events(context.Background(), auditcli.Options{DataDir: dir, ArchiveDirs: []string{archive}, JSON: true}, &events); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(events.String(), "\n"); n != 40-removed {
		t.Fatalf("events with the archive: %d lines", n)
	}
	// An archived segment that ends in part of a line was damaged since
	// it was closed: events stops there instead of leaving out the rest.
	first := as[0]
	b, _ := os.ReadFile(first.Path)
	os.WriteFile(first.Path, b[:len(b)-10], 0o600)
	events.Reset()
	err = auditcli.Events(context.Background(), auditcli.Options{DataDir: dir, ArchiveDirs: []string{archive}, JSON: true}, &events)
	if err == nil || !strings.Contains(err.Error(), "audit.log ends in part of a line") {
		t.Fatalf("events with a damaged archived segment: %v", err)
	}
	if n := strings.Count(events.String(), "\n"); n != countLines(t, first.Path) {
		t.Fatalf("events with a damaged archived segment: %d lines before the error, want the %d complete ones", n, countLines(t, first.Path))
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte("\n"))
}

func TestExport(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	dir := segmentedDir(t, 30, start)
	since, until := start.Add(5*time.Minute).Format(time.RFC3339), start.Add(12*time.Minute).Format(time.RFC3339)
	export := func(format string, o auditcli.Options) (string, error) {
		var out bytes.Buffer
		o.DataDir, o.Since, o.Until = dir, since, until
		err := auditcli.Export(context.Background(), o, auditcli.ExportOptions{Format: format}, &out)
		return out.String(), err
	}
	out, err := export("jsonl", auditcli.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 7 {
		t.Fatalf("jsonl: %d events, want 7 (minutes 5 to 11)", len(lines))
	}
	for i, ln := range lines {
		var r audit.Record
		if err := json.Unmarshal([]byte(ln), &r); err != nil || r.EventName != fmt.Sprint("Op", i+5) {
			t.Fatalf("jsonl line %d: %v %q", i, err, ln)
		}
	}
	path := filepath.Join(t.TempDir(), "ct.json")
	if _, err := export("cloudtrail", auditcli.Options{Output: path}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var file struct {
		Records []map[string]any
	}
	if err := json.Unmarshal(b, &file); err != nil || len(file.Records) != 7 {
		t.Fatalf("cloudtrail: %v, %d records\n%s", err, len(file.Records), b)
	}
	r := file.Records[0]
	for k, want := range map[string]any{"eventVersion": "1.08", "eventName": "Op5", "eventSource": "kms.amazonaws.com",
		"eventType": "AwsApiCall", "managementEvent": true, "eventCategory": "Management", "eventTime": "2026-01-02T03:05:00Z"} {
		if r[k] != want {
			t.Errorf("%s = %v, want %v", k, r[k], want)
		}
	}
	if res := r["resources"].([]any)[0].(map[string]any); res["ARN"] != key1 || res["type"] != "AWS::KMS::Key" {
		t.Errorf("resources %v", r["resources"])
	}
	if _, ok := r["sequence"]; ok {
		t.Errorf("the chain's fields are CloudTrail fields: %v", r)
	}
	// A broken trail is not exported, unless asked.
	segs, _ := audit.Segments(dir)
	os.Remove(segs[1].Path)
	if _, err := export("jsonl", auditcli.Options{}); !errors.Is(err, auditcli.ErrExportBroken) {
		t.Fatalf("export of a broken trail: %v", err)
	}
	var out2 bytes.Buffer
	err = auditcli.Export(context.Background(), auditcli.Options{DataDir: dir, Since: since, Until: until}, auditcli.ExportOptions{NoVerify: true}, &out2)
	if err != nil {
		t.Fatalf("--no-verify: %v", err)
	}
}

// A running server writes its newest lines as verify reads them: a last
// line seen in part is noted, not a break, while the server holds its key
// store; once it is stopped, the same cut line is a break.
func TestVerifyLineBeingWritten(t *testing.T) {
	t.Parallel()
	dir := segmentedDir(t, 40, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC))
	segs, _ := audit.Segments(dir)
	last := segs[len(segs)-1]
	b, _ := os.ReadFile(last.Path)
	// The last record was written whole, then seen in part: its digest
	// names it, so only the newest line is cut here, after a new one.
	extra := bytes.SplitAfter(b, []byte("\n"))[0]
	os.WriteFile(last.Path, append(b, extra[:len(extra)/2]...), 0o600)
	st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := verifyOut(t, auditcli.Options{DataDir: dir, Live: true})
	if err != nil || !strings.HasPrefix(out, "OK: 40 records") || !strings.Contains(out, "the running server is writing it") {
		t.Fatalf("verify --live while the server runs: %v\n%s", err, out)
	}
	// Without --live, a locked key store is no proof of a server.
	if out, err := verifyOut(t, auditcli.Options{DataDir: dir}); err == nil || !strings.Contains(out, "the last line is incomplete") ||
		!strings.Contains(out, "the high-water mark in kms.db could not be checked") {
		t.Fatalf("verify without --live while the server runs: %v\n%s", err, out)
	}
	st.Close()
	if out, err := verifyOut(t, auditcli.Options{DataDir: dir}); err == nil || !strings.Contains(out, "the last line is incomplete") {
		t.Fatalf("verify of a stopped server's cut line: %v\n%s", err, out)
	}
}

// stoppedDir writes n records to a data directory as a stopped server
// leaves it, each signed, the newest digest kept as the high-water mark in
// kms.db and audit-head.json, and returns it with the digest lines, the
// i-th naming record i+1.
func stoppedDir(t *testing.T, n int) (string, [][]byte) {
	t.Helper()
	return stoppedDirSegments(t, n, 1<<20)
}

// stoppedDirSegments is stoppedDir with segments of segmentBytes.
func stoppedDirSegments(t *testing.T, n int, segmentBytes int64) (string, [][]byte) {
	t.Helper()
	dir := t.TempDir()
	l, err := audit.OpenDir(dir, segmentBytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	d, err := audit.OpenDigester(filepath.Join(dir, "audit-digests.log"), priv)
	if err != nil {
		t.Fatal(err)
	}
	var digests [][]byte
	d.OnDigest(func(line []byte) error {
		digests = append(digests, bytes.Clone(line))
		return nil
	})
	start := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	for i := range n {
		at := start.Add(time.Duration(i) * time.Minute)
		appendTo(t, l, event(fmt.Sprint("Op", i), audit.FormatTime(at), alice, key1, ""))
		if err := d.Write(l, at); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	d.Close()
	b, _ := audit.MarshalPublicKey(pub)
	mark := digests[len(digests)-1]
	st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(tx store.Tx) error { return tx.Put([]byte(audit.MarkRecord), mark) })
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"audit.pub": b, audit.MarkFile: append(bytes.Clone(mark), '\n')} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, digests
}

// A stopped server's trail cut back to an older digest, with its digests
// file and audit-head.json to match, is found by the mark in kms.db; a
// lock taken on kms.db by any process must not switch that check off:
// without --live, a locked kms.db fails verification.
func TestVerifyLockedStoreIsNotAServer(t *testing.T) {
	t.Parallel()
	dir, digests := stoppedDir(t, 40)
	if out, err := verifyOut(t, auditcli.Options{DataDir: dir}); err != nil || !strings.HasPrefix(out, "OK: 40 records") || strings.Contains(out, "note:") {
		t.Fatalf("verify of the intact trail: %v\n%s", err, out)
	}
	// Cut back to record 25 and its digest.
	const keep = 25
	log := filepath.Join(dir, audit.FirstSegment)
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	cut := map[string][]byte{
		audit.FirstSegment:  bytes.Join(lines[:keep], nil),
		"audit-digests.log": append(bytes.Join(digests[:keep], []byte("\n")), '\n'),
		audit.MarkFile:      append(bytes.Clone(digests[keep-1]), '\n'),
	}
	for name, content := range cut {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	want := "the high-water mark in kms.db names record 40, but the log ends at record 25 (records were cut off)"
	if out, err := verifyOut(t, auditcli.Options{DataDir: dir}); err == nil || !strings.Contains(out, want) {
		t.Fatalf("verify of the cut trail: %v\n%s\nwant %q", err, out, want)
	}
	// --live does not switch the check off while the store can be read.
	if out, err := verifyOut(t, auditcli.Options{DataDir: dir, Live: true}); err == nil || !strings.Contains(out, want) {
		t.Fatalf("verify --live of the cut trail, kms.db not locked: %v\n%s\nwant %q", err, out, want)
	}

	f, err := os.Open(filepath.Join(dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	out, err := verifyOut(t, auditcli.Options{DataDir: dir})
	if !errors.Is(err, auditcli.ErrBroken) || !strings.HasPrefix(out, "BROKEN: the high-water mark in kms.db could not be checked: kms.db is locked") ||
		!strings.Contains(out, "--live") || strings.Contains(out, "note:") {
		t.Fatalf("verify of the cut trail, kms.db locked: %v\n%s", err, out)
	}
	// Told that a server runs, verify leaves the mark to it, and says so.
	out, err = verifyOut(t, auditcli.Options{DataDir: dir, Live: true})
	if err != nil || !strings.Contains(out, "note: the high-water mark in kms.db was not checked") {
		t.Fatalf("verify --live, kms.db locked: %v\n%s", err, out)
	}
	if err := auditcli.Export(context.Background(), auditcli.Options{DataDir: dir}, auditcli.ExportOptions{}, io.Discard); !errors.Is(err, auditcli.ErrExportBroken) {
		t.Errorf("export, kms.db locked: %v, want %v", err, auditcli.ErrExportBroken)
	}
	if err := auditcli.Verify(context.Background(), auditcli.Options{Storage: "postgres://h/db", Live: true}, io.Discard); err == nil || !strings.Contains(err.Error(), "--live goes with --data-dir") {
		t.Errorf("--live with --storage: %v", err)
	}
}

// Neither export's -o nor events' --output writes into the trail it
// reads: named after a segment, the export took the segment's place and
// events appended events (not records) to it, either way breaking the
// chain. Such an output is refused, in the data directory or in an
// archive directory, and the trail still verifies.
func TestOutputIntoTheTrailRefused(t *testing.T) {
	dir := segmentedDir(t, 20, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC))
	segs, archive := archiveAllButLast(t, dir)
	last := segs[len(segs)-1].Name()
	o := auditcli.Options{DataDir: dir, ArchiveDirs: []string{archive}}
	for _, out := range []string{filepath.Join(dir, last), filepath.Join(archive, "audit.log"), filepath.Join(dir, "export.jsonl")} {
		o.Output = out
		if err := auditcli.Export(context.Background(), o, auditcli.ExportOptions{}, io.Discard); err == nil || !strings.Contains(err.Error(), "write it elsewhere") {
			t.Errorf("export -o %s: %v", out, err)
		}
		if err := auditcli.Events(context.Background(), o, io.Discard); err == nil || !strings.Contains(err.Error(), "write it elsewhere") {
			t.Errorf("events --output %s: %v", out, err)
		}
		o.Output = ""
		if out, err := verifyOut(t, o); err != nil {
			t.Fatalf("verify after the refused outputs: %v\n%s", err, out)
		}
	}
	o.Output = filepath.Join(t.TempDir(), "audit.log")
	if err := auditcli.Export(context.Background(), o, auditcli.ExportOptions{}, io.Discard); err != nil {
		t.Fatalf("export elsewhere: %v", err)
	}
	if n := countLines(t, o.Output); n != 20 {
		t.Fatalf("export elsewhere wrote %d lines", n)
	}
}

// events --output appends through a link: a symbolic or hard link kept
// elsewhere to a segment of the trail had the events appended to that
// segment, breaking its chain. Such an output is refused and the trail
// still verifies; an export, renamed into place, replaces the link and
// leaves the segment as it was.
func TestEventsOutputThroughALinkRefused(t *testing.T) {
	dir := segmentedDir(t, 5, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC))
	segs, _ := audit.Segments(dir)
	first := segs[0].Path
	elsewhere := t.TempDir()
	symlink, hardlink := filepath.Join(elsewhere, "events.jsonl"), filepath.Join(elsewhere, "hard.jsonl")
	if err := os.Symlink(first, symlink); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(first, hardlink); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(first)
	for _, out := range []string{symlink, hardlink} {
		o := auditcli.Options{DataDir: dir, Output: out}
		if err := auditcli.Events(context.Background(), o, io.Discard); err == nil || !strings.Contains(err.Error(), "write it elsewhere") {
			t.Errorf("events --output %s, a link to %s: %v", out, first, err)
		}
		if err := auditcli.Export(context.Background(), o, auditcli.ExportOptions{}, io.Discard); err != nil {
			t.Errorf("export -o %s, a link to %s: %v", out, first, err)
		}
	}
	if now, _ := os.ReadFile(first); !bytes.Equal(now, before) {
		t.Errorf("%s changed through a link", first)
	}
	if out, err := verifyOut(t, auditcli.Options{DataDir: dir}); err != nil {
		t.Fatalf("verify after outputs through links: %v\n%s", err, out)
	}
}

// A time range that holds no time (--since not before --until: the two
// swapped) is refused, rather than exported as an empty file that reads
// as "nothing happened then".
func TestExportRefusesAnEmptyRange(t *testing.T) {
	dir := segmentedDir(t, 3, time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC))
	out := filepath.Join(t.TempDir(), "day.jsonl")
	for _, r := range [][2]string{{"2026-01-03T00:00:00Z", "2026-01-02T00:00:00Z"}, {"2026-01-02T03:04:00Z", "2026-01-02T03:04:00Z"}, {"2026-01-02T05:00:00+02:00", "2026-01-02T03:00:00Z"}} {
		o := auditcli.Options{DataDir: dir, Since: r[0], Until: r[1], Output: out}
		if err := auditcli.Export(context.Background(), o, auditcli.ExportOptions{}, io.Discard); err == nil || !strings.Contains(err.Error(), "is not before --until") {
			t.Errorf("export --since %s --until %s: %v", r[0], r[1], err)
		}
		o.Output = ""
		if err := auditcli.Events(context.Background(), o, io.Discard); err == nil || !strings.Contains(err.Error(), "is not before --until") {
			t.Errorf("events --since %s --until %s: %v", r[0], r[1], err)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused export wrote %s: %v", out, err)
	}
	o := auditcli.Options{DataDir: dir, Since: "2026-01-02T05:03:00+02:00", Until: "2026-01-02T03:07:00Z", Output: out}
	if err := auditcli.Export(context.Background(), o, auditcli.ExportOptions{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := countLines(t, out); n != 3 {
		t.Errorf("export of the range holding the 3 records wrote %d", n)
	}
}

// A break found by a high-water mark is reported as the mark's, not "at
// digest N" with N the record the mark names: a digest's number is its
// line in audit-digests.log, and the mark is a line of neither file.
func TestVerifyMarkBreakNamesNoDigestLine(t *testing.T) {
	dir, _ := stoppedDir(t, 12)
	// Remove record 8, and the oldest five digests, so that digest lines
	// and record numbers differ: the digests left are lines 1 to 7,
	// naming records 6 to 12. Cut off record 12, which the marks name.
	cut := func(name string, drop func(i int) bool) {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var kept []byte
		for i, line := range bytes.SplitAfter(b, []byte("\n")) {
			if !drop(i) {
				kept = append(kept, line...)
			}
		}
		if err := os.WriteFile(path, kept, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cut(audit.FirstSegment, func(i int) bool { return i == 7 || i == 11 })
	cut("audit-digests.log", func(i int) bool { return i < 5 })
	out, err := verifyOut(t, auditcli.Options{DataDir: dir})
	if err == nil || !strings.HasPrefix(out, "BROKEN at record 8 (line 8): sequence 9 where 8 was expected") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	for _, want := range []string{
		"also BROKEN at digest 3: digest 3 names record 8, which the log does not hold (it was removed)\n",
		"also BROKEN at digest 7: digest 7 names record 12, but the log ends at record 11 (records were cut off)\n",
		"also BROKEN: the high-water mark in kms.db names record 12, but the log ends at record 11 (records were cut off)\n",
		"also BROKEN: the high-water mark in audit-head.json names record 12, but the log ends at record 11 (records were cut off)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify printed\n%s\nwant a line %q", out, want)
		}
	}
	if strings.Contains(out, "at digest 12") {
		t.Errorf("verify names digest 12 of a file of 7:\n%s", out)
	}
}
