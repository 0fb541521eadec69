//go:build linux

package boltstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// lockedChild names, in the environment of a copy of this test binary,
// the directory of the store it writes with its memory locked.
const lockedChild = "BOLTSTORE_LOCKED_CHILD"

// otherUID is a user other than the one running the tests: nobody.
const otherUID = 65534

// A process whose memory is locked (kms server --mlock) and may lock no
// more than RLIMIT_MEMLOCK, which it lacks CAP_IPC_LOCK to pass, cannot
// grow the map of its store's file past it: the mmap fails (EAGAIN).
// bbolt then has no map at all, and every later call failed until a
// restart. The write that needed the map fails with an error that says
// why, nothing acknowledged is lost, and the store goes on with the file
// mapped again as it was: its records read and smaller writes commit.
//
// The store runs in a copy of the test binary as another user (root has
// CAP_IPC_LOCK, which no limit binds). Its hard RLIMIT_MEMLOCK is this
// process's (a few MiB, which the test may not raise), below what a Go
// process maps, so mlockall(MCL_CURRENT) would fail: it locks its future
// maps only (MCL_FUTURE | MCL_ONFAULT, as kms server --mlock does with
// MCL_CURRENT), once its heap has room for the write, and every map it
// makes after counts against the limit as it would for the server.
func TestWritePastTheLockLimit(t *testing.T) {
	if dir := os.Getenv(lockedChild); dir != "" {
		writePastTheLockLimit(dir)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("running the store as another user needs root")
	}
	base, err := os.MkdirTemp("", "boltstore-locked-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	for _, err := range []error{os.Chmod(base, 0o755), childBinary(filepath.Join(base, "test")),
		os.Mkdir(filepath.Join(base, "data"), 0o700), os.Chown(filepath.Join(base, "data"), otherUID, otherUID)} {
		if err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command(filepath.Join(base, "test"), "-test.run=^TestWritePastTheLockLimit$", "-test.v")
	cmd.Env = append(os.Environ(), lockedChild+"="+filepath.Join(base, "data"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		err = <-done
	}
	if err != nil || !strings.Contains(out.String(), "locked store: ok") {
		t.Fatalf("the store with its memory locked under a limit: %v\n%s", err, out.String())
	}
	t.Log(out.String())
}

// writePastTheLockLimit is TestWritePastTheLockLimit's child: it prints
// "locked store: ok" if every check held, and what failed if not.
func writePastTheLockLimit(dir string) {
	fail := func(format string, args ...any) {
		fmt.Printf("locked store: "+format+"\n", args...)
		os.Exit(1)
	}
	ctx := context.Background()
	s, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	if err != nil {
		fail("open: %v", err)
	}
	put := func(k string, v []byte) error {
		return s.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte(k), v) })
	}
	get := func(k string) ([]byte, error) {
		var v []byte
		err := s.View(ctx, func(tx store.Tx) error {
			var err error
			v, err = tx.Get([]byte(k))
			return err
		})
		return v, err
	}
	if err := put("acknowledged", []byte("before")); err != nil {
		fail("first write: %v", err)
	}

	// A value whose pages need a map of 64 MiB; the heap gets room for
	// it, and for bbolt's copy of it, before the memory is locked.
	big := bytes.Repeat([]byte{1}, 32<<20)
	room := make([]byte, 256<<20)
	room[len(room)-1] = 1
	runtime.KeepAlive(room)
	room = nil
	runtime.GC()
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		fail("getrlimit: %v", err)
	}
	if lim.Cur == unix.RLIM_INFINITY || lim.Cur >= 32<<20 {
		lim.Cur = 4 << 20
		if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
			fail("setrlimit: %v", err)
		}
	}
	if err := unix.Mlockall(unix.MCL_FUTURE | unix.MCL_ONFAULT); err != nil {
		fail("mlockall: %v", err)
	}

	writeErr := put("big", big)
	if writeErr == nil {
		fail("a write past the lock limit committed")
	}
	if !strings.Contains(writeErr.Error(), "memory map") || !strings.Contains(writeErr.Error(), "RLIMIT_MEMLOCK") {
		fail("the write past the limit failed with %q, which does not say the map could not grow", writeErr)
	}
	if v, err := get("acknowledged"); err != nil || string(v) != "before" {
		fail("after the failed write, the acknowledged record reads %q, %v", v, err)
	}
	if _, err := get("big"); !errors.Is(err, store.ErrNotFound) {
		fail("after the failed write, its record reads %v", err)
	}
	if err := put("after", []byte("small")); err != nil {
		fail("a small write after the failed one: %v", err)
	}
	if err := s.Close(); err != nil {
		fail("close: %v", err)
	}
	s, err = boltstore.Open(filepath.Join(dir, "kms.db"))
	if err != nil {
		fail("open again: %v", err)
	}
	for k, want := range map[string]string{"acknowledged": "before", "after": "small"} {
		if v, err := get(k); err != nil || string(v) != want {
			fail("opened again, %s reads %q, %v", k, v, err)
		}
	}
	fmt.Printf("locked store: ok (limit %d kB; the write failed: %v)\n", lim.Cur>>10, writeErr)
}

// childBinary writes to path a test binary of this package that another
// user may run: a copy of this one, or, when this one is built with the
// race detector, one built without it. The race detector's shadow memory
// is mapped as the heap grows, and with the memory locked under a small
// limit its map fails and it ends the process.
func childBinary(path string) error {
	if raceEnabled {
		out, err := exec.Command("go", "test", "-c", "-race=false", "-o", path, ".").CombinedOutput()
		if err != nil {
			return fmt.Errorf("go test -c: %v\n%s", err, out)
		}
		return os.Chmod(path, 0o755)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o755)
}
