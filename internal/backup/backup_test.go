package backup

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// A log a server is appending to is copied up to its last newline, read
// back from the end however long its last line; other files whole. A
// segment is copied only up to the zeros the server writes ahead of its
// records, whether or not its server runs, even where a record the
// server is writing shows past them.
func TestStreamAuditFilesLive(t *testing.T) {
	long := strings.Repeat("x", 200<<10)
	zeros := strings.Repeat("\x00", 3<<20)
	for _, c := range []struct{ log, want, stopped string }{
		{"", "", ""},
		{"cut", "", "cut"},
		{"r1\n", "r1\n", "r1\n"},
		{"r1\nr2\ncut", "r1\nr2\n", "r1\nr2\ncut"},
		{"r1\n" + long, "r1\n", "r1\n" + long},
		{long + "\n" + long, long + "\n", long + "\n" + long},
		{zeros, "", ""},
		{"r1\n" + zeros, "r1\n", "r1\n"},
		{"r1\nr2\ncut" + zeros, "r1\nr2\n", "r1\nr2\ncut"},
		{"r1\n" + zeros + "r2\n" + zeros, "r1\n", "r1\n"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "audit.log"), []byte(c.log), 0o600)
		os.WriteFile(filepath.Join(dir, "audit-digests.log"), []byte("d1\nd2-cut"), 0o600)
		for _, live := range []bool{true, false} {
			var out bytes.Buffer
			enc := NewEncoder(&out, nil, time.Time{})
			if err := streamAuditFiles(context.Background(), dir, live, enc); err != nil {
				t.Fatal(err)
			}
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
			s, err := Parse(out.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, f := range s.AuditFiles {
				got[f.Name] = string(f.Data)
			}
			want := map[string]string{"audit-digests.log": "d1\nd2-cut", "audit.log": c.stopped}
			if live {
				want = map[string]string{"audit-digests.log": "d1\n", "audit.log": c.want}
			}
			if len(got) != 2 || got["audit.log"] != want["audit.log"] || got["audit-digests.log"] != want["audit-digests.log"] {
				t.Fatalf("log of %d bytes, live %v: got %.40q, want %.40q", len(c.log), live, got, want)
			}
		}
	}
}

// A backup is not written into the data directory it backs up: named
// kms.db it took the key store's place, named audit.log a segment's.
// Refused, it changes nothing; written elsewhere, the same backup is
// taken.
func TestWriteRefusesAnOutputInTheDataDirectory(t *testing.T) {
	root := testRoot(t)
	snap := &Snapshot{
		Records:    []Record{{Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)}},
		AuditFiles: []File{{Name: "audit.log", Data: []byte("a\n")}},
	}
	file := filepath.Join(t.TempDir(), "b.kmsbak")
	if err := os.WriteFile(file, MarshalAuthenticated(snap, root.BackupKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "kms-data")
	if err := Restore(context.Background(), file, Where{DataDir: dir}, root, RestoreOptions{}, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	rootFor := func(context.Context, store.Store) (*keys.RootKey, error) { return root, nil }
	// --storage DIR, not a URL, reads DIR as a data directory.
	for _, where := range []Where{{DataDir: dir}, {Storage: dir}} {
		for _, name := range []string{"kms.db", "audit.log", "b.kmsbak"} {
			before := map[string][]byte{}
			for _, f := range []string{"kms.db", "audit.log"} {
				before[f], _ = os.ReadFile(filepath.Join(dir, f))
			}
			err := Write(context.Background(), where, filepath.Join(dir, name), rootFor, new(bytes.Buffer))
			if err == nil || !strings.Contains(err.Error(), "write it elsewhere") {
				t.Errorf("a backup of %+v written to the data directory's %s: %v", where, name, err)
			}
			for f, b := range before {
				if now, _ := os.ReadFile(filepath.Join(dir, f)); !bytes.Equal(now, b) {
					t.Errorf("a backup of %+v written to the data directory's %s changed its %s", where, name, f)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "b.kmsbak")); err == nil {
				t.Errorf("a backup of %+v written to the data directory's %s left b.kmsbak", where, name)
			}
		}
	}
	out := filepath.Join(t.TempDir(), "kms.db")
	if err := Write(context.Background(), Where{DataDir: dir}, out, rootFor, new(bytes.Buffer)); err != nil {
		t.Fatalf("a backup written elsewhere: %v", err)
	}
}
