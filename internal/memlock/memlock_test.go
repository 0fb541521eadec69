//go:build linux

package memlock_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/openkms/kms/internal/memlock"
)

// boundedChild tells a copy of this test binary, run as another user, to
// print what Bounded and Lock say there.
const boundedChild = "MEMLOCK_BOUNDED_CHILD"

// otherUID is a user other than the one running the tests: nobody.
const otherUID = 65534

// Root has CAP_IPC_LOCK: what it locks is not bounded. A user without
// it is bounded by its RLIMIT_MEMLOCK (here 64 KiB), and Lock, with a
// limit below what a Go process maps, fails with one line naming the
// limit and the fixes, and leaves nothing locked.
func TestBounded(t *testing.T) {
	if os.Getenv(boundedChild) != "" {
		// A process may lower its own limit, as `ulimit -l 64` does.
		var rl unix.Rlimit
		unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl)
		rl.Cur = 64 << 10
		if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
			fmt.Println("setrlimit:", err)
			os.Exit(1)
		}
		limit, bounded := memlock.Bounded()
		err := memlock.Lock()
		b, _ := os.ReadFile("/proc/self/status")
		locked := ""
		for line := range strings.Lines(string(b)) {
			if strings.HasPrefix(line, "VmLck:") {
				locked = strings.Join(strings.Fields(line)[1:], " ")
			}
		}
		fmt.Printf("bounded=%v limit=%d locked=%s\nlock: %v\n", bounded, limit, locked, err)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("running as another user needs root")
	}
	if _, bounded := memlock.Bounded(); bounded {
		t.Errorf("root, with CAP_IPC_LOCK: Bounded says its locking is bounded")
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "memlock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "test")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestBounded$")
	cmd.Env = append(os.Environ(), boundedChild+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if want := "bounded=true limit=65536 locked=0 kB\n"; !bytes.HasPrefix(out, []byte(want)) {
		t.Errorf("another user says\n%s\nwant it to start %q", out, want)
	}
	lockLine, _, _ := strings.Cut(string(out[bytes.IndexByte(out, '\n')+1:]), "\n")
	for _, want := range []string{"lock: mlockall: ", "more than RLIMIT_MEMLOCK (64 KiB)", "ulimit -l unlimited", "LimitMEMLOCK=infinity", "CAP_IPC_LOCK", "--cap-add IPC_LOCK"} {
		if !strings.Contains(lockLine, want) {
			t.Errorf("Lock as another user under its limit: %q does not say %q", lockLine, want)
		}
	}
}
