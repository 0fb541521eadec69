package memlock

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// capIPCLock is CAP_IPC_LOCK's bit in /proc/self/status's CapEff.
const capIPCLock = 14

// Lock locks every page of the process into RAM, those mapped now and
// those mapped later, each from when it is first touched. Its error is one
// line that names the cause and, where the fix is the process's limit or
// capabilities, the fix. A process that Lock failed for is not locked.
func Lock() error {
	err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.ENOMEM):
		return fmt.Errorf("mlockall: %v: the process maps %s, more than RLIMIT_MEMLOCK (%s) lets it lock: "+
			"lift the limit (ulimit -l unlimited; systemd: LimitMEMLOCK=infinity) or grant the CAP_IPC_LOCK capability (a container: --cap-add IPC_LOCK)",
			err, mapped(), limitText())
	case errors.Is(err, unix.EINVAL):
		return fmt.Errorf("mlockall: %v: MCL_ONFAULT needs Linux 4.4 or later", err)
	}
	return fmt.Errorf("mlockall: %w", err)
}

// Bounded reports whether the pages the process may lock are bounded
// (RLIMIT_MEMLOCK is not unlimited and the process lacks CAP_IPC_LOCK),
// and the bound in bytes: a locked process that maps more than it fails
// to map.
func Bounded() (limit uint64, bounded bool) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return 0, false
	}
	if caps, ok := statusField("CapEff"); ok {
		if eff, err := strconv.ParseUint(caps, 16, 64); err == nil && eff&(1<<capIPCLock) != 0 {
			return 0, false
		}
	}
	return rl.Cur, true
}

// limitText is RLIMIT_MEMLOCK for a message.
func limitText() string {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		return "unknown"
	}
	if rl.Cur == unix.RLIM_INFINITY || rl.Cur > math.MaxInt64 {
		return "unlimited"
	}
	return size(int64(rl.Cur))
}

// mapped is the process's virtual size (VmSize), for a message.
func mapped() string {
	v, ok := statusField("VmSize")
	if !ok {
		return "more than it may lock"
	}
	kb, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		return v
	}
	return size(kb << 10)
}

// statusField is the value of the field name of /proc/self/status.
func statusField(name string) (string, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == name {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}
