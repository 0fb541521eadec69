package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/kmsapi"
)

func TestCheckMembers(t *testing.T) {
	grant := reflect.TypeFor[*kmsapi.CreateGrantInput]()
	const spelled = "spelled:"
	for _, tc := range []struct{ body, want string }{
		{`{"KeyId":"a","KeyId":"b"}`, ""},
		{`{"KeyId":"a","keyid":null}`, "keyid"},
		{`{"Operations":["Decrypt"],"Operations":["Encrypt"]}`, ""},
		{`{"Constraints":{},"Constraints":{}}`, "Constraints"},
		{`{"Constraints":{"EncryptionContextSubset":{"a":"1","A":"2"}}}`, ""},
		{`{"Constraints":{"EncryptionContextSubset":{"a":"1","a":"2"}}}`, ""},
		{`{"Constraints":{"EncryptionContextSubset":{"a":"1","a":null}}}`, "a"},
		{`{"Constraints":{"EncryptionContextSubset":{},"EncryptionContextSubset":{}}}`, "EncryptionContextSubset"},
		{`{"keyid":"a","constraints":{}}`, ""},
		{`{"Constraints":{"encryptionContextSubset":{}}}`, spelled + "encryptionContextSubset"},
		{`{"Constraints":{"EncryptionContextSub\u017fet":{}}}`, spelled + "EncryptionContextSub\u017fet"},
		{`{"Constraints":{"Unknown":{}}}`, ""},
		{`{"Unknown":{},"Unknown":{},"unknown":null}`, ""},
		{`{"GrantTokens":[{"x":1,"x":2}]}`, ""},
	} {
		err := checkMembers([]byte(tc.body), grant)
		want := ""
		if name, ok := strings.CutPrefix(tc.want, spelled); ok {
			want = "The request body has the member '" + name + "' within a structure: such members must be spelled exactly."
		} else if tc.want != "" {
			want = "The request body has the member '" + tc.want + "' more than once."
		}
		if got := errText(err); got != want {
			t.Errorf("checkMembers(%s) = %q, want %q", tc.body, got, want)
		}
	}
}

// FuzzCheckMembers: any body encoding/json accepts is walked without a
// panic, and refused only with a SerializationException.
func FuzzCheckMembers(f *testing.F) {
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
			if err := checkMembers(body, typ); err != nil {
				if _, typ, _ := wireError(err); typ != "SerializationException" {
					t.Fatalf("checkMembers(%q): %v", body, err)
				}
			}
		}
	})
}

// errText is the message of a protocol error, "" for none.
func errText(err error) string {
	if err == nil {
		return ""
	}
	_, _, msg := wireError(err)
	return msg
}
