package envelope

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Both kinds of temporary file, unnamed (O_TMPFILE) and named, in
// parallel: f opens its outputs with open, which makes a named one for the
// named kind and checks that it did.
func bothTemps(t *testing.T, f func(t *testing.T, open func(path string) (*output, error))) {
	for _, named := range []bool{false, true} {
		name := map[bool]string{false: "unnamed", true: "named"}[named]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, func(path string) (*output, error) {
				o, err := openOut(&Options{Out: path, namedTemp: named})
				if err == nil && named && o.anonymous {
					t.Errorf("openOut(%s) made an unnamed temporary file, want a named one", path)
				}
				return o, err
			})
		})
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range ents {
		n = append(n, e.Name())
	}
	return n
}

func TestOutputCommitAndDiscard(t *testing.T) {
	bothTemps(t, func(t *testing.T, open func(string) (*output, error)) {
		dir := t.TempDir()
		target := filepath.Join(dir, "out")
		link := filepath.Join(dir, "link")
		if err := os.Symlink("out", link); err != nil {
			t.Fatal(err)
		}
		// A link to nothing is not written through.
		if _, err := open(link); err == nil || !strings.Contains(err.Error(), "symbolic link to a file that does not exist") {
			t.Fatalf("openOut through a dangling link: %v", err)
		}
		if err := os.WriteFile(target, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		// Discarded: the target and the link stay as they were.
		o, err := open(link)
		if err != nil {
			t.Fatal(err)
		}
		o.w.Write([]byte("partial"))
		o.commit(false)
		if n := names(t, dir); len(n) != 2 {
			t.Fatalf("after a discard the directory holds %v", n)
		}
		if got, _ := os.ReadFile(target); string(got) != "old" {
			t.Fatalf("after a discard the target holds %q", got)
		}
		// Committed through the link: the file it points to is replaced.
		o, err = open(link)
		if err != nil {
			t.Fatal(err)
		}
		o.w.Write([]byte("whole"))
		if err := o.commit(true); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(target); string(got) != "whole" {
			t.Fatalf("target holds %q", got)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("the link was replaced: %v %v", fi.Mode(), err)
		}
		if n := names(t, dir); len(n) != 2 {
			t.Fatalf("after a commit the directory holds %v", n)
		}
	})
}

// A file a link led to that is replaced before it is opened in its
// directory is not written: the output goes where the kernel followed the
// link, or nowhere.
func TestOutputRefusesAFileSwappedAfterTheLink(t *testing.T) {
	dir := t.TempDir()
	target, other := filepath.Join(dir, "out"), filepath.Join(dir, "other")
	for _, f := range []string{target, other} {
		if err := os.WriteFile(f, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("out", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	swap := func(string) { os.Rename(other, target) }
	if _, err := openOut(&Options{Out: filepath.Join(dir, "link"), afterFollow: swap}); err == nil || !strings.Contains(err.Error(), "changed while it was opened") {
		t.Fatalf("openOut after the file was swapped: %v", err)
	}
}

// stickyDir is a directory anyone may write with the sticky bit, as
// /tmp is; the test is skipped unless it can make other users' files.
func stickyDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("making another user's files needs root")
	}
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// In a directory anyone may write with the sticky bit, another user's
// link is not followed and another user's file is not replaced; the
// caller's own, and the directory owner's, are.
func TestOutputInASharedDirectory(t *testing.T) {
	dir := stickyDir(t)
	const other = 1234
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("root's"), 0o600); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(dir, "theirs")
	if err := os.WriteFile(theirs, []byte("planted"), 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(theirs, 0o666)
	if err := os.Chown(theirs, other, other); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, other, other); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{link, "another user's symbolic link"},
		{theirs, "belongs to another user"},
	} {
		if _, err := openOut(&Options{Out: c.path}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("openOut(%s): %v, want an error saying %q", filepath.Base(c.path), err, c.want)
		}
	}
	if got, _ := os.ReadFile(victim); string(got) != "root's" {
		t.Fatalf("the link's target was written: %q", got)
	}
	// The caller's own link and file are written.
	if err := os.Lchown(link, 0, 0); err != nil {
		t.Fatal(err)
	}
	o, err := openOut(&Options{Out: link})
	if err != nil {
		t.Fatalf("openOut through the caller's own link: %v", err)
	}
	o.w.Write([]byte("new"))
	if err := o.commit(true); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "new" {
		t.Fatalf("through the caller's own link the target holds %q", got)
	}
}

// In a directory anyone may write with the sticky bit, another user's
// FIFO (or device, or socket) is not written to, nor another user's link
// followed to one, nor the caller's own link followed to another user's
// FIFO there: the plaintext would go to whoever reads it. The caller's
// own FIFO, and the directory owner's, are written.
func TestOutputNotRegularInASharedDirectory(t *testing.T) {
	dir := stickyDir(t)
	const other = 1234
	// A reader on every FIFO, so that opening one to write does not
	// block: whatever is opened shows as a success.
	mkfifo := func(path string, uid int) {
		t.Helper()
		if err := syscall.Mkfifo(path, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(path, uid, uid); err != nil {
			t.Fatal(err)
		}
		r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
	}
	symlink := func(target, path string, uid int) {
		t.Helper()
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(path, uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	theirs := filepath.Join(dir, "theirs")
	mkfifo(theirs, other)
	elsewhere := filepath.Join(t.TempDir(), "fifo")
	mkfifo(elsewhere, other)
	symlink(elsewhere, filepath.Join(dir, "their-link"), other)
	symlink("theirs", filepath.Join(dir, "my-link"), 0)
	for _, c := range []struct{ name, want string }{
		{"theirs", "belongs to another user"},
		{"their-link", "another user's symbolic link"},
		{"my-link", "belongs to another user"},
	} {
		o, err := openOut(&Options{Out: filepath.Join(dir, c.name)})
		if err == nil {
			o.commit(false)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("openOut(%s): %v, want an error saying %q", c.name, err, c.want)
		}
	}
	// The caller's own FIFO there, and through the caller's own link,
	// are written in place.
	mine := filepath.Join(dir, "mine")
	mkfifo(mine, 0)
	symlink("mine", filepath.Join(dir, "link-to-mine"), 0)
	// Relative paths, and a relative link, lead to the same checks.
	t.Chdir(dir)
	if _, err := openOut(&Options{Out: "my-link"}); err == nil || !strings.Contains(err.Error(), "belongs to another user") {
		t.Errorf("openOut(my-link) from the directory: %v", err)
	}
	for _, name := range []string{"mine", "link-to-mine", "./link-to-mine", filepath.Join(dir, "link-to-mine")} {
		o, err := openOut(&Options{Out: name})
		if err != nil {
			t.Fatalf("openOut(%s), the caller's own FIFO: %v", name, err)
		}
		if !o.inPlace {
			t.Fatalf("openOut(%s) did not write the FIFO in place", name)
		}
		o.commit(true)
	}
}

// A symbolic link to one of the kernel's links under /proc, whose target
// is no path (a pipe), is written through in place, as the kernel follows
// it.
func TestOutputLinkToAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink("/proc/self/fd/"+strconv.Itoa(int(w.Fd())), link); err != nil {
		t.Fatal(err)
	}
	o, err := openOut(&Options{Out: link})
	if err != nil {
		t.Fatalf("openOut through a link to a pipe: %v", err)
	}
	if !o.inPlace {
		t.Fatal("the pipe was not written in place")
	}
	if _, err := o.w.Write([]byte("through")); err != nil {
		t.Fatal(err)
	}
	if err := o.commit(true); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 7)
	if _, err := io.ReadFull(r, got); err != nil || string(got) != "through" {
		t.Fatalf("read %q, %v from the pipe", got, err)
	}
}

// TestOutputSignal runs itself as a child that writes to a temporary file
// and waits; SIGTERM, SIGINT and SIGHUP must remove the file and exit
// non-zero.
func TestOutputSignal(t *testing.T) {
	if dir := os.Getenv("OUTPUT_SIGNAL_CHILD"); dir != "" {
		o, err := openOut(&Options{Out: filepath.Join(dir, "out"), namedTemp: os.Getenv("OUTPUT_SIGNAL_UNNAMED") != "1"})
		if err != nil {
			os.Exit(3)
		}
		o.w.Write(bytes.Repeat([]byte("plaintext"), 1<<20))
		os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600)
		time.Sleep(time.Minute)
		os.Exit(4)
	}
	for _, unnamed := range []string{"1", "0"} {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
			t.Run(sig.String()+"/unnamed="+unnamed, func(t *testing.T) {
				dir := t.TempDir()
				cmd := exec.Command(os.Args[0], "-test.run=^TestOutputSignal$")
				cmd.Env = append(os.Environ(), "OUTPUT_SIGNAL_CHILD="+dir, "OUTPUT_SIGNAL_UNNAMED="+unnamed)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				ready := filepath.Join(dir, "ready")
				for i := 0; ; i++ {
					if _, err := os.Stat(ready); err == nil {
						break
					}
					if i > 1000 {
						cmd.Process.Kill()
						t.Fatal("the child did not get ready")
					}
					time.Sleep(10 * time.Millisecond)
				}
				os.Remove(ready)
				if unnamed == "0" && len(names(t, dir)) != 1 {
					t.Fatalf("want the named temporary file, have %v", names(t, dir))
				}
				cmd.Process.Signal(sig)
				err := cmd.Wait()
				if code := cmd.ProcessState.ExitCode(); err == nil || code != 128+int(sig) {
					t.Errorf("exit code %d after %v, want %d", code, sig, 128+int(sig))
				}
				if n := names(t, dir); len(n) != 0 {
					t.Fatalf("left %v after %v", n, sig)
				}
			})
		}
	}
}

