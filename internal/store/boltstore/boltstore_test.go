package boltstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []byte
	if err := s.View(ctx, func(tx store.Tx) error { got, err = tx.Get([]byte("k")); return err }); err != nil {
		t.Fatal(err)
	}
	if string(got) != "v" {
		t.Fatalf("after reopen got %q", got)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s2, err := boltstore.Open(path); err == nil {
		s2.Close()
		t.Fatal("a second Open of a locked file succeeded")
	}
}

// A symbolic link is refused, whether it points at a store, at an empty
// file or at nothing: it could make the store a file someone else reads.
func TestOpenRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.db")
	s, err := boltstore.Open(real)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, target := range []string{real, empty, missing} {
		link := filepath.Join(t.TempDir(), "kms.db")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if s, err := boltstore.Open(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
			if s != nil {
				s.Close()
			}
			t.Errorf("Open of a link to %s: %v, want a refusal naming a symbolic link", filepath.Base(target), err)
		}
		if target == missing {
			continue // ReadValue finds no file behind a dangling link
		}
		if _, err := boltstore.ReadValue(link, []byte("k"), time.Second); err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("ReadValue of a link to %s: %v, want a refusal naming a symbolic link", filepath.Base(target), err)
		}
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Errorf("the file linked to was written: %v, %v", fi, err)
	}
	if _, err := os.Lstat(missing); err == nil {
		t.Error("a file was made where the link pointed")
	}
}

// A file that cannot be opened is named once in the refusal, whether the
// file system's error names it already or not.
func TestOpenErrorNamesTheFileOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kms.db")
	if err := os.Mkdir(path, 0o700); err != nil { // a directory where the file should be
		t.Fatal(err)
	}
	_, err := boltstore.Open(path)
	if err == nil || strings.Count(err.Error(), path) != 1 {
		t.Fatalf("Open of a directory: %v, want the path named once", err)
	}
	if _, err := boltstore.ReadValue(path, []byte("k"), time.Second); err == nil || strings.Count(err.Error(), path) != 1 {
		t.Fatalf("ReadValue of a directory: %v, want the path named once", err)
	}
}
