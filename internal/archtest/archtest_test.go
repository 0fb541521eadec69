// Package archtest checks that docs/architecture.md is the map of the
// code: every package is in its package table, each imports only the
// packages of ours its row of "Who may import whom" allows, and every one
// it allows, so that the arrows of the table are the real ones and keep
// pointing one way, and none imports what the table of outside imports
// keeps out of it (the service knows nothing of HTTP, the protocol layer
// nothing of bbolt or PostgreSQL). The rules are read from the document
// itself, so the page and the test cannot drift apart.
//
// Only a package's own code is checked: its tests may import anything
// (internal/e2e drives every layer at once).
//
// It also checks two rules of the page's that are not about imports:
// internal/api/errors.go is the one place that names an AWS error type
// (errors_test.go), and no package changes a package-level variable
// after it is declared (globals_test.go).
package archtest

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/openkms/kms"

func TestImportRules(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(filepath.Dir(here)))
	doc, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := readRules(string(doc), root)
	if err != nil {
		t.Fatalf("docs/architecture.md: %v", err)
	}
	bad, err := check(root, module, r)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("docs/architecture.md: %s", b)
	}
}

// A module made up for the test breaks each rule once; check must say so.
func TestCheckFindsEveryBrokenRule(t *testing.T) {
	root := t.TempDir()
	write := func(path, src string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n")
	write("cmd/tool/main.go", "package main\nimport _ \"example.com/m/internal/store/storetest\"\n")
	write("internal/keys/keys.go", "package keys\nimport _ \"example.com/m/internal/store\"\n")
	write("internal/store/store.go", "package store\n")
	write("internal/store/storetest/storetest.go", "package storetest\nimport _ \"example.com/m/internal/store\"\n")
	write("internal/service/service.go", "package service\nimport (\n_ \"net/http\"\n_ \"example.com/m/internal/keys\"\n)\n")
	write("internal/stray/stray.go", "package stray\n")
	write("internal/service/testdata/x.go", "package x\nimport _ \"example.com/m/internal/stray\"\n")
	doc := "# Architecture\n\n" +
		packagesHeader + "\n| --- | --- |\n" +
		"| `cmd/tool` | the tool |\n| `internal/keys` | keys |\n| `internal/store` | storage |\n| `internal/service` | operations |\n| `internal/gone` | removed |\n\n" +
		allowedHeader + "\n| --- | --- |\n" +
		"| `cmd/tool` | any but `store/storetest` |\n" +
		"| `service` | `keys`, `store` (why) |\n" +
		"| `keys`, `store` | none |\n\n" +
		keptOutHeader + "\n| --- | --- |\n" +
		"| `service` | `net/http` |\n"
	r, err := readRules(doc, root)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := check(root, "example.com/m", r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cmd/tool imports internal/store/storetest, which its row excepts",
		"internal/keys imports internal/store, which its row does not allow",
		"internal/service imports net/http, which the table of what is kept out forbids",
		"internal/stray has no row saying what it may import",
		"internal/stray is not in the package table",
		"the package table names internal/gone, which does not exist",
		"the row of internal/service allows internal/store, which it does not import",
	}
	if !slices.Equal(bad, want) {
		t.Errorf("check found\n\t%s\nwant\n\t%s", strings.Join(bad, "\n\t"), strings.Join(want, "\n\t"))
	}
}
