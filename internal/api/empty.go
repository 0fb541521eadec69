package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
)

var stringType = reflect.TypeFor[string]()

// emptyMembers names the top-level members of body that it gives as the
// empty string in a field of t (a structure or a pointer to one) that is
// a plain string, as validation messages name members: "keySpec",
// "grantId". Decoded, such a member reads the same as one left out, while
// AWS validates it as given (service.WithEmptyMembers). A member that
// comes more than once counts by its last value, the one decoded. body is
// valid JSON, an object.
func emptyMembers(body []byte, t reflect.Type) []string {
	if !bytes.Contains(body, []byte(`""`)) {
		return nil // the hot path: no empty string anywhere
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	empty := map[int]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil
		}
		name, _ := tok.(string)
		field, _ := fieldOf(t, name)
		if field < 0 || t.Field(field).Type != stringType {
			continue
		}
		empty[field] = string(raw) == `""`
	}
	var names []string
	for i := range t.NumField() {
		if empty[i] {
			names = append(names, memberPath(t.Field(i)))
		}
	}
	return names
}

// memberPath is a member's name as validation messages give it: its
// first letter in lower case.
func memberPath(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		name = f.Name
	}
	return lowerFirst(name)
}
