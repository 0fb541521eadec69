package e2e_test

// The cases of the model-driven validation sweep (TestModelValidationSweep):
// the part of AWS's KMS service model it reads, and for each member of an
// operation's input the values that break its constraints, and those at
// its limits, each with the messages AWS's request validation gives.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/openkms/kms/internal/testsupport"
)

// kmsModel is the part of a botocore service model the sweep and the
// response check (e2e_model_responses_test.go) read.
type kmsModel struct {
	Operations map[string]struct {
		Input  *shapeRef  `json:"input"`
		Output *shapeRef  `json:"output"`
		Errors []shapeRef `json:"errors"`
	} `json:"operations"`
	Shapes map[string]*modelShape `json:"shapes"`
}

type shapeRef struct {
	Shape string `json:"shape"`
}

type modelShape struct {
	Type      string              `json:"type"`
	Required  []string            `json:"required"`
	Members   map[string]shapeRef `json:"members"`
	Member    *shapeRef           `json:"member"` // a list's
	Key       *shapeRef           `json:"key"`    // a map's
	Value     *shapeRef           `json:"value"`
	Min       *int64              `json:"min"`
	Max       *int64              `json:"max"`
	Pattern   string              `json:"pattern"`
	Enum      []string            `json:"enum"`
	Sensitive bool                `json:"sensitive"`
	Exception bool                `json:"exception"`
}

