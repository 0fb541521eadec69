package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

func TestWriteReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	for _, content := range []string{"first", "second"} {
		if err := Write(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Fatalf("file holds %q, want %q", b, content)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

// Of many racing creators, one creates the file and the others find it
// whole.
func TestCreateOnceRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	var created atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			ok, err := CreateOnce(path, []byte{byte('a' + i)}, 0o600)
			if err != nil {
				t.Error(err)
			}
			if ok {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if created.Load() != 1 {
		t.Fatalf("%d creators succeeded, want 1", created.Load())
	}
	if b, _ := os.ReadFile(path); len(b) != 1 {
		t.Fatalf("file holds %q", b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

// A reader that fails part way leaves neither the file nor a temporary
// one; a whole reader's content is all there.
func TestCreateOnceFromReader(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	cut := io.MultiReader(strings.NewReader("a line\n"), iotest.ErrReader(io.ErrUnexpectedEOF))
	if ok, err := CreateOnceFrom(path, cut, 0o600); ok || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("CreateOnceFrom of a failing reader = %v, %v", ok, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files left after a failed read: %v", ents)
	}
	big := strings.Repeat("0123456789abcdef", 1<<16) // larger than one copy buffer
	if ok, err := CreateOnceFrom(path, strings.NewReader(big), 0o600); !ok || err != nil {
		t.Fatalf("CreateOnceFrom = %v, %v", ok, err)
	}
	if b, _ := os.ReadFile(path); string(b) != big {
		t.Fatalf("file holds %d bytes, want %d", len(b), len(big))
	}
}

// A staged file has no name but its temporary one until Link; removed
// instead, it leaves nothing.
func TestStage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	kept, err := Stage(path, strings.NewReader("kept\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := Stage(filepath.Join(dir, "audit.pub"), strings.NewReader("dropped\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("staging made %s", e.Name())
		}
	}
	dropped.Remove()
	if ok, err := kept.Link(); !ok || err != nil {
		t.Fatalf("Link = %v, %v", ok, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 || ents[0].Name() != "audit.log" {
		t.Fatalf("after Link and Remove the directory holds %v", ents)
	}
	if b, _ := os.ReadFile(path); string(b) != "kept\n" {
		t.Fatalf("audit.log holds %q", b)
	}
	again, err := Stage(path, strings.NewReader("again\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := again.Link(); ok || err != nil {
		t.Fatalf("Link over an existing file = %v, %v", ok, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "kept\n" {
		t.Fatalf("audit.log holds %q", b)
	}
}
