package datadir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// maxLinks is how many symbolic links checkPath follows in one path, as
// many as Linux does in one lookup.
const maxLinks = 40

// checkPath refuses the data directory dir if a directory it is reached
// through could let another user replace it: whoever may rename entries
// in a directory above the data directory can move it away, between two
// of the server's opens of files in it, and put one of theirs in its
// place, with a root key they know. It is OpenSSH's StrictModes rule for
// the parents of authorized_keys.
//
// The path is made absolute and walked from /, each symbolic link on the
// way followed where the kernel would follow it, so that the directories
// checked are those the server's opens go through: every directory in
// which a name of the path is looked up must be owned by root or the
// running user, and no one else may write it, with two exceptions:
//
//   - a sticky directory (/tmp), where only an entry's owner may rename or
//     remove it, if the entry looked up there (a directory or a link) is
//     root's or the running user's, or does not exist yet;
//   - a directory that only its group may write besides its owner, if
//     that group is the running user's private group (the user's primary
//     group, named as the user: Debian and its kin give each user one and
//     a umask of 002, so every directory a user makes is 0775), or if the
//     directory is set-group-ID and the running user is in its group: the
//     shape of a Kubernetes fsGroup volume, whose group the kubelet gives
//     to every container of the pod and to nothing else. Every member of
//     the group is then trusted as the running user is.
//
// The walk stops at the first name that does not exist: Prepare makes the
// rest (mode 0700) in a directory checked here. The data directory itself
// is Check's.
//
// owner, if not -1, is a user trusted as the running user is, with its
// private group (the set-group-ID rule stays the running user's: the
// groups the owner's server runs in are not known here): the owner of a
// data directory whose server the running user asks for a backup
// (CheckServed), whose server took the same parents.
func checkPath(dir string, owner int) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	groups, err := ourGroups()
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	cur, rest, links := "/", components(abs), 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case ".":
			continue
		case "..":
			cur = filepath.Dir(cur) // cur has no links in it: this is the kernel's ..
			continue
		}
		next := filepath.Join(cur, name)
		entry, err := os.Lstat(next)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("data directory %s: %w", dir, err)
		}
		if err != nil {
			entry = nil
		}
		if err := checkParent(dir, cur, entry, groups, owner); err != nil {
			return err
		}
		switch {
		case entry == nil:
			return nil
		case entry.Mode()&fs.ModeSymlink != 0:
			if links++; links > maxLinks {
				return fmt.Errorf("data directory %s: more than %d symbolic links on the way", dir, maxLinks)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return fmt.Errorf("data directory %s: %w", dir, err)
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			rest = append(components(target), rest...)
		case !entry.IsDir():
			if len(rest) > 0 {
				return fmt.Errorf("data directory %s: %s is not a directory", dir, next)
			}
			return nil // Check says what is wrong with it
		default:
			cur = next
		}
	}
	return nil
}

// checkParent refuses the directory parent, through which the data
// directory dir is reached, if it could let another user rename entry, the
// entry of the path looked up in it (nil if there is none yet), as
// checkPath says; groups are the running user's groups, owner checkPath's.
func checkParent(dir, parent string, entry fs.FileInfo, groups []int, owner int) error {
	trusted := func(fi fs.FileInfo) bool { return ownedByUs(fi) || owner != -1 && fileOwner(fi) == owner }
	fi, err := os.Lstat(parent)
	if err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	mode := fi.Mode()
	sticky := mode&fs.ModeSticky != 0
	switch {
	case !trusted(fi):
		return fmt.Errorf("data directory %s: %s, a directory it is reached through, is owned by user %d, not by the user running kms (%d) or root: that user may move the data directory away and put one of theirs in its place. Use a data directory whose every parent only root or you own and may write (such as /var/lib/kms), or chown %s to root", dir, parent, fileOwner(fi), os.Geteuid(), parent)
	case mode.Perm()&0o022 == 0:
		return nil
	case sticky && (entry == nil || trusted(entry)):
		return nil
	case sticky:
		return fmt.Errorf("data directory %s: %s, on its way in the sticky directory %s, is owned by user %d, who may remove it and put another in its place. Name a path whose every part is root's or yours", dir, filepath.Join(parent, entry.Name()), parent, fileOwner(entry))
	case mode.Perm()&0o002 == 0 && mode&fs.ModeSetgid != 0 && slices.Contains(groups, group(fi)):
		return nil
	case mode.Perm()&0o002 == 0 && (privateGroup(group(fi)) || owner != -1 && ownersPrivateGroup(owner, group(fi))):
		return nil
	}
	return fmt.Errorf("data directory %s: %s, a directory it is reached through, has mode %s: other users may move the data directory away and put one of theirs in its place. Use a data directory whose every parent only root or you may write (such as /var/lib/kms), or chmod go-w %s", dir, parent, modeString(mode), parent)
}

// components are the names of path, a slash-separated path, in order.
func components(path string) []string {
	return strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
}

// ourGroups are the running process's effective group and its
// supplementary groups.
func ourGroups() ([]int, error) {
	groups, err := os.Getgroups()
	if err != nil {
		return nil, err
	}
	return append(groups, os.Getegid()), nil
}

// privateGroup reports whether gid is the running user's private group:
// its primary group, named as the user is. A user the system cannot name
// (a container's bare user id) has none.
func privateGroup(gid int) bool {
	if gid != os.Getegid() {
		return false
	}
	u, err := user.Current()
	return err == nil && namedAs(u, gid)
}

// ownersPrivateGroup reports whether gid is the private group of the user
// uid: its primary group, named as the user is.
func ownersPrivateGroup(uid, gid int) bool {
	u, err := user.LookupId(strconv.Itoa(uid))
	return err == nil && u.Gid == strconv.Itoa(gid) && namedAs(u, gid)
}

// namedAs reports whether the group gid has the name of the user u.
func namedAs(u *user.User, gid int) bool {
	g, err := user.LookupGroupId(strconv.Itoa(gid))
	return err == nil && g.Name == u.Username
}

// group is the group id of fi, or -1 if the system does not say.
func group(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Gid)
	}
	return -1
}

// modeString is mode's permission bits in octal, with the set-group-ID
// and sticky bits (2775, 1777).
func modeString(mode fs.FileMode) string {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	return fmt.Sprintf("%04o", m)
}

// CheckServed is Check for a data directory whose running server the
// running user asks for a snapshot (kms backup), and returns the user id
// of the directory's owner: the one user, besides the running one, whose
// process may answer on its backup socket. The directory need not be the
// running user's (root backs up the server of the kms user), but it and
// every directory above it must be its owner's, root's or the running
// user's, and writable by no one else, as Check says: whoever else could
// write one of them could put a socket of theirs under the name, or a
// directory of theirs in its place.
func CheckServed(dir string) (owner int, err error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return -1, fmt.Errorf("data directory: %w", err)
	}
	owner = fileOwner(fi)
	if err := checkPath(dir, owner); err != nil {
		return -1, err
	}
	switch {
	case !fi.IsDir():
		return -1, fmt.Errorf("data directory %s is not a directory", dir)
	case fi.Mode().Perm()&0o022 != 0:
		return -1, fmt.Errorf("data directory %s has mode %04o: other users may put a socket of theirs in it, and no server of kms runs on it: chmod 700 it, and restart the server", dir, fi.Mode().Perm())
	}
	return owner, nil
}
