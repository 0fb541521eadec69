// Package memlock keeps the memory of this process out of swap, where
// the root key, key material and plaintext it holds in the clear would be
// written as they are and stay after the process ends.
//
// Lock calls mlockall(2) with MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT
// (Linux 4.4 or later), as HashiCorp Vault calls it (without MCL_ONFAULT)
// for its mlock setting: every page the process maps, now and later, its
// Go heap and stacks, its binary and the store's memory map of its file,
// stays in RAM once it is touched. MCL_ONFAULT locks a page when it is
// first touched rather than when it is mapped: the protection is the same,
// since a page holds nothing before it is touched and is locked from
// then on, but the memory the Go runtime has mapped for its heap and not
// used yet, and the pages of the store's map it has not read (free
// pages, the map's room to grow), take no RAM. Without it every map is
// read in whole when it is made: each growth of the store's map would
// read the whole file again, free pages too, holding the store's
// writer while it does.
//
// Limits:
//   - A process with CAP_SYS_PTRACE (root) still reads the memory, and the
//     kernel still writes locked pages into a hibernation image.
//   - Locked pages cannot be reclaimed: the process's resident memory,
//     the pages of the store's file it has read included, counts against
//     RAM for as long as it runs.
//   - Without CAP_IPC_LOCK the process may lock at most RLIMIT_MEMLOCK,
//     counted over all that it maps (its virtual size, not its resident
//     set): a later map past it fails with EAGAIN. A remap of the store's
//     file then fails the write that needed it; the Go runtime, whose heap
//     cannot grow, aborts the process. Give the process no limit
//     (ulimit -l unlimited, systemd's LimitMEMLOCK=infinity) or
//     CAP_IPC_LOCK.
//
// On systems other than Linux, Lock returns ErrUnsupported.
package memlock

import (
	"errors"
	"fmt"
)

// ErrUnsupported is returned by Lock where this package cannot lock the
// process's memory.
var ErrUnsupported = errors.New("locking the process's memory is supported on Linux only")

// size is n bytes in KiB, MiB or GiB, for a message.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
