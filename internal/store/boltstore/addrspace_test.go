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
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// limitedChild names, in the environment of a copy of this test binary,
// the directory of the store it writes under an address space limit.
const limitedChild = "BOLTSTORE_LIMITED_CHILD"

// Without --mlock too a write can need a larger map of the file than
// the process may make: under an address space limit (RLIMIT_AS, ulimit
// -v) the mmap fails (ENOMEM). The write fails with an error that names
// that limit; nothing acknowledged is lost, and the store goes on with
// the file mapped again as it was.
//
// While it maps the file again (and after a first attempt failed) the
// store holds the file's lock: another process (kms restore, migrate,
// root-key rotate, which refuse to run beside a server by that lock)
// cannot open the file and write to it under the server. A read-only
// open stands for it, waiting briefly. A read or a write that begins
// before the file is mapped again waits for it, and succeeds; a write
// refused by its own function fails with its own error.
//
// The store runs in a copy of the test binary, which lowers its own
// limit once its heap has room for the write.
func TestWritePastTheAddressSpaceLimit(t *testing.T) {
	if dir := os.Getenv(limitedChild); dir != "" {
		writePastTheAddressSpaceLimit(dir)
		return
	}
	bin := filepath.Join(t.TempDir(), "test")
	if err := childBinary(bin); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestWritePastTheAddressSpaceLimit$", "-test.v")
	cmd.Env = append(os.Environ(), limitedChild+"="+t.TempDir())
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "limited store: ok") {
		t.Fatalf("the store under an address space limit: %v\n%s", err, out)
	}
	t.Log(string(out))
}

