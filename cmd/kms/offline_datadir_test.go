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

	"github.com/openkms/kms/internal/store/pgtest"
)

// The commands that open a data directory while no server runs hold it to
// the server's rules (TestDataDirTrust): another local user may prepare a
// data directory in a shared place, with a root.key they know and a kms.db of
// their making, and wait for an administrator to run kms root-key rotate,
// kms migrate, kms backup or kms restore on it. Each refuses such a
// directory before it reads the root key there or writes anything, in it
// or elsewhere, and works on one of its own.
func TestOfflineDataDirTrust(t *testing.T) {
	template := filepath.Join(t.TempDir(), "kms-data")
	s := startDev(t, template)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	keys := t.TempDir()
	oldKey, newKey := filepath.Join(keys, "old.key"), filepath.Join(keys, "new.key")
	copyInto(t, filepath.Join(template, "root.key"), oldKey)
	if code, _, stderr := runToExit(t, baseEnv(), "root-key", "init", "--root-key-file", newKey); code != 0 {
		t.Fatalf("kms root-key init: exit %d\n%s", code, stderr)
	}
	backupFile := filepath.Join(keys, "kms.kmsbak")
	if code, _, stderr := runToExit(t, baseEnv(), "backup", "-o", backupFile, "--data-dir", template); code != 0 {
		t.Fatalf("kms backup: exit %d\n%s", code, stderr)
	}

	chown := func(t *testing.T, paths ...string) {
		t.Helper()
		for _, p := range paths {
			noErr(t, os.Lchown(p, otherUID, otherUID), "chown %s", p)
		}
	}
	// The ways a directory is not the running user's own, applied to a
	// copy of a dev data directory or to an empty directory.
	type untrusted struct {
		name    string
		another bool // needs root, to give a file to another user
		prepare func(t *testing.T, dir string)
		want    string // in the refusal, after the path of the directory
		// own: the directory is the user's, only its root.key is not
		// as it should be. A command may open (and so write to) the
		// store before it reads the key.
		own bool
	}
	writable := untrusted{"a directory others may write", false, func(t *testing.T, dir string) {
		noErr(t, os.Chmod(dir, 0o777), "chmod")
	}, " has mode 0777", false}
	anothers := untrusted{"another user's directory", true, func(t *testing.T, dir string) {
		noErr(t, os.Chmod(dir, 0o755), "chmod")
		entries, err := os.ReadDir(dir)
		noErr(t, err, "read %s", dir)
		for _, e := range entries {
			chown(t, filepath.Join(dir, e.Name()))
		}
		chown(t, dir)
	}, " is owned by user 65534", false}
	stores := []untrusted{writable, anothers,
		{"a root.key others may read", false, func(t *testing.T, dir string) {
			noErr(t, os.Chmod(filepath.Join(dir, "root.key"), 0o644), "chmod")
		}, "/root.key has mode 0644", true},
		{"a root.key that is a symbolic link", false, func(t *testing.T, dir string) {
			link := filepath.Join(dir, "root.key")
			noErr(t, os.Remove(link), "remove")
			noErr(t, os.Symlink(oldKey, link), "symlink")
		}, "/root.key is a symbolic link", true},
	}
	targets := []untrusted{writable, anothers}

	for _, c := range []struct {
		name   string
		target bool // the command writes into a new directory, not an existing store
		// args are the command's; out is a path outside dir that it
		// would write, and must not on a refusal.
		args func(t *testing.T, dir, out string) []string
	}{
		{"root-key rotate", false, func(_ *testing.T, dir, _ string) []string {
			return []string{"root-key", "rotate", "--data-dir", dir, "--new-root-key-file", newKey}
		}},
		{"migrate from", false, func(_ *testing.T, dir, out string) []string {
			return []string{"migrate", "--from", dir, "--to", out}
		}},
		{"backup", false, func(_ *testing.T, dir, out string) []string {
			return []string{"backup", "-o", out, "--data-dir", dir}
		}},
		{"migrate to", true, func(_ *testing.T, dir, _ string) []string {
			return []string{"migrate", "--from", template, "--to", dir}
		}},
		{"restore", true, func(_ *testing.T, dir, _ string) []string {
			return []string{"restore", "-i", backupFile, "--data-dir", dir, "--root-key-file", oldKey}
		}},
		// The store goes into PostgreSQL, the trail's files into dir.
		{"restore to PostgreSQL", true, func(t *testing.T, dir, _ string) []string {
			return []string{"restore", "-i", backupFile, "--storage", pgtest.Start(t), "--data-dir", dir, "--root-key-file", oldKey}
		}},
	} {
		ways := stores
		if c.target {
			ways = targets
		}
		for _, u := range ways {
			t.Run(c.name+"/"+u.name, func(t *testing.T) {
				if u.another && os.Geteuid() != 0 {
					t.Skip("giving a file to another user needs root")
				}
				dir, out := filepath.Join(t.TempDir(), "kms-data"), filepath.Join(t.TempDir(), "out")
				if c.target {
					noErr(t, os.Mkdir(dir, 0o700), "mkdir")
				} else {
					copyDir(t, template, dir)
				}
				u.prepare(t, dir)
				state := func() []string {
					st := dirState(t, dir)
					if u.own {
						st = slices.DeleteFunc(st, func(s string) bool { return strings.HasPrefix(s, "kms.db ") })
					}
					return st
				}
				before := state()
				code, stdout, stderr := runToExit(t, baseEnv(), c.args(t, dir, out)...)
				if code == 0 || !strings.Contains(stderr, dir+u.want) {
					t.Fatalf("exit code %d, stdout:\n%s\nstderr:\n%s\nwant a refusal saying %q", code, stdout, stderr, dir+u.want)
				}
				if after := state(); !slices.Equal(after, before) {
					t.Errorf("the data directory held\n%v\nand after the refusal\n%v", before, after)
				}
				if _, err := os.Lstat(out); !os.IsNotExist(err) {
					t.Errorf("%s was written: %v", out, err)
				}
			})
		}
		// A directory of one's own serves.
		t.Run(c.name+"/one's own", func(t *testing.T) {
			dir, out := filepath.Join(t.TempDir(), "kms-data"), filepath.Join(t.TempDir(), "out")
			if !c.target {
				copyDir(t, template, dir)
			}
			if code, stdout, stderr := runToExit(t, baseEnv(), c.args(t, dir, out)...); code != 0 {
				t.Fatalf("exit code %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
		})
	}
}

// dirState names the files in dir with their mode, owner and a hash of
// what they hold (or where they link).
func dirState(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	noErr(t, err, "read %s", dir)
	var out []string
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(path)
		noErr(t, err, "stat %s", path)
		var content []byte
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(path)
			noErr(t, err, "readlink %s", path)
			content = []byte(target)
		} else {
			content, err = os.ReadFile(path)
			noErr(t, err, "read %s", path)
		}
		out = append(out, fmt.Sprintf("%s %v %d %x", e.Name(), fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid, sha256.Sum256(content)))
	}
	return out
}

