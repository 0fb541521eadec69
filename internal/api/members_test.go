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
		err := checkMembers([]byte(tc.body), grant, structMembers(grant))
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

// A body that gives no member holding a structure (Encrypt's, or a
// Decrypt's without a Recipient) is checked by one pass over its bytes,
// which leaves to the walk every body it cannot clear.
func TestCheckMembersWithoutNestedStructures(t *testing.T) {
	encrypt := reflect.TypeFor[*kmsapi.EncryptInput]()
	for typ, want := range map[reflect.Type]string{
		encrypt:                                 "",
		reflect.TypeFor[*kmsapi.DecryptInput](): "recipient",
		reflect.TypeFor[*kmsapi.CreateGrantInput](): "constraints",
		reflect.TypeFor[*kmsapi.TagResourceInput](): "tags",
	} {
		if got := strings.Join(structMembers(typ), ","); got != want {
			t.Errorf("structMembers(%v) = %q, want %q", typ, got, want)
		}
	}
	for _, tc := range []struct {
		body, want string
		fast       bool // cleared without the walk
	}{
		{`{"KeyId":"k","Plaintext":"aGk=","EncryptionContext":{"a":"1","b":"2"},"GrantTokens":["t"]}`, "", true},
		{` { "KeyId" : "k" , "EncryptionContext" : { } , "GrantTokens" : [ ] } `, "", true},
		{`{"KeyId":"a","keyid":null}`, "The request body has the member 'keyid' more than once.", false},
		{`{"KeyId":"a","KeyId":"b"}`, "", false},
		{`{"EncryptionContext":{"a":"1"},"EncryptionContext":{"b":"2"}}`, "The request body has the member 'EncryptionContext' more than once.", false},
		{`{"EncryptionContext":{"a":"1","A":"2"}}`, "", false},
		{`{"EncryptionContext":{"a":"1","a":null}}`, "The request body has the member 'a' more than once.", false},
		{`{"K\u0065yId":"k"}`, "", false},
		{`{"\u212aeyId":"k","KeyId":null}`, "The request body has the member 'KeyId' more than once.", false},
	} {
		if got := distinctMembers([]byte(tc.body), nil); got != tc.fast {
			t.Errorf("distinctMembers(%s) = %v, want %v", tc.body, got, tc.fast)
		}
		if got := errText(checkMembers([]byte(tc.body), encrypt, structMembers(encrypt))); got != tc.want {
			t.Errorf("checkMembers(%s) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// FuzzCheckMembers: any body encoding/json accepts is walked without a
// panic, and refused only with a SerializationException; the one-pass
// check clears only bodies the walk would clear.
func FuzzCheckMembers(f *testing.F) {
	for _, s := range []string{
		`{"EncryptionContext":{"a":"1"},"EncryptionContext":{"b":"2"}}`,
		`{"Tags":[{"TagKey":"a"}],"Tag\u017f":[{"TagKey":"b"}]}`,
		`{"Constraints":{"EncryptionContextEquals":{"a":null,"a":"1"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"CiphertextBlob":"AA==","recipient":{"keyEncryptionAlgorithm":"RSAES_OAEP_SHA_256"}}`))
	types := []reflect.Type{reflect.TypeFor[*kmsapi.CreateGrantInput](), reflect.TypeFor[*kmsapi.EncryptInput](), reflect.TypeFor[*kmsapi.TagResourceInput](),
		reflect.TypeFor[*kmsapi.DecryptInput]()}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, typ := range types {
			if json.Unmarshal(body, reflect.New(typ.Elem()).Interface()) != nil {
				continue
			}
			if distinctMembers(body, structMembers(typ)) && walkMembers(body, typ) != nil {
				t.Fatalf("distinctMembers cleared %q, which the walk refuses for %v: %v", body, typ, walkMembers(body, typ))
			}
			if err := checkMembers(body, typ, structMembers(typ)); err != nil {
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
