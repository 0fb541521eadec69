package esdk

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSpoolFileNeverNamed spools a body past what the spool keeps in
// memory, watching its directory with inotify: no name is ever created
// there, so a process killed at any moment (SIGKILL, or SIGINT between
// creating the file and unlinking it) leaves nothing behind, and no other
// process can open the file by name. The plaintext still reads back.
func TestSpoolFileNeverNamed(t *testing.T) {
	dir := t.TempDir()
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	if _, err := unix.InotifyAddWatch(in, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	sp, err := newSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	chunk := testPlaintext(spoolChunk)
	const chunks = spoolMemory/spoolChunk + 2
	for range chunks {
		if err := sp.write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if sp.f == nil {
		t.Fatal("the spool did not move to a file")
	}
	if err := sp.rewind(); err != nil {
		t.Fatal(err)
	}
	for i := range chunks {
		got, err := sp.next()
		if err != nil || !bytes.Equal(got, chunk) {
			t.Fatalf("chunk %d: %d bytes, %v", i, len(got), err)
		}
	}
	buf := make([]byte, 4096)
	n, err := unix.Read(in, buf)
	if !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("the spool directory saw %d bytes of inotify events (%v): a name was created", n, err)
	}
}

// TestSpoolFileFallbackUnlinked: where the file system has no O_TMPFILE,
// the spool's file is created by name and unlinked at once, before any
// byte is written to it: once createUnlinked returns, its directory is
// empty and there is no name to remove, and the file still takes and
// gives back data through its descriptor.
func TestSpoolFileFallbackUnlinked(t *testing.T) {
	dir := t.TempDir()
	f, name, err := createUnlinked(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 || name != "" {
		t.Fatalf("after createUnlinked: %d names in the directory (%v), name to remove %q", len(ents), err, name)
	}
	want := testPlaintext(3 * spoolChunk)
	if _, err := f.Write(want); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back: %v, right %v", err, bytes.Equal(got, want))
	}
}
