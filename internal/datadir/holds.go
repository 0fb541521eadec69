package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// RefuseOutputIn refuses path, a file a command is about to write (a
// backup, an export of the trail), if it would be an entry of dir itself,
// a data directory or an archive of its trail that the command reads: a
// file written there could take the place of the key store, the root key
// or a segment of the audit trail (kms.db, root.key, audit.log), and a
// backup kept with what it backs up is lost with it. The directory holding path is compared with
// dir as a file (the same directory by any name or link); a dir or a
// parent of path that does not exist holds nothing. what names the flag
// or file in the error.
func RefuseOutputIn(dir, path, what string) error {
	if dir == "" {
		return nil
	}
	di, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pi, err := os.Stat(filepath.Dir(path))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if os.SameFile(di, pi) {
		return fmt.Errorf("%s %s is in %s, whose key store or audit trail is being read: write it elsewhere", what, path, dir)
	}
	return nil
}
