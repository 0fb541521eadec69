package api

import (
	"encoding/json"
	"fmt"
	"reflect"

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

// tagMembersLeftOut names, as validation messages name them
// ("tags.2.member.tagKey"), the TagKey and TagValue members that the tags
// of body leave out or give as null. Both are required members of the
// model's Tag; decoded, such a tag would read as one with an empty value
// (or key), which a tag may have, and be stored as that. The operation
// refuses them (service.WithNullMembers) with the rest of its request's
// violations, as AWS's request validation does. body is valid JSON whose
// object members are spelled exactly (checkMembers).
func tagMembersLeftOut(body []byte) []string {
	var in struct{ Tags []map[string]json.RawMessage }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil // left to the decoding, which has refused it already
	}
	var names []string
	for i, tag := range in.Tags {
		for _, member := range []string{"TagKey", "TagValue"} {
			if v, ok := tag[member]; !ok || string(v) == "null" {
				names = append(names, fmt.Sprintf("tags.%d.member.%s", i+1, lowerFirst(member)))
			}
		}
	}
	return names
}
