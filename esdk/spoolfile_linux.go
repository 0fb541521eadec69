package esdk

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// openSpoolFile opens a new file for a spool in dir (the system's
// temporary directory if empty). On Linux it is an O_TMPFILE file, which
// never has a name, so nothing is left behind however the process ends,
// even killed between creating the file and unlinking it; name is then
// "". Where the file system does not support O_TMPFILE, it falls back to
// createUnlinked.
func openSpoolFile(dir string) (f *os.File, name string, err error) {
	if dir == "" {
		dir = os.TempDir()
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed spool file)")), "", nil
	}
	return createUnlinked(dir)
}
