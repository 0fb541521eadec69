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
// backup kept with what it backs up is lost with it. The directory
// holding path, as the system resolves it (parentOf), is compared with
// dir as a file (the same directory by any name or link); a dir or a
// parent of path that does not exist holds nothing. what names the flag
// or file in the error.
func RefuseOutputIn(dir, path, what string) error {
	if dir == "" {
		return nil
	}
	di, err := statIfThere(dir)
	if di == nil {
		return err
	}
	pi, err := statIfThere(parentOf(path))
	if pi == nil {
		return err
	}
	if os.SameFile(di, pi) {
		return fmt.Errorf("%s %s is in %s, whose key store or audit trail is being read: write it elsewhere", what, path, dir)
	}
	return nil
}

// RefuseAppendTo refuses path, a file a command is about to append to
// (kms audit events --output), as RefuseOutputIn does, and also if it is
// already a file of dir by another name: a symbolic link or a hard link
// elsewhere to a segment of the trail would have the appended lines land
// in that segment. A path that does not exist yet, or a dir that does
// not, holds nothing of dir's.
func RefuseAppendTo(dir, path, what string) error {
	if err := RefuseOutputIn(dir, path, what); err != nil || dir == "" {
		return err
	}
	pi, err := statIfThere(path)
	if pi == nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err == nil && os.SameFile(fi, pi) {
			return fmt.Errorf("%s %s is %s in %s, whose key store or audit trail is being read: write it elsewhere", what, path, e.Name(), dir)
		}
	}
	return nil
}

// RefuseOutputOver refuses path, a file a command is about to write by
// renaming a new file into place (a backup), if the rename would replace
// file, one the command reads (the root key file): the same name in the
// same directory, by whatever name the directory is reached, file being
// followed through its symbolic links. A path that is itself a link is
// not refused, as the rename replaces the link; a file that does not
// exist is not replaced.
func RefuseOutputOver(file, path, what string) error {
	if file == "" {
		return nil
	}
	target, err := filepath.EvalSymlinks(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if filepath.Base(target) != filepath.Base(path) {
		return nil
	}
	ti, err := os.Stat(filepath.Dir(target))
	if err != nil {
		return err
	}
	pi, err := statIfThere(parentOf(path))
	if pi == nil {
		return err
	}
	if os.SameFile(ti, pi) {
		return fmt.Errorf("%s %s would replace %s, which is being read: write it elsewhere", what, path, file)
	}
	return nil
}

// parentOf is the directory holding path as the system resolves it: the
// text of path up to its last element. filepath.Dir cleans the text
// first, taking "link/.." away where the system would follow the link
// and then go to the parent of where it leads.
func parentOf(path string) string {
	i := len(path)
	for i > 0 && !os.IsPathSeparator(path[i-1]) {
		i--
	}
	if i == 0 {
		return "."
	}
	return path[:i]
}

// statIfThere is os.Stat, but a path that does not exist gives neither
// information nor an error.
func statIfThere(path string) (fs.FileInfo, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return fi, nil
}
