// Package datadir decides whether a data directory, and the root key and
// key store in it, may be trusted by the user running kms.
//
// Every command that opens a data directory trusts what it holds: a dev
// root.key seals every key and credential, kms.db is the key store, and
// the audit trail, the dev TLS key and the credentials file are there too.
// A directory another user made, or may write, could hold a root.key that
// user knows and a kms.db they can read or wrote themselves: the server
// would serve both, kms root-key rotate would rewrap their store and
// replace their root.key, kms migrate and kms restore would write into a
// directory they can then empty or swap, and kms backup would
// authenticate their store under the real root key. So such a directory is
// refused, and so is one of the user's own in a directory another user may
// write (who could swap it for theirs), and so are a root.key or kms.db in
// it that another user could have put there or can get at.
//
// Root counts as the running user's own: it can read and write everything
// anyway. docs/operations.md ("The data directory") states the rules for
// users.
package datadir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Prepare makes the data directory dir (mode 0700, with any missing
// parent) if it does not exist, then refuses it as Check does. Nothing is
// made in a directory that could let another user replace the data
// directory (checkPath).
func Prepare(dir string) error {
	if err := checkPath(dir, -1); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	return Check(dir)
}

// Check refuses the data directory dir if another user owns it or group
// or others may write it. A symbolic link naming it must be the user's
// own too: whoever owns it can point it elsewhere. So must the directories
// above it be, as checkPath says: whoever may write one of them can
// replace the data directory. A directory that does not exist is no one's
// yet: Check accepts it if the directories above it that exist pass, and
// Prepare makes it.
func Check(dir string) error {
	if err := checkPath(dir, -1); err != nil {
		return err
	}
	li, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if li.Mode()&fs.ModeSymlink != 0 && !ownedByUs(li) {
		return fmt.Errorf("data directory %s is a symbolic link owned by user %d, not by the user running kms (%d), who could point it elsewhere: name the directory itself with --data-dir", dir, fileOwner(li), os.Geteuid())
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	switch {
	case !fi.IsDir():
		return fmt.Errorf("data directory %s is not a directory", dir)
	case !ownedByUs(fi):
		return fmt.Errorf("data directory %s is owned by user %d, not by the user running kms (%d): another user may have put a root key or a key store in it. Use a directory of your own (a new data directory is made with mode 0700), or run kms as its owner, or, if the files in it are yours, chown the directory", dir, fileOwner(fi), os.Geteuid())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("data directory %s has mode %04o: other users may add or replace files in it. Use a directory of your own (a new data directory is made with mode 0700), or, if the files in it are yours, chmod 700 the directory", dir, fi.Mode().Perm())
	}
	return nil
}

// CheckStore refuses the key store file path (a data directory's kms.db)
// if it is a symbolic link, another user's, or writable by group or
// others. Readable by others is allowed: every secret in it is sealed
// under the root key. A missing file is fine: it is made when the store is
// opened. In a directory that Check accepted no one else can swap the
// file afterwards, and boltstore opens it without following a link.
func CheckStore(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return checkFile(path, fi, 0o022, "users other than its owner may change it: chmod 600 it")
}

// ReadSecret reads path, a secret kept in a data directory (a dev
// root.key), without following a symbolic link, and refuses it if it is
// another user's or if group or others may read or write it. A missing
// file is an error for which errors.Is(err, fs.ErrNotExist) holds.
func ReadSecret(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link: kms uses only files of its own in a data directory. Put the key in the file itself (chmod 600 it), or pass the file it links to with --root-key-file", path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkFile(path, fi, 0o077, "users other than its owner may read or change it: chmod 600 it, and if someone else may have read the key, move the key store to a new root key (kms root-key rotate)"); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

// checkFile refuses the file path of a data directory, as fi describes
// it, if it is not a regular file of the running user's, or if its mode
// has a bit of mask; why says what that bit allows, and what to do about
// it.
func checkFile(path string, fi fs.FileInfo, mask fs.FileMode, why string) error {
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s is a symbolic link: kms uses only files of its own in a data directory. Replace the link with the file it points to", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case !ownedByUs(fi):
		return fmt.Errorf("%s is owned by user %d, not by the user running kms (%d): another user may have put it there. Remove it if it is not yours, else chown it", path, fileOwner(fi), os.Geteuid())
	case fi.Mode().Perm()&mask != 0:
		return fmt.Errorf("%s has mode %04o: %s", path, fi.Mode().Perm(), why)
	}
	return nil
}

// ownedByUs reports whether fi is owned by the running user or by root.
func ownedByUs(fi fs.FileInfo) bool {
	uid := fileOwner(fi)
	return uid == os.Geteuid() || uid == 0
}

// fileOwner is the user id that owns fi, or -1 if the system does not say.
func fileOwner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