func loadKMSModel(t testing.TB) *kmsModel {
	t.Helper()
	m, err := readKMSModel()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readKMSModel reads botocore's KMS model (testdata/kms-model/service-2.json)
// with what the API gained since (newer.json beside it): an addition that
// would replace what the model has is an error.
func readKMSModel() (*kmsModel, error) {
	base, err := os.ReadFile("testdata/kms-model/service-2.json")
	if err != nil {
		return nil, err
	}
	newer, err := os.ReadFile("testdata/kms-model/newer.json")
	if err != nil {
		return nil, err
	}
	b, err := testsupport.WithNewerKMS(base, newer, true)
	if err != nil {
		return nil, fmt.Errorf("newer.json: %w", err)
	}
	var m kmsModel
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// patternSample gives, for each pattern of the model, a value that
// matches it, a value of an allowed length that does not, and where a
// character (pad) can be put into the valid value, or removed from it,
// keeping it matching, to reach a length just outside the limits.
type patternSample struct {
	valid, invalid string
	pad            byte
	at             int // where pad goes in valid; -1: at the end
}

var patternSamples = map[string]patternSample{
	`^[a-zA-Z0-9:/_-]+$`:                 {"alias/sweep", "alias/sweep!", 'a', -1},
	`^[\w+=,.@:/-]+$`:                    {"arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:root?", 'a', -1},
	`[\u0009\u000A\u000D\u0020-\u00FF]+`: {"p", "p\u0100", ' ', -1},
	`^[a-zA-Z0-9:/_\s.-]+$`:              {"material", "material!", 'a', -1},
	`^https://[a-zA-Z0-9.-]+$`:           {"https://xks.example.com", "http://xks.example.com", 'a', -1},
	`^([a-z]+-){2,3}\d+$`:                {"eu-west-1", "EU-WEST-1", 'a', 0},
	`^[A-Z2-7]+$`:                        {"ABCDEFGHIJKLMNOPQRST", "ABCDEFGHIJKLMNOPQRS1", 'A', -1},
	`^(com|eu)\.amazonaws\.vpce\.([a-z]+-){2,3}\d+\.vpce-svc-[0-9a-z]+$`: {"com.amazonaws.vpce.us-east-1.vpce-svc-0123", "org.amazonaws.vpce.us-east-1.vpce-svc-0123", '0', -1},
	`^[a-zA-Z0-9\/+=]+$`:         {strings.Repeat("a", 43), strings.Repeat("a", 42) + "!", 'a', -1},
	`[\u0020-\u00FF]*`:           {"marker", "marker\u0100", 'a', -1},
	`cluster-[2-7a-zA-Z]{11,16}`: {"cluster-abcdefghijk", "cluster-1234567890k", 'a', -1},
	`^[a-f0-9]+$`:                {strings.Repeat("ab", 32), strings.Repeat("AB", 32), 'a', -1},
	`[\w]+`:                      {"default", "de-fault", 'a', -1},
	`^(/[a-zA-Z0-9\/_-]+/kms/xks/v\d{1,2})$|^(/kms/xks/v\d{1,2})$`: {"/example/kms/xks/v1", "/example/kms/xks/v1/", 'a', 1},
	`^[a-zA-Z0-9-_.]+$`: {"xks-key", "xks key", 'a', -1},
	`[0-9]{12}`:         {"111122223333", "11112222333a", '1', -1},
}

// modelRegexp is a model pattern as Go reads it: whole-value matching, as
// Java's String.matches, and \uXXXX written \x{XXXX}.
func modelRegexp(t testing.TB, pattern string) *regexp.Regexp {
	t.Helper()
	re, err := compileModelPattern(pattern)
	if err != nil {
		t.Fatalf("pattern %s: %v", pattern, err)
	}
	return re
}

func compileModelPattern(pattern string) (*regexp.Regexp, error) {
	p := regexp.MustCompile(`\\u([0-9A-Fa-f]{4})`).ReplaceAllString(pattern, `\x{$1}`)
	p = strings.ReplaceAll(p, `0-9-_.]`, `0-9_.\-]`) // Java reads a '-' after a range as itself
	return regexp.Compile(`^(?:` + p + `)$`)
}

// memberName is a member as validation messages name it.
func memberName(m string) string {
	r, n := utf8.DecodeRuneInString(m)
	return string(unicode.ToLower(r)) + m[n:]
}

// sweepCase is one request to refuse: the base input with one change.
type sweepCase struct {
	name   string
	change func(body map[string]any)
	want   []string // the violations, without the "N validation errors detected: " head
}

// sweeper generates the cases for one operation.
type sweeper struct {
	t     testing.TB
	model *kmsModel
	// enumShown overrides the values a member's enum message lists, where
	// AWS lists others than the model's (path → values).
	enumShown map[string][]string
	// samples are sample values of the patterns patternSamples does
	// not have (another service's model).
	samples map[string]patternSample
	// fill are the optional members validValue gives a structure, by
	// shape, beside its required ones.
	fill map[string][]string
}

// violations is what AWS's validation says of value (as it is in a JSON
// body) at path, given as shape: the model's constraints of the shape
// itself, not of its members.
func (s *sweeper) violations(shapeName string, value any, path string) []string {
	sh := s.model.Shapes[shapeName]
	if value == nil {
		return nil
	}
	var out []string
	shown := func() string { return fmt.Sprintf("Value '%v' at '%s'", value, path) }
	if sh.Sensitive || sh.Type == "blob" {
		shown = func() string { return fmt.Sprintf("Value at '%s'", path) }
	}
	var length int64 = -1
	switch sh.Type {
	case "string":
		str := value.(string)
		length = int64(utf8.RuneCountInString(str))
		if sh.Pattern != "" && !modelRegexp(s.t, sh.Pattern).MatchString(str) {
			out = append(out, shown()+" failed to satisfy constraint: Member must satisfy regular expression pattern: "+sh.Pattern)
		}
		if sh.Enum != nil && !slices.Contains(sh.Enum, str) {
			set := sh.Enum
			if e, ok := s.enumShown[path]; ok {
				set = e
			}
			out = append(out, shown()+" failed to satisfy constraint: Member must satisfy enum value set: ["+strings.Join(set, ", ")+"]")
		}
	case "blob":
		b, err := base64.StdEncoding.DecodeString(value.(string))
		if err != nil {
			s.t.Fatalf("%s: %v", path, err)
		}
		length = int64(len(b))
	case "list":
		l := value.([]any)
		length = int64(len(l))
		strs := make([]string, len(l))
		for i, e := range l {
			strs[i] = fmt.Sprint(e)
		}
		shown = func() string { return fmt.Sprintf("Value '[%s]' at '%s'", strings.Join(strs, ", "), path) }
	case "integer", "long":
		n := int64(value.(int))
		if sh.Min != nil && n < *sh.Min {
			out = append(out, fmt.Sprintf("%s failed to satisfy constraint: Member must have value greater than or equal to %d", shown(), *sh.Min))
		}
		if sh.Max != nil && n > *sh.Max {
			out = append(out, fmt.Sprintf("%s failed to satisfy constraint: Member must have value less than or equal to %d", shown(), *sh.Max))
		}
	}
	if length >= 0 {
		if sh.Min != nil && length < *sh.Min {
			out = append(out, fmt.Sprintf("%s failed to satisfy constraint: Member must have length greater than or equal to %d", shown(), *sh.Min))
		}
		if sh.Max != nil && length > *sh.Max {
			out = append(out, fmt.Sprintf("%s failed to satisfy constraint: Member must have length less than or equal to %d", shown(), *sh.Max))
		}
	}
	return out
}

// validValue is a value of shape that satisfies its constraints, for a
// member the base input leaves out.
func (s *sweeper) validValue(shapeName string) any {
	sh := s.model.Shapes[shapeName]
	switch sh.Type {
	case "string":
		if sh.Enum != nil {
			return sh.Enum[0]
		}
		if sh.Pattern != "" {
			return s.sample(sh.Pattern).valid
		}
		return strings.Repeat("a", int(max(1, minOf(sh))))
	case "blob":
		return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, int(max(1, minOf(sh)))))
	case "integer", "long":
		return int(max(1, minOf(sh)))
	case "boolean":
		return false
	case "list":
		return []any{s.validValue(sh.Member.Shape)}
	case "map":
		return map[string]any{"k": s.validValue(sh.Value.Shape)}
	case "structure":
		out := map[string]any{}
		for _, m := range append(slices.Clone(sh.Required), s.fill[shapeName]...) {
			out[m] = s.validValue(sh.Members[m].Shape)
		}
		return out
	}
	s.t.Fatalf("no valid value for %s (%s)", shapeName, sh.Type)
	return nil
}

