package datadir

import (
	"os"
	"path/filepath"
	"testing"
)

// An output in the data directory is refused, by whatever name the
// directory is reached; one elsewhere, below it included, is not.
func TestRefuseOutputIn(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "kms-data")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	// elsewhere/sub leads to dir/sub: elsewhere/sub/.. is dir to the
	// system, though filepath.Clean makes it elsewhere.
	elsewhere := filepath.Join(base, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "sub"), filepath.Join(elsewhere, "sub")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir, path string
		refused   bool
	}{
		{dir, filepath.Join(dir, "kms.db"), true},
		{dir, filepath.Join(dir, "audit.log"), true},
		{dir, filepath.Join(dir, "new.kmsbak"), true},
		{dir, filepath.Join(link, "kms.db"), true},
		{link, filepath.Join(dir, "sub", "..", "kms.db"), true},
		{dir, elsewhere + "/sub/../kms.db", true},
		{dir, elsewhere + "/kms.kmsbak", false},
		{dir, filepath.Join(dir, "sub", "kms.kmsbak"), false},
		{dir, filepath.Join(base, "kms.kmsbak"), false},
		{dir, filepath.Join(base, "missing", "kms.kmsbak"), false},
		{filepath.Join(base, "missing"), filepath.Join(base, "kms.kmsbak"), false},
		{"", filepath.Join(dir, "kms.db"), false},
	} {
		err := RefuseOutputIn(c.dir, c.path, "-o")
		if (err != nil) != c.refused {
			t.Errorf("RefuseOutputIn(%s, %s) = %v, want refused %v", c.dir, c.path, err, c.refused)
		}
	}
}

// A file appended to is refused also when it is a file of the data
// directory by another name, a symbolic or a hard link kept elsewhere;
// another file elsewhere, or one not made yet, is not.
func TestRefuseAppendTo(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "kms-data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(seg, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(base, "events.jsonl")
	if err := os.WriteFile(other, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(seg, filepath.Join(base, "sym.jsonl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(seg, filepath.Join(base, "hard.jsonl")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir, path string
		refused   bool
	}{
		{dir, seg, true},
		{dir, filepath.Join(dir, "new.jsonl"), true},
		{dir, filepath.Join(base, "sym.jsonl"), true},
		{dir, filepath.Join(base, "hard.jsonl"), true},
		{dir, other, false},
		{dir, filepath.Join(base, "new.jsonl"), false},
		{filepath.Join(base, "missing"), other, false},
		{"", filepath.Join(base, "sym.jsonl"), false},
	} {
		err := RefuseAppendTo(c.dir, c.path, "--output")
		if (err != nil) != c.refused {
			t.Errorf("RefuseAppendTo(%s, %s) = %v, want refused %v", c.dir, c.path, err, c.refused)
		}
	}
}

// An output renamed into place is refused where it would replace a file
// the command reads, by any name of its directory or through a link to
// the file; a link in its place, replaced by the rename, is not.
func TestRefuseOutputOver(t *testing.T) {
	base := t.TempDir()
	keys := filepath.Join(base, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(keys, "root.key")
	if err := os.WriteFile(key, []byte("k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(keys, filepath.Join(base, "dirlink")); err != nil {
		t.Fatal(err)
	}
	keyLink := filepath.Join(base, "key-link")
	if err := os.Symlink(key, keyLink); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file, path string
		refused    bool
	}{
		{key, key, true},
		{key, filepath.Join(base, "dirlink", "root.key"), true},
		{key, filepath.Join(keys, ".", "root.key"), true},
		{keyLink, key, true},
		{key, keyLink, false},
		{key, filepath.Join(keys, "b.kmsbak"), false},
		{key, filepath.Join(base, "root.key"), false},
		{filepath.Join(base, "missing.key"), filepath.Join(base, "missing.key"), false},
		{"", key, false},
	} {
		err := RefuseOutputOver(c.file, c.path, "-o")
		if (err != nil) != c.refused {
			t.Errorf("RefuseOutputOver(%s, %s) = %v, want refused %v", c.file, c.path, err, c.refused)
		}
	}
}
