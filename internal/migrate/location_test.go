package migrate_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/migrate"
)

func TestParseLocation(t *testing.T) {
	abs, _ := filepath.Abs("kms-data")
	tests := []struct {
		in       string
		dir, dsn string
		shown    string
	}{
		{in: "kms-data", dir: abs, shown: abs},
		{in: "/var/lib/kms", dir: "/var/lib/kms", shown: "/var/lib/kms"},
		{in: "postgres://kms:s3cret@db:5432/kms?sslmode=require", dsn: "postgres://kms:s3cret@db:5432/kms?sslmode=require",
			shown: "postgres://kms:xxxxx@db:5432/kms?sslmode=require"},
		{in: "postgresql://db/kms", dsn: "postgresql://db/kms", shown: "postgresql://db/kms"},
	}
	for _, tc := range tests {
		l, err := migrate.ParseLocation(tc.in)
		if err != nil {
			t.Errorf("ParseLocation(%q): %v", tc.in, err)
			continue
		}
		if l.Dir != tc.dir || l.DSN != tc.dsn || l.String() != tc.shown {
			t.Errorf("ParseLocation(%q) = %+v shown as %q; want dir %q, dsn %q, shown as %q", tc.in, l, l, tc.dir, tc.dsn, tc.shown)
		}
		if strings.Contains(l.String(), "s3cret") {
			t.Errorf("%q shows the password", l)
		}
	}
	if _, err := migrate.ParseLocation(""); err == nil {
		t.Error("ParseLocation(\"\") succeeded")
	}
}