// A relative --data-dir names one directory to kms restore, as it names
// one to the server: the one filepath.Abs makes of it, whose path the
// data directory checks (package datadir) walk. From a working directory
// reached through a symbolic link, ".." goes up from the link's name for
// the shell and filepath.Abs, but from its target for the system: restore
// wrote the key store to the first and the audit trail files to the
// second, here in a directory others may write, which it never checked.
func TestRestoreRelativeDataDirThroughLink(t *testing.T) {
	template := filepath.Join(t.TempDir(), "kms-data")
	s := startDev(t, template)
	if code := s.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("the dev server exited %d on SIGTERM", code)
	}
	keys := t.TempDir()
	rootKey, backupFile := filepath.Join(keys, "root.key"), filepath.Join(keys, "kms.kmsbak")
	copyInto(t, filepath.Join(template, "root.key"), rootKey)
	if code, _, stderr := runToExit(t, baseEnv(), "backup", "-o", backupFile, "--data-dir", template); code != 0 {
		t.Fatalf("kms backup: exit %d\n%s", code, stderr)
	}

	base := t.TempDir()
	shared := filepath.Join(base, "shared")
	noErr(t, os.MkdirAll(filepath.Join(shared, "proj"), 0o700), "mkdir")
	noErr(t, os.Chmod(shared, 0o777), "chmod")
	home := filepath.Join(base, "home")
	noErr(t, os.Mkdir(home, 0o700), "mkdir")
	wd := filepath.Join(home, "proj")
	noErr(t, os.Symlink("../shared/proj", wd), "symlink")

	p := startProcIn(t, wd, baseEnv("PWD="+wd), "restore", "-i", backupFile, "--data-dir", "../restored", "--root-key-file", rootKey)
	if code := p.wait(exitTimeout); code != 0 {
		t.Fatalf("kms restore --data-dir ../restored: exit %d\n%s%s", code, p.stdout.String(), p.stderr.String())
	}
	restored := filepath.Join(home, "restored")
	for _, name := range []string{"kms.db", "audit.log"} {
		if _, err := os.Stat(filepath.Join(restored, name)); err != nil {
			t.Errorf("the restored data directory %s: %v", restored, err)
		}
	}
	if entries, err := os.ReadDir(shared); err != nil || len(entries) != 1 {
		t.Errorf("kms restore wrote into %s, which others may write: %v, %v", shared, entries, err)
	}
}
