//go:build !linux

package esdk

import "os"

// openSpoolFile opens a new file for a spool in dir (the system's
// temporary directory if empty), with createUnlinked.
func openSpoolFile(dir string) (f *os.File, name string, err error) {
	return createUnlinked(dir)
}
