package archtest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// awsErrorType is the form of an AWS error type in a string literal.
var awsErrorType = regexp.MustCompile(`^[A-Z][A-Za-z]*Exception$`)

// wireErrorTypes are the types internal/api builds its protocol's errors
// of; only the mapper's file may give one a status and a type.
var wireErrorTypes = []string{"protocolError", "queryError", "CallError"}

// strayWireErrors returns where the own code of the packages in dirs (below
// root), but for the mapper's file mapper, names an AWS error type or
// builds one of wireErrorTypes with its fields: each such place turns a
// failure into the wire's terms by itself, beside the one mapper.
func strayWireErrors(root, mapper string, dirs ...string) ([]string, error) {
	var bad []string
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			rel, _ := filepath.Rel(root, f)
			rel = filepath.ToSlash(rel)
			if strings.HasSuffix(f, "_test.go") || rel == mapper {
				continue
			}
			fset := token.NewFileSet()
			file, err := parser.ParseFile(fset, f, nil, 0)
			if err != nil {
				return nil, err
			}
			ast.Inspect(file, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.BasicLit:
					if s, err := strconv.Unquote(x.Value); err == nil && x.Kind == token.STRING && awsErrorType.MatchString(s) {
						bad = append(bad, fmt.Sprintf("%s:%d names the AWS error type %s", rel, fset.Position(x.Pos()).Line, s))
					}
				case *ast.CompositeLit:
					name := ""
					switch t := x.Type.(type) {
					case *ast.Ident:
						name = t.Name
					case *ast.SelectorExpr:
						name = t.Sel.Name
					}
					if len(x.Elts) > 0 && slices.Contains(wireErrorTypes, name) && dir == filepath.Dir(mapper) {
						bad = append(bad, fmt.Sprintf("%s:%d builds a %s of its own", rel, fset.Position(x.Pos()).Line, name))
					}
				}
				return true
			})
		}
	}
	return bad, nil
}

// docs/architecture.md: api/errors.go is the one place a failure becomes
// an AWS error type and status. The console answers a refused call, and
// the failures of its requests that the API also has, with the API's
// answers (api.CallError from Invoke, IAMError, ReadBody, NotJSONObject,
// CallTimedOut, BodyRefused), and names no AWS error type of its own.
func TestOneErrorMapper(t *testing.T) {
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(filepath.Dir(here)))
	bad, err := strayWireErrors(root, "internal/api/errors.go", "internal/api", "internal/console", "internal/server")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
}

// A made-up package with a second mapper is caught.
func TestStrayWireErrorsFindsASecondMapper(t *testing.T) {
	root := t.TempDir()
	for path, src := range map[string]string{
		"internal/api/errors.go": "package api\ntype CallError struct{ Status int; Type string }\nvar a = &CallError{400, \"ValidationException\"}\n",
		"internal/api/body.go":   "package api\nvar b = &CallError{Status: 413, Type: \"TooLarge\"}\nvar c = &CallError{}\n",
		"internal/api/x_test.go": "package api\nvar d = \"NotFoundException\"\n",
		"internal/console/c.go":  "package console\nvar e = struct{ T string }{\"DependencyTimeoutException\"}\n",
		"internal/console/ok.go": "package console\nvar f = \"NotSignedIn\"\n",
	} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bad, err := strayWireErrors(root, "internal/api/errors.go", "internal/api", "internal/console")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"internal/api/body.go:2 builds a CallError of its own",
		"internal/console/c.go:2 names the AWS error type DependencyTimeoutException",
	}
	if !slices.Equal(bad, want) {
		t.Errorf("strayWireErrors found\n\t%s\nwant\n\t%s", strings.Join(bad, "\n\t"), strings.Join(want, "\n\t"))
	}
}
