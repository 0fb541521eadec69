package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/openkms/kms/internal/kmsapi"
)

var tagsType = reflect.TypeFor[[]kmsapi.Tag]()

// hasTags reports whether t, an operation's input or a pointer to one,
// takes a list of tags in its Tags member.
func hasTags(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	f, ok := t.FieldByName("Tags")
	return ok && f.Type == tagsType
}

// checkTagMembers refuses a tag that leaves out its TagKey or its
// TagValue, or sends null for one, as AWS's request validation does: both
// are required members of the model's Tag. Decoded, such a tag would read
// as one with an empty value (or key), which a tag may have, and be
// stored as that. body is valid JSON whose object members are spelled
// exactly (checkMembers).
func checkTagMembers(body []byte) error {
	var in struct{ Tags []map[string]json.RawMessage }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil // left to the decoding, which has refused it already
	}
	var violations []string
	for i, tag := range in.Tags {
		for _, member := range []string{"TagKey", "TagValue"} {
			if v, ok := tag[member]; !ok || string(v) == "null" {
				violations = append(violations, fmt.Sprintf("Value null at 'tags.%d.member.%s' failed to satisfy constraint: Member must not be null",
					i+1, strings.ToLower(member[:1])+member[1:]))
			}
		}
	}
	switch len(violations) {
	case 0:
		return nil
	case 1:
		return errValidation("1 validation error detected: %s", violations[0])
	default:
		return errValidation("%d validation errors detected: %s", len(violations), strings.Join(violations, "; "))
	}
}
