package main_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// A data directory of one's own is not enough: whoever may write a
// directory above it can move it away while the server runs, between two
// of its opens of files in it, and put one of theirs in its place, with a
// root key they know. So the server and the commands that open a data
// directory refuse one reached through a directory that another user owns
// or may write, following the symbolic links on the way, before they read
// or write anything; a sticky directory such as /tmp serves while the
// entry looked up in it is the user's, and so do a directory that the
// user's private group may write and the set-group-ID directory of a
// group of theirs (a Kubernetes fsGroup volume).
func TestDataDirPathTrust(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
	template := filepath.Join(t.TempDir(), "kms-data")
	s := startDev(t, template)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	keys := t.TempDir()
	rootKey := filepath.Join(keys, "root.key")
	copyInto(t, filepath.Join(template, "root.key"), rootKey)
	newKey := filepath.Join(keys, "new.key")
	if code, _, stderr := runToExit(t, baseEnv(), "root-key", "init", "--root-key-file", newKey); code != 0 {
		t.Fatalf("kms root-key init: exit %d\n%s", code, stderr)
	}
	backupFile := filepath.Join(keys, "kms.kmsbak")
	if code, _, stderr := runToExit(t, baseEnv(), "backup", "-o", backupFile, "--data-dir", template); code != 0 {
		t.Fatalf("kms backup: exit %d\n%s", code, stderr)
	}

	mkdir := func(t *testing.T, path string, mode os.FileMode, uid, gid int) string {
		t.Helper()
		noErr(t, os.Mkdir(path, 0o700), "mkdir")
		noErr(t, os.Chmod(path, mode), "chmod %s", path)
		noErr(t, os.Lchown(path, uid, gid), "chown %s", path)
		return path
	}
	ways := []struct {
		name string
		// layout makes directories in base and returns the data
		// directory, not made yet, and the directory the refusal
		// names ("" if the data directory serves).
		layout func(t *testing.T, base string) (dir, refused string)
		want   string // in the refusal, after "data directory DIR: REFUSED, "
	}{
		{"a parent others may write", func(t *testing.T, base string) (string, string) {
			p := mkdir(t, base+"/shared", 0o777, 0, 0)
			return p + "/kms-data", p
		}, "a directory it is reached through, has mode 0777"},
		{"a parent of another user", func(t *testing.T, base string) (string, string) {
			p := mkdir(t, base+"/theirs", 0o755, otherUID, otherUID)
			return p + "/kms-data", p
		}, "a directory it is reached through, is owned by user 65534"},
		{"a link on the way into a directory others may write", func(t *testing.T, base string) (string, string) {
			p := mkdir(t, base+"/shared", 0o777, 0, 0)
			mkdir(t, p+"/real", 0o700, 0, 0)
			noErr(t, os.Symlink("shared/real", base+"/link"), "symlink")
			return base + "/link/kms-data", p
		}, "a directory it is reached through, has mode 0777"},
		{"another user's link in a sticky directory", func(t *testing.T, base string) (string, string) {
			p := mkdir(t, base+"/sticky", 0o777|os.ModeSticky, 0, 0)
			noErr(t, os.Symlink(mkdir(t, base+"/ours", 0o700, 0, 0), p+"/link"), "symlink")
			noErr(t, os.Lchown(p+"/link", otherUID, otherUID), "chown")
			return p + "/link/kms-data", p + "/link"
		}, "on its way in the sticky directory " + "STICKY" + ", is owned by user 65534"},
		{"a set-group-ID parent of a group not the user's", func(t *testing.T, base string) (string, string) {
			p := mkdir(t, base+"/group", 0o775|os.ModeSetgid, 0, otherUID)
			return p + "/kms-data", p
		}, "a directory it is reached through, has mode 2775"},
		{"a parent another group may write", func(t *testing.T, base string) (string, string) {
			p := mkdir(t, base+"/group", 0o775, 0, otherUID)
			return p + "/kms-data", p
		}, "a directory it is reached through, has mode 0775"},
		// root's group, root, is the private group of a user named
		// root, as alice is alice's on Debian, where a umask of 002
		// makes every directory a user makes 0775.
		{"a parent the user's private group may write", func(t *testing.T, base string) (string, string) {
			return mkdir(t, base+"/group", 0o775, 0, 0) + "/kms-data", ""
		}, ""},
		{"a sticky parent", func(t *testing.T, base string) (string, string) {
			return mkdir(t, base+"/sticky", 0o777|os.ModeSticky, 0, 0) + "/kms-data", ""
		}, ""},
		{"a set-group-ID parent of the user's group", func(t *testing.T, base string) (string, string) {
			return mkdir(t, base+"/group", 0o775|os.ModeSetgid, 0, os.Getegid()) + "/kms-data", ""
		}, ""},
	}
	commands := []struct {
		name   string
		target bool // the command makes the data directory, not opens one
		// args are the command's; out is a path outside dir that it
		// would write, and must not on a refusal.
		args func(dir, out string) []string
	}{
		{"server", true, func(dir, _ string) []string {
			return []string{"server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir}
		}},
		{"root-key rotate", false, func(dir, _ string) []string {
			return []string{"root-key", "rotate", "--data-dir", dir, "--new-root-key-file", newKey}
		}},
		{"migrate from", false, func(dir, out string) []string {
			return []string{"migrate", "--from", dir, "--to", out}
		}},
		{"backup", false, func(dir, out string) []string {
			return []string{"backup", "-o", out, "--data-dir", dir}
		}},
		{"migrate to", true, func(dir, _ string) []string {
			return []string{"migrate", "--from", template, "--to", dir}
		}},
		{"restore", true, func(dir, _ string) []string {
			return []string{"restore", "-i", backupFile, "--data-dir", dir, "--root-key-file", rootKey}
		}},
	}
	for _, w := range ways {
		for _, c := range commands {
			t.Run(w.name+"/"+c.name, func(t *testing.T) {
				base, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
				dir, refused := w.layout(t, base)
				if !c.target {
					copyDir(t, template, dir)
				}
				before := treeState(t, base)
				if refused == "" {
					if c.name == "server" {
						s := startDev(t, dir)
						if code := s.stop(syscall.SIGTERM); code != 0 {
							t.Errorf("SIGTERM: exit code %d", code)
						}
						return
					}
					if code, stdout, stderr := runToExit(t, baseEnv(), c.args(dir, out)...); code != 0 {
						t.Fatalf("exit code %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
					}
					return
				}
				want := "data directory " + dir + ": " + refused + ", " + strings.ReplaceAll(w.want, "STICKY", filepath.Dir(refused))
				code, stdout, stderr := runToExit(t, baseEnv(), c.args(dir, out)...)
				if code == 0 || !strings.Contains(stderr, want) {
					t.Fatalf("exit code %d, stdout:\n%s\nstderr:\n%s\nwant a refusal saying %q", code, stdout, stderr, want)
				}
				if after := treeState(t, base); !slices.Equal(after, before) {
					t.Errorf("the directories held\n%v\nand after the refusal\n%v", before, after)
				}
				if _, err := os.Lstat(out); !os.IsNotExist(err) {
					t.Errorf("%s was written: %v", out, err)
				}
			})
		}
	}
}

// treeState names every file, directory and link under base with its
// mode, owner and group, and a hash of what it holds (or where it links).
func treeState(t *testing.T, base string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		var content []byte
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			content = []byte(target)
		case fi.Mode().IsRegular():
			if content, err = os.ReadFile(path); err != nil {
				return err
			}
		}
		st := fi.Sys().(*syscall.Stat_t)
		out = append(out, fmt.Sprintf("%s %v %d:%d %x", path, fi.Mode(), st.Uid, st.Gid, sha256.Sum256(content)))
		return nil
	})
	noErr(t, err, "walk %s", base)
	return out
}
