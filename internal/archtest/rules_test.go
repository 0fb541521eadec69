package archtest

import (
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// rules are what docs/architecture.md says of the packages: the ones its
// package table names, which packages of ours each may import, and which
// outside packages each must not.
type rules struct {
	listed  []string            // named in the package table
	allowed map[string][]string // package → the packages of ours it may import
	// anyBut holds the packages whose row says "any but ...": they may
	// import every package of ours except the ones named.
	anyBut  map[string][]string
	keptOut map[string][]string // package → outside import paths it must not import
}

// The headers of the tables readRules reads; a name's first cell may hold
// several packages.
const (
	packagesHeader = "| package | its one job |"
	allowedHeader  = "| package | may import (of ours) |"
	keptOutHeader  = "| packages | import nothing of |"
)

var (
	backticked  = regexp.MustCompile("`([^`]+)`")
	parenthesis = regexp.MustCompile(`\([^)]*\)`)
)

// readRules reads the rules of the architecture document doc for the
// module whose root is root. Package names in the import tables are
// below internal/ unless no such directory exists (esdk, cmd/kms); they
// are returned as paths below the module's root.
func readRules(doc, root string) (*rules, error) {
	r := &rules{allowed: map[string][]string{}, anyBut: map[string][]string{}, keptOut: map[string][]string{}}
	resolve := func(name string) string {
		if st, err := os.Stat(filepath.Join(root, "internal", name)); err == nil && st.IsDir() {
			return "internal/" + name
		}
		return name
	}
	names := func(cell string) []string {
		var out []string
		for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
			out = append(out, m[1])
		}
		return out
	}
	table := ""
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == packagesHeader || line == allowedHeader || line == keptOutHeader:
			table = line
			continue
		case !strings.HasPrefix(line, "|"):
			table = ""
			continue
		case table == "" || strings.HasPrefix(line, "| ---"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 2 {
			return nil, fmt.Errorf("a row with fewer than two cells: %s", line)
		}
		first, second := names(cells[0]), strings.TrimSpace(cells[1])
		if len(first) == 0 {
			return nil, fmt.Errorf("a row that names no package: %s", line)
		}
		switch table {
		case packagesHeader:
			r.listed = append(r.listed, first...)
		case allowedHeader:
			// What a parenthesis says is why, not what.
			what := parenthesis.ReplaceAllString(second, "")
			var ok []string
			for _, n := range names(what) {
				ok = append(ok, resolve(n))
			}
			for _, p := range first {
				p = resolve(p)
				if _, dup := r.allowed[p]; dup {
					return nil, fmt.Errorf("%s has two rows", p)
				}
				switch {
				case strings.HasPrefix(what, "any but"):
					r.anyBut[p] = ok
				case what == "none":
				case len(ok) == 0:
					return nil, fmt.Errorf("a row that says neither none, any but, nor which packages: %s", line)
				}
				r.allowed[p] = ok
			}
		case keptOutHeader:
			for _, p := range first {
				r.keptOut[resolve(p)] = names(second)
			}
		}
	}
	if len(r.listed) == 0 || len(r.allowed) == 0 || len(r.keptOut) == 0 {
		return nil, errors.New("the package table, the table of who may import whom or the table of what is kept out is missing")
	}
	return r, nil
}

// pkg is one package of the module: its path below the root and the
// import paths of its own code (not of its tests).
type pkg struct {
	path    string
	imports []string
}

// packages lists the packages below root: every directory with a .go
// file, but for testdata and hidden ones.
func packages(root string) ([]pkg, error) {
	var out []pkg
	err := filepath.WalkDir(root, func(dir string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if dir != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(dir, 0)
		var noGo *build.NoGoError
		switch {
		case errors.As(err, &noGo) && len(p.TestGoFiles)+len(p.XTestGoFiles) == 0:
			return nil
		case err != nil && !errors.As(err, &noGo):
			return err
		}
		rel, _ := filepath.Rel(root, dir)
		out = append(out, pkg{path: filepath.ToSlash(rel), imports: p.Imports})
		return nil
	})
	return out, err
}

// within reports whether path is p or a package inside it
// (internal/store/boltstore is inside internal/store).
func within(path, p string) bool {
	return path == p || strings.HasPrefix(path, p+"/")
}

// ruleOf returns the package whose row of m rules path: path's own, or
// the nearest enclosing package's.
func ruleOf[V any](m map[string]V, path string) (string, bool) {
	for p := path; ; p = filepath.ToSlash(filepath.Dir(p)) {
		if _, ok := m[p]; ok {
			return p, true
		}
		if p == "." || p == "/" || !strings.Contains(p, "/") {
			return "", false
		}
	}
}

// check returns every way the packages of the module (its path module,
// its root root) break r: a package the package table does not name or
// that has no row saying what it may import, an import of ours its row
// does not allow, an outside import its row keeps out, and a row that
// allows an import no package it rules makes (the table is the map of
// the real arrows, not of possible ones) or names no package.
func check(root, module string, r *rules) ([]string, error) {
	pkgs, err := packages(root)
	if err != nil {
		return nil, err
	}
	var bad []string
	exists := map[string]bool{}
	used := map[string]map[string]bool{} // row → the packages of ours its packages import
	for _, p := range pkgs {
		exists[p.path] = true
		if !slices.ContainsFunc(r.listed, func(l string) bool { return within(p.path, l) }) {
			bad = append(bad, fmt.Sprintf("%s is not in the package table", p.path))
		}
		row, ok := ruleOf(r.allowed, p.path)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s has no row saying what it may import", p.path))
		}
		if used[row] == nil {
			used[row] = map[string]bool{}
		}
		for _, imp := range p.imports {
			name, ours := strings.CutPrefix(imp, module+"/")
			if !ours {
				if kr, ok := ruleOf(r.keptOut, p.path); ok && slices.ContainsFunc(r.keptOut[kr], func(k string) bool { return within(imp, k) }) {
					bad = append(bad, fmt.Sprintf("%s imports %s, which the table of what is kept out forbids", p.path, imp))
				}
				continue
			}
			if !ok || within(name, row) {
				continue
			}
			allowedTo := func(l string) bool { return within(name, l) }
			if but, anyRow := r.anyBut[row]; anyRow {
				if slices.ContainsFunc(but, allowedTo) {
					bad = append(bad, fmt.Sprintf("%s imports %s, which its row excepts", p.path, name))
				}
				continue
			}
			i := slices.IndexFunc(r.allowed[row], allowedTo)
			if i < 0 {
				bad = append(bad, fmt.Sprintf("%s imports %s, which its row does not allow", p.path, name))
				continue
			}
			used[row][r.allowed[row][i]] = true
		}
	}
	for row, ok := range r.allowed {
		if !exists[row] {
			bad = append(bad, fmt.Sprintf("the row of %s names a package that does not exist", row))
			continue
		}
		if _, anyRow := r.anyBut[row]; anyRow {
			continue
		}
		for _, o := range ok {
			if !used[row][o] {
				bad = append(bad, fmt.Sprintf("the row of %s allows %s, which it does not import", row, o))
			}
		}
	}
	for row := range r.keptOut {
		if !exists[row] {
			bad = append(bad, fmt.Sprintf("the table of what is kept out names %s, which does not exist", row))
		}
	}
	for _, l := range r.listed {
		if !slices.ContainsFunc(pkgs, func(p pkg) bool { return within(p.path, l) }) {
			bad = append(bad, fmt.Sprintf("the package table names %s, which does not exist", l))
		}
	}
	sort.Strings(bad)
	return bad, nil
}
