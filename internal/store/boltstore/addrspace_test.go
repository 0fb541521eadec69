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
// that limit; nothing acknowledged is lost, and the
// store goes on with the file mapped again as it was.
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

	// A value whose pages need a map of 64 MiB; the heap gets room for
	// it, and for bbolt's copy of it, before the limit is lowered.
	big := bytes.Repeat([]byte{1}, 32<<20)
	room := make([]byte, 256<<20)
	room[len(room)-1] = 1
	runtime.KeepAlive(room)
	room = nil
	runtime.GC()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fail("%v", err)
	}
	var vmSize int64
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			vmSize, err = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				fail("VmSize: %v", err)
			}
		}
	}
	lim := unix.Rlimit{Cur: uint64(vmSize<<10) + 16<<20, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_AS, &lim); err != nil {
		fail("setrlimit: %v", err)
	}

	writeErr := put("big", big)
	if writeErr == nil {
		fail("a write past the address space limit committed")
	}
	if msg := writeErr.Error(); !strings.Contains(msg, "memory map") || !strings.Contains(msg, "RLIMIT_AS") {
		fail("the write past the limit failed with %q, which does not name the address space limit", writeErr)
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