func minOf(sh *modelShape) int64 {
	if sh.Min == nil {
		return 0
	}
	return *sh.Min
}

func (s *sweeper) sample(pattern string) patternSample {
	if p, ok := s.samples[pattern]; ok {
		return p
	}
	p, ok := patternSamples[pattern]
	if !ok {
		s.t.Fatalf("no sample values for the model's pattern %s: add them to patternSamples", pattern)
	}
	return p
}

// outOfRange are values of shape just outside its limits, and (for a
// pattern or an enumeration) a value of an allowed length that is not
// allowed.
func (s *sweeper) outOfRange(shapeName string) []badValue {
	sh := s.model.Shapes[shapeName]
	var out []badValue
	switch sh.Type {
	case "string":
		valid := strings.Repeat("a", int(max(1, minOf(sh))))
		pad, at := byte('a'), -1
		if sh.Pattern != "" {
			p := s.sample(sh.Pattern)
			valid, pad, at = p.valid, p.pad, p.at
			out = append(out, badValue{"off pattern", p.invalid})
			if minOf(sh) == 0 && !modelRegexp(s.t, sh.Pattern).MatchString("") {
				out = append(out, badValue{"empty", ""})
			}
		}
		if sh.Enum != nil {
			out = append(out, badValue{"not in enum", "NOT_" + sh.Enum[0]})
		}
		if sh.Min != nil && *sh.Min > 0 {
			out = append(out, badValue{"too short", resize(valid, int(*sh.Min-1), pad, at)})
		}
		if sh.Max != nil {
			out = append(out, badValue{"too long", resize(valid, int(*sh.Max+1), pad, at)})
		}
	case "blob":
		if sh.Min != nil && *sh.Min > 0 {
			out = append(out, badValue{"too short", base64.StdEncoding.EncodeToString(make([]byte, *sh.Min-1))})
		}
		if sh.Max != nil {
			out = append(out, badValue{"too long", base64.StdEncoding.EncodeToString(make([]byte, *sh.Max+1))})
		}
	case "integer", "long":
		if sh.Min != nil {
			out = append(out, badValue{"too small", int(*sh.Min - 1)})
		}
		if sh.Max != nil {
			out = append(out, badValue{"too large", int(*sh.Max + 1)})
		}
	case "list":
		if sh.Max != nil {
			l := make([]any, *sh.Max+1)
			for i := range l {
				l[i] = s.validValue(sh.Member.Shape)
				if str, ok := l[i].(string); ok {
					l[i] = fmt.Sprintf("%s%d", str, i) // distinct, as a reader of the message would want
				}
			}
			out = append(out, badValue{"too long", l})
		}
		if sh.Min != nil && *sh.Min > 0 {
			out = append(out, badValue{"too short", []any{}})
		}
	}
	return out
}

// inRange are values of shape at its limits, and every value of its
// enumeration: values the model allows.
func (s *sweeper) inRange(shapeName string) []badValue {
	sh := s.model.Shapes[shapeName]
	var out []badValue
	switch sh.Type {
	case "string":
		for _, e := range sh.Enum {
			out = append(out, badValue{"= " + e, e})
		}
		valid, pad, at := strings.Repeat("a", int(max(1, minOf(sh)))), byte('a'), -1
		if sh.Pattern != "" {
			p := s.sample(sh.Pattern)
			valid, pad, at = p.valid, p.pad, p.at
		}
		if sh.Enum == nil {
			out = append(out, badValue{"at its shortest", resize(valid, int(minOf(sh)), pad, at)})
			if sh.Max != nil {
				out = append(out, badValue{"at its longest", resize(valid, int(*sh.Max), pad, at)})
			}
		}
	case "blob":
		out = append(out, badValue{"at its shortest", base64.StdEncoding.EncodeToString(make([]byte, minOf(sh)))})
		if sh.Max != nil {
			out = append(out, badValue{"at its longest", base64.StdEncoding.EncodeToString(make([]byte, *sh.Max))})
		}
	case "integer", "long":
		if sh.Min != nil {
			out = append(out, badValue{"at its least", int(*sh.Min)})
		}
		if sh.Max != nil {
			out = append(out, badValue{"at its most", int(*sh.Max)})
		}
	case "list":
		if sh.Max != nil {
			l := make([]any, *sh.Max)
			for i := range l {
				l[i] = s.validValue(sh.Member.Shape)
			}
			out = append(out, badValue{"at its longest", l})
		}
	}
	// Some limits no value of the pattern reaches (a cluster id is at
	// most 24 characters, its pattern 8 + 16).
	return slices.DeleteFunc(out, func(b badValue) bool { return len(s.violations(shapeName, b.v, "")) > 0 })
}

