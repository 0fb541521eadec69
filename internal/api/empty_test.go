package api

import (
	"reflect"
	"slices"
	"testing"

	"github.com/openkms/kms/internal/kmsapi"
)

// emptyMembers names the top-level plain-string members given as "", by
// their last value, as validation messages name them; not a pointer
// member, which holds "" as given, nor a member within a structure.
func TestEmptyMembers(t *testing.T) {
	for _, tc := range []struct {
		in   any
		body string
		want []string
	}{
		{new(kmsapi.EncryptInput), `{"KeyId":"k","Plaintext":"eA=="}`, nil},
		{new(kmsapi.EncryptInput), `{"KeyId":"","Plaintext":"eA==","EncryptionAlgorithm":""}`, []string{"keyId", "encryptionAlgorithm"}},
		{new(kmsapi.EncryptInput), `{"keyid":"", "KeyId":"k"}`, nil},
		{new(kmsapi.EncryptInput), `{"KeyId":"k", "keyid":""}`, []string{"keyId"}},
		{new(kmsapi.EncryptInput), `{"Unknown":"","EncryptionContext":{"a":""}}`, nil},
		{new(kmsapi.CreateKeyInput), `{"KeySpec":"","Description":"","Tags":[{"TagKey":"a","TagValue":""}]}`, []string{"keySpec"}},
		{new(kmsapi.UpdateKeyDescriptionInput), `{"KeyId":"k","Description":""}`, nil},
		{new(kmsapi.RetireGrantInput), `{"GrantToken":""}`, []string{"grantToken"}},
	} {
		got := emptyMembers([]byte(tc.body), reflect.TypeOf(tc.in))
		if !slices.Equal(got, tc.want) {
			t.Errorf("emptyMembers(%T, %s) = %q, want %q", tc.in, tc.body, got, tc.want)
		}
	}
}
