package datadir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPrepareDataDir(t *testing.T) {
	asRoot := os.Geteuid() == 0
	for _, c := range []struct {
		name     string
		needRoot bool
		// make returns the data directory to prepare.
		make func(t *testing.T, base string) string
		want string // in the refusal; "" if allowed
	}{
		{"new", false, func(t *testing.T, base string) string { return filepath.Join(base, "a", "kms-data") }, ""},
		{"mode 0700", false, func(t *testing.T, base string) string { return mkdir(t, base, 0o700) }, ""},
		{"mode 0755", false, func(t *testing.T, base string) string { return mkdir(t, base, 0o755) }, ""},
		{"mode 0770", false, func(t *testing.T, base string) string { return mkdir(t, base, 0o770) }, "has mode 0770"},
		{"mode 0702", false, func(t *testing.T, base string) string { return mkdir(t, base, 0o702) }, "has mode 0702"},
		{"sticky and world-writable", false, func(t *testing.T, base string) string { return mkdir(t, base, 0o1777) }, "has mode 0777"},
		{"a file", false, func(t *testing.T, base string) string {
			p := filepath.Join(base, "kms-data")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}, "not a directory"},
		{"a link of ours", false, func(t *testing.T, base string) string {
			link := filepath.Join(base, "link")
			if err := os.Symlink(mkdir(t, base, 0o700), link); err != nil {
				t.Fatal(err)
			}
			return link
		}, ""},
		{"another user's", true, func(t *testing.T, base string) string {
			d := mkdir(t, base, 0o700)
			if err := os.Chown(d, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return d
		}, "is owned by user 65534"},
		{"another user's link to a directory of ours", true, func(t *testing.T, base string) string {
			link := filepath.Join(base, "link")
			if err := os.Symlink(mkdir(t, base, 0o700), link); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(link, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return link
		}, "is a symbolic link owned by user 65534"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.needRoot && !asRoot {
				t.Skip("giving a file to another user needs root")
			}
			dir := c.make(t, t.TempDir())
			err := Prepare(dir)
			if c.want == "" {
				if err != nil {
					t.Fatalf("Prepare = %v, want nil", err)
				}
				if c.name != "new" {
					return
				}
				if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
					t.Fatalf("the new data directory: %v, %v; want a directory of mode 0700", fi, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Prepare = %v, want a refusal naming %s and saying %q", err, dir, c.want)
			}
		})
	}
}

func TestDataFiles(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "root.key")
	if _, err := ReadSecret(key); !os.IsNotExist(err) {
		t.Fatalf("ReadSecret of a missing file = %v, want not exist", err)
	}
	if err := CheckStore(filepath.Join(dir, "kms.db")); err != nil {
		t.Fatalf("CheckStore of a missing file = %v, want nil", err)
	}
	for _, c := range []struct {
		mode      os.FileMode
		secretErr string // ReadSecret's refusal, "" if allowed
		storeErr  string // CheckStore's
	}{
		{0o600, "", ""},
		{0o400, "", ""},
		{0o640, "has mode 0640", ""},
		{0o644, "has mode 0644", ""},
		{0o604, "has mode 0604", ""},
		{0o620, "has mode 0620", "has mode 0620"},
		{0o666, "has mode 0666", "has mode 0666"},
	} {
		if err := os.WriteFile(key, []byte("k"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(key, c.mode); err != nil {
			t.Fatal(err)
		}
		b, err := ReadSecret(key)
		if c.secretErr == "" && (err != nil || string(b) != "k") || c.secretErr != "" && (err == nil || b != nil || !strings.Contains(err.Error(), key+" "+c.secretErr)) {
			t.Errorf("ReadSecret of mode %04o = %q, %v; want %q", c.mode, b, err, c.secretErr)
		}
		err = CheckStore(key)
		if c.storeErr == "" && err != nil || c.storeErr != "" && (err == nil || !strings.Contains(err.Error(), key+" "+c.storeErr)) {
			t.Errorf("CheckStore of mode %04o = %v; want %q", c.mode, err, c.storeErr)
		}
		os.Remove(key)
	}
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, key); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadSecret(key); err == nil || b != nil || !strings.Contains(err.Error(), key+" is a symbolic link") {
		t.Errorf("ReadSecret of a link = %q, %v", b, err)
	}
	if err := CheckStore(key); err == nil || !strings.Contains(err.Error(), key+" is a symbolic link") {
		t.Errorf("CheckStore of a link = %v", err)
	}
}

// mkdir makes a new directory in base and gives it mode, past the umask.
func mkdir(t *testing.T, base string, mode os.FileMode) string {
	t.Helper()
	d, err := os.MkdirTemp(base, "kms-data")
	if err != nil {
		t.Fatal(err)
	}
	if mode&0o1000 != 0 {
		mode = mode&0o777 | os.ModeSticky
	}
	if err := os.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	return d
}

// Check leaves a missing directory to Prepare: it is no one's yet, and
// Check makes nothing.
func TestCheckMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kms-data")
	if err := Check(dir); err != nil {
		t.Fatalf("Check of a missing directory = %v, want nil", err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Fatalf("Check made %s: %v", dir, err)
	}
}