// badValue is a value that breaks a constraint, and what it breaks.
type badValue struct {
	what string
	v    any
}

// resize makes valid n characters long by putting pad at at, or cutting
// characters there.
func resize(valid string, n int, pad byte, at int) string {
	if at < 0 || at > len(valid) {
		at = len(valid)
	}
	if len(valid) < n {
		return valid[:at] + strings.Repeat(string(pad), n-len(valid)) + valid[at:]
	}
	cut := len(valid) - n
	if at >= cut {
		return valid[:at-cut] + valid[at:]
	}
	return valid[:n]
}

// location is where a member is in a body: the keys and list indexes
// from the top.
type location []any

// set puts v at loc in body, making the structures, lists and maps on the
// way as the base leaves them out (with their required members).
func (s *sweeper) set(body map[string]any, loc location, shapes []string, v any) {
	var cur any = body
	for i, step := range loc {
		last := i == len(loc)-1
		switch c := cur.(type) {
		case map[string]any:
			k := step.(string)
			if last {
				if v == nil {
					delete(c, k)
				} else {
					c[k] = v
				}
				return
			}
			if _, ok := c[k]; !ok {
				c[k] = s.validValue(shapes[i])
			}
			cur = c[k]
		case []any:
			idx := step.(int)
			if last {
				c[idx] = v
				return
			}
			cur = c[idx]
		}
	}
}

// cases generates the cases for the members of structure shapeName at loc
// (path: how messages name it, "" at the top): each member missing if it
// is required, and given each of its values outOfRange.
func (s *sweeper) cases(shapeName string, loc location, shapes []string, path string) []sweepCase {
	return s.walk(shapeName, loc, shapes, path, s.outOfRange, true)
}

// limitCases are cases that give each member each value inRange: none
// may be refused by request validation.
func (s *sweeper) limitCases(shapeName string) []sweepCase {
	return s.walk(shapeName, nil, nil, "", s.inRange, false)
}

// walk generates cases for the members of structure shapeName at loc:
// each member given each of the values gen gives for its shape, and left
// out (if missing) when it is required.
func (s *sweeper) walk(shapeName string, loc location, shapes []string, path string, gen func(string) []badValue, missing bool) []sweepCase {
	sh := s.model.Shapes[shapeName]
	var out []sweepCase
	for _, m := range slices.Sorted(maps.Keys(sh.Members)) {
		ref := sh.Members[m].Shape
		mpath := memberName(m)
		if path != "" {
			mpath = path + "." + mpath
		}
		mloc := append(slices.Clone(loc), m)
		mshapes := append(slices.Clone(shapes), ref)
		if missing && slices.Contains(sh.Required, m) {
			out = append(out, sweepCase{
				name:   mpath + " missing",
				change: func(b map[string]any) { s.set(b, mloc, mshapes, nil) },
				want:   []string{fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", mpath)},
			})
		}
		for _, bad := range gen(ref) {
			v := bad.v
			want := s.violations(ref, v, mpath)
			if missing && len(want) == 0 {
				s.t.Fatalf("%s: the value %v breaks no constraint", mpath, v)
			}
			out = append(out, sweepCase{
				name:   mpath + " " + bad.what,
				change: func(b map[string]any) { s.set(b, mloc, mshapes, v) },
				want:   want,
			})
		}
		switch child := s.model.Shapes[ref]; child.Type {
		case "structure":
			out = append(out, s.walk(ref, mloc, mshapes, mpath, gen, missing)...)
		case "list":
			elem := s.model.Shapes[child.Member.Shape]
			eloc := append(slices.Clone(mloc), 0)
			eshapes := append(slices.Clone(mshapes), child.Member.Shape)
			epath := mpath + ".1.member"
			if elem.Type == "structure" {
				out = append(out, s.walk(child.Member.Shape, eloc, eshapes, epath, gen, missing)...)
				continue
			}
			for _, bad := range gen(child.Member.Shape) {
				v := bad.v
				out = append(out, sweepCase{
					name:   epath + " " + bad.what,
					change: func(b map[string]any) { s.set(b, mloc, mshapes, []any{v}) },
					want:   s.violations(child.Member.Shape, v, epath),
				})
			}
		}
	}
	return out
}
