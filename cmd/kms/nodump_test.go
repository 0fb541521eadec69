package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// A process of the server's own user cannot read the server's memory or
// environment (/proc/PID/mem, /proc/PID/environ), which hold the root key,
// key material and plaintext in the clear: with Debian's default
// kernel.yama.ptrace_scope of 0 any process of a user may read every other
// one's. The server still reads its own /proc/self (the process metrics).
func TestServerMemoryIsKeptFromItsOwnUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a server as another user needs root")
	}
	theirs, err := os.MkdirTemp("", "kms-theirs-")
	noErr(t, err, "temp dir")
	t.Cleanup(func() { os.RemoveAll(theirs) })
	noErr(t, os.Chown(theirs, otherUID, otherUID), "chown")
	cmd, m := startDevAs(t, otherUID, otherUID, theirs, theirs)

	for _, file := range []string{"environ", "mem", "maps"} {
		path := fmt.Sprintf("/proc/%d/%s", cmd.Process.Pid, file)
		read := exec.Command("head", "-c", "1", path)
		read.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID}}
		out, err := read.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("a process of the server's user read %s: %v %q", path, err, out)
		}
	}
	if n := metricValue(scrape(t, m[1]+"/metrics"), "process_open_fds", nil); n <= 0 {
		t.Errorf("process_open_fds = %v: the server could not read its own /proc/self/fd", n)
	}
}
