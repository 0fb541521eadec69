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
	raw := make([]byte, keys.RootKeySize)
	rand.Read(raw)
	root, err := keys.NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	snap := &Snapshot{
		Records:    []Record{{Key: keys.RootCheckRecord, Value: root.Seal(keys.RootCheckRecord, []byte("check"))}},
		AuditFiles: []File{{Name: "audit.log", Data: []byte("a\n")}, {Name: "audit.log", Data: []byte("b\n")}},
	}
	file := filepath.Join(t.TempDir(), "b.kmsbak")
	if err := os.WriteFile(file, Marshal(snap), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	err = Restore(context.Background(), file, Where{DataDir: dir}, root, new(bytes.Buffer))
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "audit.log is in it twice") {
		t.Fatalf("Restore = %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused restore wrote into the target: %v", err)
	}
	// The same backup without the second copy restores.
	snap.AuditFiles = snap.AuditFiles[:1]
	os.WriteFile(file, Marshal(snap), 0o600)
	if err := Restore(context.Background(), file, Where{DataDir: dir}, root, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
}
