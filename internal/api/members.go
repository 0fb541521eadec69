package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// checkMembers refuses a JSON body, already decoded into a value of type
// t, whose members the operation would read otherwise than its audit
// record shows them. body must be valid JSON.
//
// A member that comes again: encoding/json does not start afresh, but
// adds to a map, decodes a structure (in a list too) over the one before,
// keeping what the second leaves out, and lets null leave a string,
// number or boolean as it was. So
// {"EncryptionContext":{"a":"1"},"EncryptionContext":{"b":"2"}} would bind
// a ciphertext to both pairs, and {"BypassPolicyLockoutSafetyCheck":true,
// "BypassPolicyLockoutSafetyCheck":null} bypass the check, while the
// trail, which keeps a member's last value, shows otherwise. A repeated
// string, number, boolean or list of them, none null, is left as before:
// the last one is decoded and recorded.
//
// A member within a structure (a tag, grant constraints) spelled other
// than exactly: encoding/json matches it by folding case, so that
// "Tag\u212aey" (a Kelvin sign for the K) tags a key, while the record
// keeps the member as sent, where a reader of the trail looking for
// TagKey finds none. (Top-level members are recorded under their
// canonical names: requestParameters.)
//
// The members of a structure are matched as encoding/json matches them
// to fields, a map's keys exactly.
//
// structs are t's members whose values hold structures (structMembers(t)).
// A body in which no object names a member twice, even folding case, and
// that gives none of those needs no walk: it is checked in one pass over
// its bytes, without allocating, as every call on the hot path is.
func checkMembers(body []byte, t reflect.Type, structs []string) error {
	if distinctMembers(body, structs) {
		return nil
	}
	return walkMembers(body, t)
}

// walkMembers is checkMembers by a walk of body's tokens against t.
func walkMembers(body []byte, t reflect.Type) error {
	w := memberWalk{dec: json.NewDecoder(bytes.NewReader(body))}
	if _, err := w.value(t, 0); err != errMemberFound {
		return nil
	}
	name := shortName(w.member)
	if w.spelled {
		return errSerialization(fmt.Sprintf("The request body has the member '%s' within a structure: such members must be spelled exactly.", name))
	}
	return errSerialization(fmt.Sprintf("The request body has the member '%s' more than once.", name))
}

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	errMemberFound  = errors.New("a member to refuse")
)

// memberWalk walks a JSON body against the type it decodes into, and
// stops at the first member to refuse.
type memberWalk struct {
	dec     *json.Decoder
	member  string // the member refused
	spelled bool   // refused for its spelling, not for coming again
}

// value reads one value, to be decoded into a t (nil: a value that is
// skipped) at depth (0: the body), and says whether it is null.
func (w *memberWalk) value(t reflect.Type, depth int) (null bool, err error) {
	tok, err := w.dec.Token()
	if err != nil {
		return false, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok == nil, nil // a scalar
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && reflect.PointerTo(t).Implements(unmarshalerType) {
		t = nil // decodes itself
	}
	if d == '[' {
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for w.dec.More() {
			if _, err := w.value(elem, depth+1); err != nil {
				return false, err
			}
		}
		_, err := w.dec.Token()
		return false, err
	}
	// Each member seen, by field index or map key, and whether it was null.
	var seenFields map[int]bool
	var seenKeys map[string]bool
	for w.dec.More() {
		tok, err := w.dec.Token()
		if err != nil {
			return false, err
		}
		member, _ := tok.(string)
		field, exact := -1, false
		var vt reflect.Type
		switch {
		case t == nil:
		case t.Kind() == reflect.Struct:
			if field, exact = fieldOf(t, member); field >= 0 {
				vt = t.Field(field).Type
			}
		case t.Kind() == reflect.Map:
			vt = t.Elem()
		}
		if field >= 0 && !exact && depth > 0 {
			w.member, w.spelled = member, true
			return false, errMemberFound
		}
		null, err := w.value(vt, depth+1)
		if err != nil {
			return false, err
		}
		switch {
		case field >= 0:
			wasNull, seen := seenFields[field]
			if seen && (null || wasNull || merges(vt)) {
				w.member = member
				return false, errMemberFound
			}
			if seenFields == nil {
				seenFields = make(map[int]bool)
			}
			seenFields[field] = null
		case vt != nil: // a map's entry
			wasNull, seen := seenKeys[member]
			if seen && (null || wasNull || merges(vt)) {
				w.member = member
				return false, errMemberFound
			}
			if seenKeys == nil {
				seenKeys = make(map[string]bool)
			}
			seenKeys[member] = null
		}
	}
	_, err = w.dec.Token()
	return false, err
}

// merges reports whether encoding/json decodes a value of type t over
// what it holds (a map, a structure, a list of either) rather than
// replacing it.
func merges(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return false
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Interface:
		return true
	case reflect.Slice, reflect.Array:
		return merges(t.Elem())
	}
	return false
}

