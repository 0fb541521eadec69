// Package nodump keeps the memory of this process, where root keys, key
// material and plaintext are held in the clear, from other processes of
// the same user and out of core dumps.
//
// Set marks the process not dumpable (prctl PR_SET_DUMPABLE 0),
// as ssh-agent and gpg-agent do: no core file is written when it crashes
// (GOTRACEBACK=crash, SIGABRT, gcore), and a process of the same user
// can no longer read /proc/PID/mem, /proc/PID/environ or the like, nor
// attach a debugger, whatever kernel.yama.ptrace_scope says (Debian's
// default, 0, lets any process of a user read the memory of every other).
// The process itself still reads its own /proc/self.
//
// Limits: a process with CAP_SYS_PTRACE (root) still reads the memory;
// memory swapped out is written to the swap device as it is (lock it
// into RAM with internal/memlock, --mlock; or use no swap, or encrypted
// swap).
package nodump

import "golang.org/x/sys/unix"

// Set marks the process not dumpable. It is kept across fork, and reset by
// execve of another program.
func Set() error { return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0) }

// Dumpable reports whether the process may be dumped and read by other
// processes of its user.
func Dumpable() (bool, error) {
	v, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	return v != 0, err
}
