package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// repeatedMember names the first member of a JSON body that decoding it
// into a value of type t would not simply replace when it comes again,
// or "" if there is none.
//
// encoding/json does not start afresh when a member comes again: a map
// is added to, and a structure (in a list too) is decoded over the one
// before, keeping what the second leaves out; and null leaves a string,
// number or boolean as it was. So
// {"EncryptionContext":{"a":"1"},"EncryptionContext":{"b":"2"}} would bind
// a ciphertext to both pairs, and {"BypassPolicyLockoutSafetyCheck":true,
// "BypassPolicyLockoutSafetyCheck":null} bypass the check, while the
// trail, which keeps a member's last value, shows otherwise. Such a body
// is refused. A repeated string, number, boolean or list of them, none
// null, is left as before: the last one is decoded and recorded. The
// members of a structure are matched as encoding/json matches them to
// fields (folding case), a map's keys exactly. body must be valid JSON.
func repeatedMember(body []byte, t reflect.Type) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	name, _, _ := repeatedIn(dec, t)
	return name
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// repeatedIn reads one value from dec, to be decoded into a t (nil: a
// value that is skipped), names a member it repeats, and says whether
// the value is null.
func repeatedIn(dec *json.Decoder, t reflect.Type) (name string, null bool, err error) {
	tok, err := dec.Token()
	if err != nil {
		return "", false, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return "", tok == nil, nil // a scalar
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
		for dec.More() {
			if name, _, err := repeatedIn(dec, elem); name != "" || err != nil {
				return name, false, err
			}
		}
		_, err := dec.Token()
		return "", false, err
	}
	// Each member seen, by field index or map key, and whether it was null.
	var seenFields map[int]bool
	var seenKeys map[string]bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false, err
		}
		member, _ := tok.(string)
		field := -1
		var vt reflect.Type
		switch {
		case t == nil:
		case t.Kind() == reflect.Struct:
			if field = fieldOf(t, member); field >= 0 {
				vt = t.Field(field).Type
			}
		case t.Kind() == reflect.Map:
			vt = t.Elem()
		}
		name, null, err := repeatedIn(dec, vt)
		if name != "" || err != nil {
			return name, false, err
		}
		switch {
		case field >= 0:
			wasNull, seen := seenFields[field]
			if seen && (null || wasNull || merges(vt)) {
				return member, false, nil
			}
			if seenFields == nil {
				seenFields = make(map[int]bool)
			}
			seenFields[field] = null
		case vt != nil: // a map's entry
			wasNull, seen := seenKeys[member]
			if seen && (null || wasNull || merges(vt)) {
				return member, false, nil
			}
			if seenKeys == nil {
				seenKeys = make(map[string]bool)
			}
			seenKeys[member] = null
		}
	}
	_, err = dec.Token()
	return "", false, err
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
// decodes a member name into, or -1: the field of that exact name, else
// one whose name folds to the same.
func fieldOf(t reflect.Type, name string) int {
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
			return i
		}
		if folded < 0 && foldName(n) == foldName(name) {
			folded = i
		}
	}
	return folded
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
