package api

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/openkms/kms/internal/kmsapi"
)

func TestRepeatedMember(t *testing.T) {
	grant := reflect.TypeFor[*kmsapi.CreateGrantInput]()
	for _, tc := range []struct{ body, want string }{
		{`{"KeyId":"a","KeyId":"b"}`, ""},
		{`{"KeyId":"a","keyid":null}`, "keyid"},
		{`{"Operations":["Decrypt"],"Operations":["Encrypt"]}`, ""},
		{`{"Constraints":{},"Constraints":{}}`, "Constraints"},
		{`{"Constraints":{"EncryptionContextSubset":{"a":"1","A":"2"}}}`, ""},
		{`{"Constraints":{"EncryptionContextSubset":{"a":"1","a":"2"}}}`, ""},
		{`{"Constraints":{"EncryptionContextSubset":{"a":"1","a":null}}}`, "a"},
		{`{"Constraints":{"EncryptionContextSubset":{},"encryptioncontextsubset":{}}}`, "encryptioncontextsubset"},
		{`{"Unknown":{},"Unknown":{},"unknown":null}`, ""},
		{`{"GrantTokens":[{"x":1,"x":2}]}`, ""},
	} {
		if got := repeatedMember([]byte(tc.body), grant); got != tc.want {
			t.Errorf("repeatedMember(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// FuzzRepeatedMember: any body encoding/json accepts is walked to the end
// without a panic, and a member named is one the body has.
func FuzzRepeatedMember(f *testing.F) {
	for _, s := range []string{
		`{"EncryptionContext":{"a":"1"},"EncryptionContext":{"b":"2"}}`,
		`{"Tags":[{"TagKey":"a"}],"Tag\u017f":[{"TagKey":"b"}]}`,
		`{"Constraints":{"EncryptionContextEquals":{"a":null,"a":"1"}}}`,
	} {
		f.Add([]byte(s))
	}
	types := []reflect.Type{reflect.TypeFor[*kmsapi.CreateGrantInput](), reflect.TypeFor[*kmsapi.EncryptInput](), reflect.TypeFor[*kmsapi.TagResourceInput]()}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, typ := range types {
			if json.Unmarshal(body, reflect.New(typ.Elem()).Interface()) != nil {
				continue
			}
			name := repeatedMember(body, typ)
			if name != "" && !json.Valid(body) {
				t.Fatalf("named %q in a body that is not JSON", name)
			}
		}
	})
}
