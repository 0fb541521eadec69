package boltstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// ReadValue reads a record of a closed store, and says so, rather than
// wait, when a server holds the file.
func TestReadValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	st, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.Put([]byte("meta/x"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if _, err := boltstore.ReadValue(path, []byte("meta/x"), 100*time.Millisecond); !errors.Is(err, boltstore.ErrLocked) {
		t.Fatalf("ReadValue of a held store: %v, want ErrLocked", err)
	}
	st.Close()
	if v, err := boltstore.ReadValue(path, []byte("meta/x"), time.Second); err != nil || string(v) != "v" {
		t.Fatalf("ReadValue: %q, %v", v, err)
	}
	if _, err := boltstore.ReadValue(path, []byte("meta/y"), time.Second); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ReadValue of a missing record: %v", err)
	}
}
