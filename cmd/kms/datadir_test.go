package main_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// otherUID is a user other than the one running the tests: nobody.
const otherUID = 65534

// A server refuses a data directory that another user made or may write,
// and in its data directory a root.key or kms.db that is a symbolic link,
// is another user's, or whose mode lets others at it: such a directory may
// hold a root key or a key store that someone else knows. It refuses
// before reading or writing anything there.
func TestDataDirTrust(t *testing.T) {
	keyText := []byte(base64.StdEncoding.EncodeToString(randBytes(t, 32)) + "\n")
	write := func(t *testing.T, path string, data []byte, mode os.FileMode) {
		t.Helper()
		noErr(t, os.WriteFile(path, data, mode), "write %s", path)
		noErr(t, os.Chmod(path, mode), "chmod %s", path) // past the umask
	}
	chown := func(t *testing.T, paths ...string) {
		t.Helper()
		for _, p := range paths {
			noErr(t, os.Lchown(p, otherUID, otherUID), "chown %s", p)
		}
	}
	for _, c := range []struct {
		name    string
		another bool // needs root, to give a file to another user
		prepare func(t *testing.T, dir, outside string)
		want    string // in the refusal, after the path of the directory or file
	}{
		{"a directory others may write", false, func(t *testing.T, dir, outside string) {
			noErr(t, os.Chmod(dir, 0o777), "chmod")
		}, " has mode 0777"},
		{"a directory of another user", true, func(t *testing.T, dir, outside string) {
			chown(t, dir)
		}, " is owned by user 65534"},
		{"another user's directory with their root.key and an empty kms.db", true, func(t *testing.T, dir, outside string) {
			noErr(t, os.Chmod(dir, 0o755), "chmod")
			write(t, filepath.Join(dir, "root.key"), keyText, 0o644)
			write(t, filepath.Join(dir, "kms.db"), nil, 0o666)
			chown(t, dir, filepath.Join(dir, "root.key"), filepath.Join(dir, "kms.db"))
		}, " is owned by user 65534"},
		{"a root.key others may read", false, func(t *testing.T, dir, outside string) {
			write(t, filepath.Join(dir, "root.key"), keyText, 0o644)
		}, "/root.key has mode 0644"},
		{"a root.key that is a symbolic link", false, func(t *testing.T, dir, outside string) {
			write(t, filepath.Join(outside, "root.key"), keyText, 0o600)
			noErr(t, os.Symlink(filepath.Join(outside, "root.key"), filepath.Join(dir, "root.key")), "symlink")
		}, "/root.key is a symbolic link"},
		{"a root.key of another user", true, func(t *testing.T, dir, outside string) {
			write(t, filepath.Join(dir, "root.key"), keyText, 0o600)
			chown(t, filepath.Join(dir, "root.key"))
		}, "/root.key is owned by user 65534"},
		{"a kms.db that is a symbolic link", false, func(t *testing.T, dir, outside string) {
			write(t, filepath.Join(dir, "root.key"), keyText, 0o600)
			write(t, filepath.Join(outside, "kms.db"), nil, 0o600)
			noErr(t, os.Symlink(filepath.Join(outside, "kms.db"), filepath.Join(dir, "kms.db")), "symlink")
		}, "/kms.db is a symbolic link"},
		{"a kms.db others may write", false, func(t *testing.T, dir, outside string) {
			write(t, filepath.Join(dir, "root.key"), keyText, 0o600)
			write(t, filepath.Join(dir, "kms.db"), nil, 0o666)
		}, "/kms.db has mode 0666"},
		{"a kms.db of another user", true, func(t *testing.T, dir, outside string) {
			write(t, filepath.Join(dir, "root.key"), keyText, 0o600)
			write(t, filepath.Join(dir, "kms.db"), nil, 0o600)
			chown(t, filepath.Join(dir, "kms.db"))
		}, "/kms.db is owned by user 65534"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.another && os.Geteuid() != 0 {
				t.Skip("giving a file to another user needs root")
			}
			dir, outside := t.TempDir(), t.TempDir()
			c.prepare(t, dir, outside)
			before, beforeOutside := listDir(t, dir), listDir(t, outside)
			code, _, stderr := runToExit(t, baseEnv(), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir)
			if code == 0 || !strings.Contains(stderr, dir+c.want) {
				t.Fatalf("exit code %d, stderr:\n%s\nwant a refusal saying %q", code, stderr, dir+c.want)
			}
			if after := listDir(t, dir); !slices.Equal(after, before) {
				t.Errorf("the data directory held %v, and %v after the refusal", before, after)
			}
			if after := listDir(t, outside); !slices.Equal(after, beforeOutside) {
				t.Errorf("the files linked to were %v, and %v after the refusal", beforeOutside, after)
			}
		})
	}

	// A directory made by hand that only its owner may write serves, and
	// so does one the server makes.
	t.Run("made by hand", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "kms-data")
		noErr(t, os.Mkdir(dir, 0o755), "mkdir")
		noErr(t, os.Chmod(dir, 0o755), "chmod")
		s := startDev(t, dir)
		if code := s.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("SIGTERM: exit code %d", code)
		}
		s = startDev(t, dir)
		if code := s.stop(syscall.SIGTERM); code != 0 {
			t.Errorf("SIGTERM on a restart: exit code %d", code)
		}
	})
}

// listDir names the files in dir with their size and mode.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	noErr(t, err, "read %s", dir)
	var out []string
	for _, e := range entries {
		fi, err := e.Info()
		noErr(t, err, "stat %s", e.Name())
		out = append(out, fmt.Sprintf("%s %v %d", e.Name(), fi.Mode(), fi.Size()))
	}
	return out
}
