package api

import (
	"slices"
	"testing"
)

// A tag must give both its TagKey and its TagValue, the empty string
// being a value: one left out or null is named for the operation to
// refuse as AWS refuses it, not read as empty and stored.
func TestTagMembersLeftOut(t *testing.T) {
	for _, tc := range []struct {
		body string
		want []string
	}{
		{`{"KeyId":"k","Tags":[{"TagKey":"a","TagValue":""}]}`, nil},
		{`{"KeyId":"k","tags":[{"TagKey":"a","TagValue":"v"},{"TagKey":"b","TagValue":"w"}]}`, nil},
		{`{"KeyId":"k","Tags":[]}`, nil},
		{`{"KeyId":"k"}`, nil},
		{`{"KeyId":"k","Tags":[{"TagKey":"a"}]}`, []string{"tags.1.member.tagValue"}},
		{`{"KeyId":"k","Tags":[{"TagKey":"a","TagValue":"v"},{"TagValue":"v"}]}`, []string{"tags.2.member.tagKey"}},
		{`{"KeyId":"k","Tags":[{"TagKey":"a","TagValue":null}]}`, []string{"tags.1.member.tagValue"}},
		{`{"KeyId":"k","Tags":[{}]}`, []string{"tags.1.member.tagKey", "tags.1.member.tagValue"}},
	} {
		if got := tagMembersLeftOut([]byte(tc.body)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.body, got, tc.want)
		}
	}
}
