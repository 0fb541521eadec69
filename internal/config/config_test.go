package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

type settings struct {
	listen  string
	timeout time.Duration
	dev     bool
	conns   int
}

func flags(s *settings) *pflag.FlagSet {
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	fs.StringVar(&s.listen, "listen", "127.0.0.1:8400", "")
	fs.DurationVar(&s.timeout, "read-timeout", 30*time.Second, "")
	fs.BoolVar(&s.dev, "dev", false, "")
	fs.IntVar(&s.conns, "max-connections", 4096, "")
	fs.String("config", "", "")
	return fs
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kms.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "listen: 0.0.0.0:1\nread-timeout: 5s\ndev: true\nmax-connections: 10\n")
	var s settings
	fs := flags(&s)
	if err := fs.Parse([]string{"--listen", "127.0.0.1:3"}); err != nil {
		t.Fatal(err)
	}
	src, err := Apply(fs, file, env(map[string]string{"KMS_LISTEN": "0.0.0.0:2", "KMS_READ_TIMEOUT": "7s"}), "config")
	if err != nil {
		t.Fatal(err)
	}
	want := settings{listen: "127.0.0.1:3", timeout: 7 * time.Second, dev: true, conns: 10}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
	wantSrc := map[string]Source{"listen": FromFlag, "read-timeout": FromEnv, "dev": FromFile, "max-connections": FromFile, "config": FromDefault}
	for k, v := range wantSrc {
		if src[k] != v {
			t.Errorf("source of %s: %s, want %s", k, src[k], v)
		}
	}

	// Without a file, the defaults stand where nothing else is given.
	var d settings
	fs = flags(&d)
	fs.Parse(nil)
	if _, err := Apply(fs, "", env(nil), "config"); err != nil {
		t.Fatal(err)
	}
	if d != (settings{listen: "127.0.0.1:8400", timeout: 30 * time.Second, conns: 4096}) {
		t.Errorf("defaults: %+v", d)
	}
}

func TestFileErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"unknown key", "listen: a:1\n\nbogus: 1\n", `:3: unknown key "bogus"`},
		{"key not allowed in the file", "config: other.yaml\n", `:1: unknown key "config"`},
		{"wrong type", "dev: maybe\n", `:1: key "dev": invalid argument "maybe"`},
		{"duration without unit", "read-timeout: 30\n", `:1: key "read-timeout": invalid argument "30"`},
		{"number expected", "max-connections: many\n", `:1: key "max-connections"`},
		{"a list", "listen:\n  - a\n", `:2: key "listen": the value must be a single value`},
		{"a mapping", "listen: {a: 1}\n", `:1: key "listen": the value must be a single value`},
		{"null", "listen:\n", `key "listen": the value must be a single value`},
		{"twice", "dev: true\ndev: false\n", `:2: key "dev" is given twice`},
		{"not a mapping", "- listen\n", `:1: the file must be a mapping`},
		{"not YAML", "listen: [\n", `line`},
		// A second document would be dropped, and the settings in it
		// (--tls-client-ca, say) with it.
		{"two documents", "dev: true\n---\nlisten: a:1\n", `:2: the file holds more than one YAML document`},
		{"an empty second document", "---\ndev: true\n---\n", `more than one YAML document`},
		{"a bad second document", "dev: true\n---\nlisten: [\n", `line`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.text)
			var s settings
			fs := flags(&s)
			fs.Parse(nil)
			_, err := Apply(fs, path, env(nil), "config")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want one naming %s and %q", err, path, tc.want)
			}
		})
	}
	var s settings
	fs := flags(&s)
	fs.Parse(nil)
	if _, err := Apply(fs, filepath.Join(t.TempDir(), "missing.yaml"), env(nil)); err == nil {
		t.Fatal("a missing file was accepted")
	}
	if _, err := Apply(fs, "", env(map[string]string{"KMS_DEV": "perhaps"})); err == nil || !strings.Contains(err.Error(), "KMS_DEV") {
		t.Fatalf("a bad environment value: %v, want an error naming KMS_DEV", err)
	}
}

