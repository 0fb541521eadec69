package boltstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
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

// TestReadValueThroughACompaction: a ReadValue that opened kms.db and
// waited for its lock while the server compacted it gets the lock of
// the file the compaction replaced, which no longer takes the server's
// writes: it says that a server holds the store, rather than read a
// record as it was before.
func TestReadValueThroughACompaction(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kms.db")
	st, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put := func(v string) {
		t.Helper()
		if err := st.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("meta/x"), []byte(v)) }); err != nil {
			t.Fatal(err)
		}
	}
	put("before")
	type result struct {
		v   []byte
		err error
	}
	read := make(chan result, 1)
	go func() {
		v, err := boltstore.ReadValue(path, []byte("meta/x"), time.Minute)
		read <- result{v, err}
	}()
	// Once ReadValue opened the file (and waits for its lock), the
	// process has it open twice.
	for opened(t, path) < 2 {
		runtime.Gosched()
	}
	if err := st.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	put("after")
	if r := <-read; !errors.Is(r.err, boltstore.ErrLocked) {
		t.Fatalf("ReadValue through a compaction: %q, %v, want ErrLocked", r.v, r.err)
	}
}

// opened returns how many of the process's file descriptors name the
// file at path.
func opened(t *testing.T, path string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}
