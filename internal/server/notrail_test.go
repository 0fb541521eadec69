package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A new key store is refused beside a trail that holds a record or an
// audit file, not beside a segment holding only the zeros a server
// writes ahead of its records (a first start killed before its first
// record).
func TestCheckNoTrail(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		held  string // "" if allowed
	}{
		{"empty", nil, ""},
		{"empty segment", map[string]string{"audit.log": ""}, ""},
		{"zeros only", map[string]string{"audit.log": strings.Repeat("\x00", 4096)}, ""},
		{"a record", map[string]string{"audit.log": "{\"hash\":\"ab\"}\n" + strings.Repeat("\x00", 4096)}, "audit.log"},
		{"a later segment", map[string]string{"audit.log": "", "audit-000002.log": "{}\n"}, "audit-000002.log"},
		{"the audit key", map[string]string{"audit.log": strings.Repeat("\x00", 10), "audit.pub": "k"}, "audit.pub"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range c.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := checkNoTrail(dir)
			if c.held == "" && err != nil || c.held != "" && (err == nil || !strings.Contains(err.Error(), "("+c.held+")")) {
				t.Fatalf("checkNoTrail = %v, want a refusal naming %q", err, c.held)
			}
		})
	}
}
