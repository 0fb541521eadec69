package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzConfigFile reads arbitrary --config files: the file is refused with
// an error or its settings are taken, never a panic; and the settings
// taken, printed by --print-config, read back as the same settings (but
// where Print masks a password).
func FuzzConfigFile(f *testing.F) {
	for _, seed := range []string{
		"listen: 0.0.0.0:9000\nread-timeout: 5s\ndev: true\nmax-connections: 10\n",
		"# only a comment\n",
		"listen: \"a: b  # not a comment\"\nstorage: 'postgres://kms:secret@db/kms'\n",
		"listen: x\nlisten: y\n",
		"listen: x\n---\ndev: true\n",
		"- a\n- b\n",
		"listen: &a x\nstorage: *a\n",
		"listen: [1, 2]\n",
		"listen: ~\n",
		"? [a]\n: b\n",
		"storage: \"line\\nbreak\\ttab \\u00e9\"\n",
		"listen: " + string(bytes.Repeat([]byte("long value "), 20)) + "\n",
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	in, back := filepath.Join(dir, "in.yaml"), filepath.Join(dir, "back.yaml")
	f.Fuzz(func(t *testing.T, file []byte) {
		if err := os.WriteFile(in, file, 0o600); err != nil {
			t.Fatal(err)
		}
		var s settings
		fs := flags(&s)
		storage := fs.String("storage", "", "")
		fs.Parse(nil)
		src, err := Apply(fs, in, env(nil), "config")
		if err != nil {
			return
		}
		var out bytes.Buffer
		Print(&out, fs, src, "config")
		if err := os.WriteFile(back, out.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		var again settings
		fs2 := flags(&again)
		storage2 := fs2.String("storage", "", "")
		fs2.Parse(nil)
		if _, err := Apply(fs2, back, env(nil), "config"); err != nil {
			t.Fatalf("what --print-config wrote does not read back: %v\n%s", err, out.Bytes())
		}
		if MaskURL(*storage) != *storage || MaskURL(s.listen) != s.listen {
			return // printed masked
		}
		if again != s || *storage2 != *storage {
			t.Fatalf("read back %+v %q, want %+v %q, from\n%s", again, *storage2, s, *storage, out.Bytes())
		}
	})
}