func TestPrint(t *testing.T) {
	var s settings
	fs := flags(&s)
	fs.String("storage", "", "")
	fs.Parse([]string{"--storage", "postgres://kms:hunter2@db:5432/kms"})
	src, err := Apply(fs, "", env(map[string]string{"KMS_DEV": "true"}), "config")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	Print(&out, fs, src, "config")
	text := out.String()
	if strings.Contains(text, "hunter2") {
		t.Errorf("the password was printed:\n%s", text)
	}
	for _, want := range []string{`storage: "postgres://kms:xxxxx@db:5432/kms"  # flag`, "dev: true  # environment", `listen: "127.0.0.1:8400"  # default`} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	if strings.Contains(text, "config:") {
		t.Errorf("a skipped flag was printed:\n%s", text)
	}
	// What Print writes, --config reads back to the same settings.
	path := writeFile(t, stripComments(text))
	var back settings
	fs2 := flags(&back)
	fs2.String("storage", "", "")
	fs2.Parse(nil)
	if _, err := Apply(fs2, path, env(nil), "config"); err != nil {
		t.Fatal(err)
	}
	if back != s {
		t.Errorf("read back %+v, want %+v", back, s)
	}
}

func stripComments(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if i := strings.Index(line, "  #"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// MaskURL hides every password a PostgreSQL URL can carry, and nothing
// else.
func TestMaskURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://kms:hunter2@db:5432/kms":                            "postgres://kms:xxxxx@db:5432/kms",
		"postgres://kms@db/kms?sslmode=disable&password=hunter2":        "postgres://kms@db/kms?password=xxxxx&sslmode=disable",
		"postgres://kms@db/kms?PASSWORD=hunter2":                        "postgres://kms@db/kms?PASSWORD=xxxxx",
		"postgres://kms@db/kms?sslpassword=hunter2&sslmode=verify-full": "postgres://kms@db/kms?sslmode=verify-full&sslpassword=xxxxx",
		"postgres://kms@db/kms?password=hunter2;x=%zz":                  "postgres://kms@db/kms?xxxxx",
		"postgres://kms:hun%zzter2@db/kms":                              "xxxxx",
		"postgres://kms@db/kms?sslmode=disable":                         "postgres://kms@db/kms?sslmode=disable",
		"127.0.0.1:8400":                                                "127.0.0.1:8400",
		"/var/lib/kms":                                                  "/var/lib/kms",
		// Key/value connection strings, as libpq reads them.
		"host=db user=kms password=hunter2":               "host=db user=kms password=xxxxx",
		"password=hunter2 host=db":                        "password=xxxxx host=db",
		"host=db  password = 'hunter2 \\' x'\tdbname=kms": "host=db  password = xxxxx\tdbname=kms",
		"host=db password=hun\\ ter2 dbname=kms":          "host=db password=xxxxx dbname=kms",
		"host=db PASSWORD=hunter2 sslpassword=hunter2":    "host=db PASSWORD=xxxxx sslpassword=xxxxx",
		"host=db password='hunter2":                       "xxxxx",
		"host=db password":                                "host=db password",
		"host=db user=kms password hunter2":               "xxxxx",
		"host=db junk password=hunter2":                   "xxxxx",
		"host=db user=kms sslmode=verify-full":            "host=db user=kms sslmode=verify-full",
		"/etc/kms/password.pem":                           "/etc/kms/password.pem",
		"10.0.0.0/8,192.168.1.1":                          "10.0.0.0/8,192.168.1.1",
	} {
		got := MaskURL(in)
		if got != want {
			t.Errorf("MaskURL(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "hunter2") || strings.Contains(got, "hun%zzter2") {
			t.Errorf("MaskURL(%q) shows the password: %q", in, got)
		}
	}
}