// A replaced file keeps its mode, and its owner where the process may
// give it (as root).
func TestOutputKeepsModeAndOwner(t *testing.T) {
	bothTemps(t, func(t *testing.T, open func(string) (*output, error)) {
		target := filepath.Join(t.TempDir(), "out")
		if err := os.WriteFile(target, []byte("old"), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chmod(target, 0o640)
		uid, gid := os.Geteuid(), os.Getegid()
		if uid == 0 {
			uid, gid = 1234, 5678
			if err := os.Chown(target, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
		o, err := open(target)
		if err != nil {
			t.Fatal(err)
		}
		o.w.Write([]byte("new"))
		if err := o.commit(true); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(target)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o640 || int(st.Uid) != uid || int(st.Gid) != gid {
			t.Fatalf("replaced file: mode %v, owner %d:%d; want 0640, %d:%d", fi.Mode().Perm(), st.Uid, st.Gid, uid, gid)
		}
	})
}

// TestOutputWriteSizes writes a regular output in pieces that end on page
// boundaries and off them, with the caller reusing its buffer after each
// write, and checks the file holds exactly what was written.
func TestOutputWriteSizes(t *testing.T) {
	bothTemps(t, func(t *testing.T, open func(string) (*output, error)) {
		for _, sizes := range [][]int{
			{1}, {holdBack}, {holdBack + 1}, {4096}, {4096, 4096, 1},
			{256 << 10, 256 << 10, 256 << 10}, {4096 - 7, 7, 8192, holdBack, 1 << 20, 3},
			{writebackStep + 4096, writebackStep}, {0, 4096, 0},
		} {
			target := filepath.Join(t.TempDir(), "out")
			o, err := open(target)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			buf := make([]byte, 0, writebackStep+4096)
			for i, n := range sizes {
				buf = buf[:n]
				for j := range buf {
					buf[j] = byte(i*31 + j*7 + j>>12)
				}
				want = append(want, buf...)
				if k, err := o.w.Write(buf); k != n || err != nil {
					t.Fatalf("sizes %v: write %d: %d, %v", sizes, i, k, err)
				}
				clear(buf) // the caller may reuse its buffer at once
			}
			if err := o.commit(true); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(target)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("sizes %v: the file holds %d bytes, not the %d written, or differs", sizes, len(got), len(want))
			}
		}
	})
}
