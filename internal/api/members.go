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
func checkMembers(body []byte, t reflect.Type) error {
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
// field: ASCII letters to upper case, other characters through
// unicode.ToUpper(unicode.ToLower(r)).
func foldName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			b.WriteByte(byte(r))
			continue
		}
		b.WriteRune(unicode.ToUpper(unicode.ToLower(r)))
	}
	return b.String()
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
