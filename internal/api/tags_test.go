package api

import (
	"testing"

	"github.com/openkms/kms/internal/kmsapi"
)

// A tag must give both its TagKey and its TagValue, the empty string
// being a value: one left out or null is refused as AWS refuses it, not
// read as empty and stored. Inputs without tags are not looked at.
func TestTagMembersAreRequired(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"KeyId":"k","Tags":[{"TagKey":"a","TagValue":""}]}`, ""},
		{`{"KeyId":"k","tags":[{"TagKey":"a","TagValue":"v"},{"TagKey":"b","TagValue":"w"}]}`, ""},
		{`{"KeyId":"k","Tags":[]}`, ""},
		{`{"KeyId":"k"}`, ""},
		{`{"KeyId":"k","Tags":[{"TagKey":"a"}]}`, "1 validation error detected: Value null at 'tags.1.member.tagValue' failed to satisfy constraint: Member must not be null"},
		{`{"KeyId":"k","Tags":[{"TagKey":"a","TagValue":"v"},{"TagValue":"v"}]}`, "1 validation error detected: Value null at 'tags.2.member.tagKey' failed to satisfy constraint: Member must not be null"},
		{`{"KeyId":"k","Tags":[{"TagKey":"a","TagValue":null}]}`, "1 validation error detected: Value null at 'tags.1.member.tagValue' failed to satisfy constraint: Member must not be null"},
		{`{"KeyId":"k","Tags":[{}]}`, "2 validation errors detected: Value null at 'tags.1.member.tagKey' failed to satisfy constraint: Member must not be null; " +
			"Value null at 'tags.1.member.tagValue' failed to satisfy constraint: Member must not be null"},
	} {
		for _, in := range []any{new(kmsapi.TagResourceInput), new(kmsapi.CreateKeyInput), new(kmsapi.ReplicateKeyInput)} {
			if got := errText(decodeBody([]byte(tc.body), in)); got != tc.want {
				t.Errorf("%T from %s: %q, want %q", in, tc.body, got, tc.want)
			}
		}
	}
	// Encrypt has no Tags member: one sent is ignored, as any unknown
	// member is.
	if err := decodeBody([]byte(`{"KeyId":"k","Tags":[{}]}`), new(kmsapi.EncryptInput)); err != nil {
		t.Errorf("Encrypt with an unknown Tags member: %v", err)
	}
}