// fieldOf is the index of the field of struct t that encoding/json
// decodes a member name into, or -1: the field of that exact name
// (exact), else one whose name folds to the same.
func fieldOf(t reflect.Type, name string) (index int, exact bool) {
	folded := -1
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		n := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			if tag == "-" {
				continue
			}
			if tn, _, _ := strings.Cut(tag, ","); tn != "" {
				n = tn
			}
		}
		if n == name {
			return i, true
		}
		if folded < 0 && foldName(n) == foldName(name) {
			folded = i
		}
	}
	return folded, false
}

// foldName folds a member name as encoding/json does to match it to a
// field (foldRune).
func foldName(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

// foldRune folds r as encoding/json does when it matches a member name to
// a field: ASCII letters to upper case, other characters through
// unicode.ToUpper(unicode.ToLower(r)), which takes the Kelvin sign to K
// and the long s to S.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return r
	}
	return unicode.ToUpper(unicode.ToLower(r))
}

// shortName is a member name for an error message, cut (at a character)
// so that a hostile name cannot make the message long.
func shortName(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// structMembers lists, in lower case, the members of t, a structure or a
// pointer to one, whose values hold a structure (in a field, a list or a
// map), whose members' spelling checkMembers checks. A type that decodes
// itself holds none.
func structMembers(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" || !holdsStruct(f.Type, 0) {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, strings.ToLower(name))
	}
	return names
}

// holdsStruct reports whether a value of type t is or holds a structure
// that encoding/json decodes member by member.
func holdsStruct(t reflect.Type, depth int) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case depth > 8:
		return true // deeper than any input: let the walk decide
	case reflect.PointerTo(t).Implements(unmarshalerType):
		return false
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Interface:
		return true
	case reflect.Slice, reflect.Array, reflect.Map:
		return holdsStruct(t.Elem(), depth+1)
	}
	return false
}

// maxFastMembers and maxFastDepth bound what distinctMembers looks at.
const (
	maxFastMembers = 32
	maxFastDepth   = 16
)

// distinctMembers reports whether body, valid JSON, is an object in which
// no object names a member twice, even with ASCII case folded, every name
// being ASCII without escapes, and that has none of the members structs
// (lower case) at its top level: then encoding/json matches no member to
// another, however it folds names, and decodes no structure below the
// top. False also when it cannot tell (a name with an escape or beyond
// ASCII, an object of many members, deep nesting), for the walk to
// decide.
func distinctMembers(body []byte, structs []string) bool {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return false
	}
	i, ok := distinctValue(body, i, 0, structs)
	return ok && skipSpace(body, i) == len(body)
}

// distinctValue checks the value at b[i] for distinctMembers and returns
// the index after it; structs applies at depth 0.
func distinctValue(b []byte, i, depth int, structs []string) (int, bool) {
	if i >= len(b) || depth > maxFastDepth {
		return i, false
	}
	switch b[i] {
	case '{':
		var names [maxFastMembers][]byte
		n := 0
		if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
			return i + 1, true
		}
		for {
			if i >= len(b) || b[i] != '"' || n == len(names) {
				return i, false
			}
			end := i + 1
			for end < len(b) && b[end] != '"' {
				if c := b[end]; c == '\\' || c >= utf8.RuneSelf {
					return i, false
				}
				end++
			}
			if end >= len(b) {
				return i, false
			}
			name := b[i+1 : end]
			for _, prev := range names[:n] {
				if asciiEqualFold(prev, name) {
					return i, false
				}
			}
			if depth == 0 {
				for _, sm := range structs {
					if asciiEqualFold(name, []byte(sm)) {
						return i, false
					}
				}
			}
			names[n] = name
			n++
			if i = skipSpace(b, end+1); i >= len(b) || b[i] != ':' {
				return i, false
			}
			ok, done := false, false
			if i, ok = distinctValue(b, skipSpace(b, i+1), depth+1, nil); !ok {
				return i, false
			}
			if i, done, ok = nextElement(b, i, '}'); !ok || done {
				return i, ok
			}
		}
	case '[':
		if i = skipSpace(b, i+1); i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			ok, done := false, false
			if i, ok = distinctValue(b, i, depth+1, nil); !ok {
				return i, false
			}
			if i, done, ok = nextElement(b, i, ']'); !ok || done {
				return i, ok
			}
		}
	}
	j := skipValue(b, i)
	return j, j >= 0
}

// nextElement reads what follows a member or an element ending before
// b[i]: a comma, after which it returns the index of the next one, or
// close, after which it returns the index past the object or list and
// done. ok is false for anything else.
func nextElement(b []byte, i int, close byte) (next int, done, ok bool) {
	if i = skipSpace(b, i); i < len(b) {
		switch b[i] {
		case ',':
			return skipSpace(b, i+1), false, true
		case close:
			return i + 1, true, true
		}
	}
	return i, false, false
}

// asciiEqualFold reports whether a and b, ASCII, are equal but for the
// case of their letters.
func asciiEqualFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
