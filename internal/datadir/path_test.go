package datadir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The directories a data directory is reached through, each symbolic link
// on the way followed, must let no other user move it away.
func TestCheckPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
	dirMode := func(t *testing.T, path string, mode os.FileMode) string {
		t.Helper()
		if err := os.MkdirAll(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	chown := func(t *testing.T, path string, uid, gid int) {
		t.Helper()
		if err := os.Lchown(path, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	symlink := func(t *testing.T, target, link string) {
		t.Helper()
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		// layout makes directories in base and returns the data
		// directory, which may not exist yet, and the directory the
		// refusal must name.
		layout func(t *testing.T, base string) (dir, refused string)
		want   string // in the refusal, after ", "; "" if allowed
	}{
		{"parents of root's", func(t *testing.T, base string) (string, string) {
			return filepath.Join(dirMode(t, base+"/a", 0o755), "kms-data"), ""
		}, ""},
		{"a parent others may write", func(t *testing.T, base string) (string, string) {
			p := dirMode(t, base+"/a", 0o777)
			return filepath.Join(p, "kms-data"), p
		}, "a directory it is reached through, has mode 0777"},
		{"a parent another group may write", func(t *testing.T, base string) (string, string) {
			p := dirMode(t, base+"/a", 0o775)
			chown(t, p, 0, 65534)
			return filepath.Join(p, "kms-data"), p
		}, "a directory it is reached through, has mode 0775"},
		{"a parent the user's private group may write", func(t *testing.T, base string) (string, string) {
			// root's group is root: the private group of a user
			// named root.
			p := dirMode(t, base+"/a", 0o775)
			chown(t, p, 0, 0)
			return filepath.Join(p, "kms-data"), ""
		}, ""},
		{"a grandparent others may write", func(t *testing.T, base string) (string, string) {
			p := dirMode(t, base+"/a", 0o777)
			return filepath.Join(dirMode(t, p+"/b", 0o700), "kms-data"), p
		}, "a directory it is reached through, has mode 0777"},
		{"a parent of another user", func(t *testing.T, base string) (string, string) {
			p := dirMode(t, base+"/a", 0o755)
			chown(t, p, 65534, 65534)
			return filepath.Join(p, "kms-data"), p
		}, "a directory it is reached through, is owned by user 65534"},
		{"a sticky parent", func(t *testing.T, base string) (string, string) {
			return filepath.Join(dirMode(t, base+"/a", 0o777|os.ModeSticky), "kms-data"), ""
		}, ""},
		{"a directory of ours in a sticky parent", func(t *testing.T, base string) (string, string) {
			p := dirMode(t, base+"/a", 0o777|os.ModeSticky)
			return filepath.Join(dirMode(t, p+"/b", 0o700), "kms-data"), ""
		}, ""},
		{"another user's link in a sticky parent", func(t *testing.T, base string) (string, string) {
			p := dirMode(t, base+"/a", 0o777|os.ModeSticky)
			symlink(t, dirMode(t, base+"/ours", 0o700), p+"/link")
			chown(t, p+"/link", 65534, 65534)
			return p + "/link/kms-data", p + "/link"
		}, "on its way in the sticky directory"},
		{"a link into a directory others may write", func(t *testing.T, base string) (string, string) {
			shared := dirMode(t, base+"/shared", 0o777)
			dirMode(t, shared+"/real", 0o700)
			symlink(t, "shared/real", base+"/link")
			return base + "/link/kms-data", shared
		}, "a directory it is reached through, has mode 0777"},
		{"a link whose target goes up with ..", func(t *testing.T, base string) (string, string) {
			shared := dirMode(t, base+"/shared", 0o777)
			dirMode(t, shared+"/real", 0o700)
			symlink(t, "../shared/real", dirMode(t, base+"/d", 0o700)+"/link")
			return base + "/d/link/kms-data", shared
		}, "a directory it is reached through, has mode 0777"},
		{"a set-group-ID parent of our group", func(t *testing.T, base string) (string, string) {
			p := dirMode(t, base+"/a", 0o775|os.ModeSetgid)
			chown(t, p, 0, os.Getegid())
			return filepath.Join(p, "kms-data"), ""
		}, ""},
		{"a set-group-ID parent of another group", func(t *testing.T, base string) (string, string) {
			p := dirMode(t, base+"/a", 0o775|os.ModeSetgid)
			chown(t, p, 0, 65534)
			return filepath.Join(p, "kms-data"), p
		}, "a directory it is reached through, has mode 2775"},
		{"a set-group-ID parent others may write", func(t *testing.T, base string) (string, string) {
			p := dirMode(t, base+"/a", 0o777|os.ModeSetgid)
			chown(t, p, 0, os.Getegid())
			return filepath.Join(p, "kms-data"), p
		}, "a directory it is reached through, has mode 2777"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, refused := c.layout(t, t.TempDir())
			if err := Check(dir); c.want == "" && err != nil {
				t.Fatalf("Check = %v, want nil", err)
			} else if c.want != "" && (err == nil || !strings.Contains(err.Error(), "data directory "+dir+": "+refused+", "+c.want)) {
				t.Fatalf("Check = %v, want a refusal naming %s and saying %q", err, refused, c.want)
			}
			err := Prepare(dir)
			_, statErr := os.Stat(dir)
			if c.want == "" && (err != nil || statErr != nil) {
				t.Fatalf("Prepare = %v (%v), want the data directory made", err, statErr)
			}
			if c.want != "" && (err == nil || !os.IsNotExist(statErr)) {
				t.Fatalf("Prepare = %v (%v), want a refusal that makes nothing", err, statErr)
			}
		})
	}
}

// CheckServed trusts the data directory's owner as the running user is
// trusted: root asks the server of the kms user, in the kms user's
// directories, for a backup. Others still may not write the way to it.
func TestCheckServed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
	mkdir := func(t *testing.T, path string, mode os.FileMode, uid int) string {
		t.Helper()
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, uid, uid); err != nil {
			t.Fatal(err)
		}
		return path
	}
	base := t.TempDir()
	home := mkdir(t, base+"/home", 0o755, 65534)
	dir := mkdir(t, home+"/kms-data", 0o700, 65534)
	if owner, err := CheckServed(dir); owner != 65534 || err != nil {
		t.Errorf("CheckServed of the directory of user 65534 = %d, %v; want 65534, nil", owner, err)
	}
	if err := Check(dir); err == nil {
		t.Errorf("Check of the directory of user 65534 = nil, want a refusal")
	}
	shared := mkdir(t, base+"/shared", 0o777, 0)
	theirs := mkdir(t, shared+"/kms-data", 0o700, 65534)
	if _, err := CheckServed(theirs); err == nil || !strings.Contains(err.Error(), shared+", a directory it is reached through, has mode 0777") {
		t.Errorf("CheckServed of a directory in %s = %v, want a refusal naming it", shared, err)
	}
	open := mkdir(t, home+"/open", 0o777, 65534)
	if _, err := CheckServed(open); err == nil || !strings.Contains(err.Error(), open+" has mode 0777") {
		t.Errorf("CheckServed of a directory of mode 0777 = %v, want a refusal", err)
	}
	if _, err := CheckServed(filepath.Join(base, "missing")); err == nil {
		t.Errorf("CheckServed of a missing directory = nil, want an error")
	}
}