// writePastTheAddressSpaceLimit is TestWritePastTheAddressSpaceLimit's
// child: it prints "limited store: ok" if every check held, and what
// failed if not.
func writePastTheAddressSpaceLimit(dir string) {
	fail := func(format string, args ...any) {
		fmt.Printf("limited store: "+format+"\n", args...)
		os.Exit(1)
	}
	ctx := context.Background()
	path := filepath.Join(dir, "kms.db")
	s, err := boltstore.Open(path)
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
	// The store goes on with Compact's copy, and holds its lock.
	if err := s.Compact(ctx); err != nil {
		fail("compact: %v", err)
	}
	othersOpen := func() error {
		_, err := boltstore.ReadValue(path, []byte("acknowledged"), 200*time.Millisecond)
		return err
	}
	// The first remap is made to fail, under a limit that leaves no room
	// for a map of the file at all; the second has room.
	var remaps []error
	boltstore.OnRemap(s, func() {
		remaps = append(remaps, othersOpen())
		if len(remaps) == 1 {
			limitAddressSpace(16 << 10)
		}
	})

	// A value whose pages need a map of 64 MiB; the heap gets room for
	// it, and for bbolt's copy of it, before the limit is lowered.
	big := bytes.Repeat([]byte{1}, 32<<20)
	room := make([]byte, 256<<20)
	room[len(room)-1] = 1
	runtime.KeepAlive(room)
	room = nil
	runtime.GC()
	limitAddressSpace(16 << 20)

	writeErr := put("big", big)
	if writeErr == nil {
		fail("a write past the address space limit committed")
	}
	if msg := writeErr.Error(); !strings.Contains(msg, "memory map") || !strings.Contains(msg, "RLIMIT_AS") {
		fail("the write past the limit failed with %q, which does not name the address space limit", writeErr)
	}
	if len(remaps) != 1 || !errors.Is(remaps[0], boltstore.ErrLocked) {
		fail("while the store mapped its file again, another process opened it: %v", remaps)
	}
	if !strings.Contains(writeErr.Error(), "mapping the file again") {
		fail("the write past the limit failed with %q, which does not say the file could not be mapped again", writeErr)
	}
	limitAddressSpace(16 << 20)
	if err := othersOpen(); !errors.Is(err, boltstore.ErrLocked) {
		fail("after the store failed to map its file again, another process opened it: %v", err)
	}
	if v, err := get("acknowledged"); err != nil || string(v) != "before" {
		fail("after the failed write, the acknowledged record reads %q, %v", v, err)
	}
	if len(remaps) != 2 || !errors.Is(remaps[1], boltstore.ErrLocked) {
		fail("while the store mapped its file again, another process opened it: %v", remaps)
	}
	if err := closedOnExec(path); err != nil {
		fail("mapped again: %v", err)
	}
	if _, err := get("big"); !errors.Is(err, store.ErrNotFound) {
		fail("after the failed write, its record reads %v", err)
	}
	if err := put("after", []byte("small")); err != nil {
		fail("a small write after the failed one: %v", err)
	}

	// A read, or a write, that begins after a write lost the map and
	// before the store maps the file again waits for it and goes on: it
	// does not fail for the other's lack of room.
	boltstore.OnRemap(s, nil)
	for name, call := range map[string]func() error{
		"read": func() error {
			if v, err := get("acknowledged"); err != nil || string(v) != "before" {
				return fmt.Errorf("%q, %v", v, err)
			}
			return nil
		},
		"write": func() error { return put("beside", []byte("small")) },
	} {
		done := make(chan error, 1)
		boltstore.OnWriteFailed(s, func() {
			boltstore.OnWriteFailed(s, nil)
			go func() { done <- call() }()
			// Until the call waits to map the file again, or is done.
			for !boltstore.Held(s) && len(done) == 0 {
				runtime.Gosched()
			}
		})
		if err := put("big", big); err == nil {
			fail("a write past the address space limit committed, beside a %s", name)
		}
		if err := <-done; err != nil {
			fail("a %s beside a write that lost the map: %v", name, err)
		}
	}
	// A write that fails of itself (a request the service refuses) fails
	// with its own error, even when another write loses the map before
	// this one's error is returned.
	refused := errors.New("refused")
	done := make(chan error, 1)
	boltstore.OnWriteFailed(s, func() {
		boltstore.OnWriteFailed(s, nil)
		go func() { done <- put("big", big) }()
		// Until the other write waits to map the file again, or is done.
		for !boltstore.Held(s) && len(done) == 0 {
			runtime.Gosched()
		}
	})
	if err := s.Update(ctx, func(store.Tx) error { return refused }); !errors.Is(err, refused) {
		fail("a write refused beside one that lost the map failed with %v", err)
	}
	if err := <-done; err == nil {
		fail("a write past the address space limit committed, beside a refused one")
	}
	if v, err := get("beside"); err != nil || string(v) != "small" {
		fail("the write beside one that lost the map reads %q, %v", v, err)
	}
	if err := s.Close(); err != nil {
		fail("close: %v", err)
	}
	if s, err = boltstore.Open(path); err != nil {
		fail("open again: %v", err)
	}
	for k, want := range map[string]string{"acknowledged": "before", "after": "small"} {
		if v, err := get(k); err != nil || string(v) != want {
			fail("opened again, %s reads %q, %v", k, v, err)
		}
	}
	fmt.Printf("limited store: ok (the write failed: %v)\n", writeErr)
}

// limitAddressSpace sets this process's RLIMIT_AS to the address space it
// maps now and extra bytes, or ends it.
func limitAddressSpace(extra uint64) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		panic(err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				panic(err)
			}
			if err := unix.Setrlimit(unix.RLIMIT_AS, &unix.Rlimit{Cur: kb<<10 + extra, Max: unix.RLIM_INFINITY}); err != nil {
				panic(err)
			}
			return
		}
	}
	panic("no VmSize in /proc/self/status")
}

// closedOnExec reports which descriptor of this process open on path is
// not closed on exec: a program the process ran would hold its lock.
func closedOnExec(path string) error {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	open := 0
	for _, e := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err != nil || target != path {
			continue
		}
		open++
		fd, _ := strconv.Atoi(e.Name())
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
			return fmt.Errorf("descriptor %d of %s is not closed on exec (%v)", fd, path, err)
		}
	}
	if open == 0 {
		return fmt.Errorf("no descriptor of this process is open on %s", path)
	}
	return nil
}
