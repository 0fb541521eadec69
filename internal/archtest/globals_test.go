package archtest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
)

// changedGlobals returns where a function of the package in dir, its
// tests included, changes a variable that the package's own code
// declares at package level: assigns it or an element or field of it,
// increments it, takes its address, or deletes from or clears it. A
// variable set once where it is declared (a table, a sentinel error) is
// not reported.
//
// Limits: a change made through a method (a sync.Map's Store, a global
// struct's pointer method) or through a pointer handed out is not seen;
// nor is one made from another package.
func changedGlobals(root, dir string) ([]string, error) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, filepath.Join(root, dir), nil, 0)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, pkg := range pkgs {
		globals := map[*ast.ValueSpec]bool{}
		names := map[string]bool{}
		for name, f := range pkg.Files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			for _, d := range f.Decls {
				if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.VAR {
					for _, s := range g.Specs {
						vs := s.(*ast.ValueSpec)
						globals[vs] = true
						for _, n := range vs.Names {
							if n.Name != "_" {
								names[n.Name] = true
							}
						}
					}
				}
			}
		}
		// global returns the package-level variable that e, or what e is
		// an element or field of, names.
		global := func(e ast.Expr) (*ast.Ident, bool) {
			for {
				switch x := e.(type) {
				case *ast.IndexExpr:
					e = x.X
					continue
				case *ast.SelectorExpr:
					e = x.X
					continue
				case *ast.StarExpr:
					e = x.X
					continue
				case *ast.ParenExpr:
					e = x.X
					continue
				}
				break
			}
			id, ok := e.(*ast.Ident)
			if !ok || !names[id.Name] {
				return nil, false
			}
			if id.Obj == nil {
				return id, true
			}
			vs, ok := id.Obj.Decl.(*ast.ValueSpec)
			return id, ok && globals[vs]
		}
		for _, f := range pkg.Files {
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					var changed []ast.Expr
					switch x := n.(type) {
					case *ast.AssignStmt:
						if x.Tok != token.DEFINE {
							changed = x.Lhs
						}
					case *ast.IncDecStmt:
						changed = []ast.Expr{x.X}
					case *ast.UnaryExpr:
						if x.Op == token.AND {
							changed = []ast.Expr{x.X}
						}
					case *ast.CallExpr:
						if id, ok := x.Fun.(*ast.Ident); ok && (id.Name == "delete" || id.Name == "clear") && id.Obj == nil && len(x.Args) > 0 {
							changed = x.Args[:1]
						}
					}
					for _, c := range changed {
						if id, ok := global(c); ok {
							pos := fset.Position(id.Pos())
							rel, _ := filepath.Rel(root, pos.Filename)
							bad = append(bad, fmt.Sprintf("%s:%d: %s changes the package-level %s", filepath.ToSlash(rel), pos.Line, fn.Name.Name, id.Name))
						}
					}
					return true
				})
			}
		}
	}
	sort.Strings(bad)
	return bad, nil
}

// STYLE: no package-level mutable state. A setting or test hook that
// changes after start belongs in a field of what uses it, where two
// tests, or two servers in one process, can each have their own.
func TestNoGlobalState(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(filepath.Dir(here)))
	pkgs, err := packages(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		bad, err := changedGlobals(root, p.path)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bad {
			t.Error(b)
		}
	}
}

func TestChangedGlobalsFindsEachChange(t *testing.T) {
	root := t.TempDir()
	for path, src := range map[string]string{
		"p/p.go": `package p
var wait = 1
var table = map[string]int{"a": 1}
var hook func()
var counter int
type s struct{ n int }
var conf s
func use() { local := 2; local = 3; _ = local; wait := 4; wait = 5; _ = wait; _ = table["a"] }
func grow() { counter++ }
func set(k string) { table[k] = 2; delete(table, "a") }
func field() { conf.n = 1 }
func addr() *int { return &counter }
`,
		"p/p_test.go": `package p
import "testing"
var testOnly int
func TestX(t *testing.T) { wait = 0; hook = func() {}; testOnly = 1 }
`,
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bad, err := changedGlobals(root, "p")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"p/p.go:10: set changes the package-level table",
		"p/p.go:10: set changes the package-level table",
		"p/p.go:11: field changes the package-level conf",
		"p/p.go:12: addr changes the package-level counter",
		"p/p.go:9: grow changes the package-level counter",
		"p/p_test.go:4: TestX changes the package-level hook",
		"p/p_test.go:4: TestX changes the package-level wait",
	}
	if !slices.Equal(bad, want) {
		t.Errorf("changedGlobals found\n\t%s\nwant\n\t%s", strings.Join(bad, "\n\t"), strings.Join(want, "\n\t"))
	}
}
