package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func relaxedRecord(name string) *Record {
	return &Record{EventVersion: "1.11", EventTime: FormatTime(time.Unix(0, 0)), EventSource: "kms.amazonaws.com", EventName: name,
		RequestID: name, EventID: name, EventType: "AwsApiCall", UserIdentity: UserIdentity{Type: "Root"}}
}

// In the relaxed mode an acknowledged record is in the file at once (so a
// crash of the process loses nothing), before any fsync.
func TestSyncEveryAcknowledgesWrittenRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.SyncEvery(time.Hour) // the loop does not tick during the test
	for _, n := range []string{"a", "b", "c"} {
		if err := l.Append(relaxedRecord(n)); err != nil {
			t.Fatal(err)
		}
	}
	if !l.dirty.Load() {
		t.Fatal("records written but not marked for the next fsync")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n, problem, err := Verify(bytes.NewReader(b)); err != nil || problem != nil || n != 3 {
		t.Fatalf("before any fsync the file holds %d records (%v, %v), want 3", n, problem, err)
	}
	l.syncDirty()
	if l.dirty.Load() {
		t.Fatal("still dirty after an fsync")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// A background fsync that fails makes every later Append fail: no call is
// acknowledged once the trail may have lost records.
func TestSyncEveryFailureRefusesLaterAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.SyncEvery(time.Hour)
	if err := l.Append(relaxedRecord("a")); err != nil {
		t.Fatal(err)
	}
	l.sink.(*fileSink).f.Close() // the disk goes away under the log
	l.syncDirty()
	if l.Err() == nil {
		t.Fatal("Err is nil after a failed fsync")
	}
	if err := l.Append(relaxedRecord("b")); err == nil {
		t.Fatal("Append succeeded after a failed fsync")
	}
	if err := l.Close(); err == nil {
		t.Fatal("Close hides the failed fsync")
	}
}

// The mode is for log files only: a PostgreSQL log is left as it is.
func TestSyncEveryIgnoresOtherSinks(t *testing.T) {
	l := newLog(nopSink{}, "chain", 0, genesis)
	l.SyncEvery(time.Millisecond)
	if l.every != 0 || l.stopSync != nil {
		t.Fatal("SyncEvery changed a log that is not a file")
	}
}

type nopSink struct{}

func (nopSink) write([]byte, []int, uint64) error             { return nil }
func (nopSink) sync() error                                   { return nil }
func (nopSink) resume(uint64, string) (uint64, string, error) { return 0, genesis, nil }
func (nopSink) probe(uint64) error                            { return nil }
func (nopSink) close() error                                  { return nil }

// In the relaxed mode a digest signs only records already fsynced, so that
// a machine crash never takes a record a digest (or the high-water mark,
// its copy) names; and a digest is refused once the fsync failed.
func TestSyncEveryDigestSignsDurableRecords(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	l.SyncEvery(time.Hour)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	d, err := OpenDigester(filepath.Join(dir, "digests.log"), key)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := l.Append(relaxedRecord("a")); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(l, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	if l.dirty.Load() {
		t.Fatal("a digest signed a record not yet fsynced")
	}
	if err := l.Append(relaxedRecord("b")); err != nil {
		t.Fatal(err)
	}
	l.sink.(*fileSink).f.Close() // the disk goes away under the log
	if err := d.Write(l, time.Unix(1, 0)); err == nil {
		t.Fatal("a digest signed a record its fsync failed to keep")
	}
	if d.last != 1 {
		t.Fatalf("the newest digest names record %d, want 1", d.last)
	}
}
