// Package archtest checks the import rules of docs/architecture.md: each
// layer imports only the packages of ours the table allows, so that the
// arrows keep pointing one way.
package archtest

import (
	"go/build"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/openkms/kms/internal/"

// allowed is the table of docs/architecture.md ("Who may import whom").
var allowed = map[string][]string{
	"console":   {"api", "identity", "audit"},
	"api":       {"service", "kmsapi", "identity", "sigv4", "audit", "fault", "keys"},
	"service":   {"authz", "keyrepo", "kmsapi", "keys", "policy", "store", "audit", "fault"},
	"authz":     {"keyrepo", "kmsapi", "policy", "fault"},
	"keyrepo":   {"keys", "kmsapi", "policy", "store", "fault", "changelog"},
	"identity":  {"keys", "policy", "sigv4", "store", "fault", "changelog"},
	"audit":     {"keys"},
	"outbox":    {"audit", "store"},
	"kmsapi":    {},
	"fault":     {},
	"policy":    {},
	"keys":      {},
	"sigv4":     {},
	"store":     {},
	"changelog": {},
	"rekey":     {"authstore", "keys", "store"},
	"authstore": {"keys", "store"},
	"hsm":       {},
	"rootkey":   {"hsm", "keys", "store", "datadir"},
	"backup":    {"authstore", "keys", "store", "rekey", "migrate", "atomicfile", "audit", "datadir", "outbox"},
	"datadir":   {},
	"nodump":    {},
	"logrepeat": {},
}

func TestImportRules(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	internal := filepath.Dir(filepath.Dir(here))
	for pkg, ok := range allowed {
		p, err := build.ImportDir(filepath.Join(internal, pkg), 0)
		if err != nil {
			t.Fatalf("%s: %v", pkg, err)
		}
		var bad []string
		for _, imp := range p.Imports {
			name, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			if !permitted(name, ok) {
				bad = append(bad, name)
			}
		}
		sort.Strings(bad)
		if len(bad) > 0 {
			t.Errorf("internal/%s imports %v, which docs/architecture.md does not allow", pkg, bad)
		}
	}
}

// permitted reports whether name (a path below internal/) is one of ok or
// inside one of them (store/boltstore is store's).
func permitted(name string, ok []string) bool {
	for _, o := range ok {
		if name == o || strings.HasPrefix(name, o+"/") {
			return true
		}
	}
	return false
}
