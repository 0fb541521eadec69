package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/keys"
)

// A backup that names an audit file twice is refused before anything is
// written: the second copy could only fail once the records were in.
func TestRestoreRefusesAnAuditFileTwice(t *testing.T) {
	root := testRoot(t)
	snap := &Snapshot{
		Records:    []Record{{Key: keys.RootCheckRecord, Value: root.Seal(keys.RootCheckRecord, []byte("check"))}},
		AuditFiles: []File{{Name: "audit.log", Data: []byte("a\n")}, {Name: "audit.log", Data: []byte("b\n")}},
	}
	file := filepath.Join(t.TempDir(), "b.kmsbak")
	if err := os.WriteFile(file, MarshalAuthenticated(snap, root.BackupKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	err := Restore(context.Background(), file, Where{DataDir: dir}, root, RestoreOptions{}, new(bytes.Buffer))
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "audit.log is in it twice") {
		t.Fatalf("Restore = %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused restore wrote into the target: %v", err)
	}
	// The same backup without the second copy restores.
	snap.AuditFiles = snap.AuditFiles[:1]
	os.WriteFile(file, MarshalAuthenticated(snap, root.BackupKey()), 0o600)
	if err := Restore(context.Background(), file, Where{DataDir: dir}, root, RestoreOptions{}, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
}

func testRoot(t *testing.T) *keys.RootKey {
	t.Helper()
	raw := make([]byte, keys.RootKeySize)
	rand.Read(raw)
	root, err := keys.NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// A restore takes only a backup whose tag was made under its root key:
// one edited since it was written (its checksum made again, as anyone
// can) is refused before anything is written, and so is one rewritten as
// format version 1, which has no tag, unless the restore is told to take
// it.
func TestRestoreAuthenticates(t *testing.T) {
	root := testRoot(t)
	accessKey := []byte("iam/accesskey/AKIAEXAMPLE")
	snap := &Snapshot{Records: []Record{
		{Key: accessKey, Value: []byte(`{"v":1,"id":"AKIAEXAMPLE","account":"111122223333","userName":"alice"}`)},
		{Key: keys.RootCheckRecord, Value: root.Seal(keys.RootCheckRecord, []byte("check"))},
	}}
	good := MarshalAuthenticated(snap, root.BackupKey())
	restore := func(t *testing.T, data []byte, opts RestoreOptions) (string, error) {
		t.Helper()
		file := filepath.Join(t.TempDir(), "b.kmsbak")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "restored")
		return dir, Restore(context.Background(), file, Where{DataDir: dir}, root, opts, new(bytes.Buffer))
	}
	if _, err := restore(t, good, RestoreOptions{}); err != nil {
		t.Fatalf("the backup as written: %v", err)
	}
	edited, err := Parse(good)
	if err != nil || edited.Tag == nil {
		t.Fatalf("Parse: %v, tag %x", err, edited.Tag)
	}
	edited.Records[0].Value = []byte(`{"v":1,"id":"AKIAEXAMPLE","account":"111122223333"}`) // alice's key made the root's
	for name, tc := range map[string]struct {
		data []byte
		opts RestoreOptions
		want string
	}{
		"edited, its checksum made again": {Marshal(edited), RestoreOptions{}, "authentication tag does not match"},
		"edited, allowed unauthenticated": {Marshal(edited), RestoreOptions{AllowUnauthenticated: true}, "authentication tag does not match"},
		"edited, made version 1":          {Marshal(&Snapshot{Records: edited.Records}), RestoreOptions{}, "--allow-unauthenticated"},
		"its tag cut off":                 {good[:len(good)-32], RestoreOptions{}, "no authentication tag"},
		"under another root key":          {MarshalAuthenticated(snap, testRoot(t).BackupKey()), RestoreOptions{}, "authentication tag does not match"},
	} {
		t.Run(name, func(t *testing.T) {
			dir, err := restore(t, tc.data, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore = %v, want an error saying %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the refused restore wrote into the target: %v", err)
			}
		})
	}
	if _, err := restore(t, Marshal(&Snapshot{Records: snap.Records}), RestoreOptions{AllowUnauthenticated: true}); err != nil {
		t.Fatalf("a version 1 backup with --allow-unauthenticated: %v", err)
	}
}
