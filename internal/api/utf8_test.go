package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestBadText(t *testing.T) {
	for _, tc := range []struct {
		body string
		bad  bool
	}{
		{`{}`, false},
		{`{"a":"plain"}`, false},
		{`{"a":"\u00e9\n\t\"\\"}`, false},
		{`{"a":"\ud83d\ude00"}`, false},
		{`{"a":"\uD83D\uDE00"}`, false},
		{`{"a":"\ufffd"}`, false},
		{`{"a":"\\ud800"}`, false},
		{`{"a":"\\\ud83d\ude00"}`, false},
		{"{\"a\":\"\xef\xbf\xbd\"}", false},
		{`{"a":"\ud800"}`, true},
		{`{"a":"\uDBFF"}`, true},
		{`{"a":"\udc00"}`, true},
		{`{"a":"\ud800\ud800"}`, true},
		{`{"a":"\ud800\u0041"}`, true},
		{`{"a":"\ud800x"}`, true},
		{`{"a":"\\\ud800"}`, true},
		{`{"\ud800":"a"}`, true},
		{"{\"a\":\"\xff\"}", true},
		{"{\"a\":\"\xed\xa0\x80\"}", true}, // a surrogate encoded as UTF-8
		{"{\"a\":\"\xc0\xaf\"}", true},     // an overlong encoding
	} {
		if got := badText([]byte(tc.body)); got != tc.bad {
			t.Errorf("badText(%q) = %v, want %v", tc.body, got, tc.bad)
		}
	}
}

func TestBadTextMember(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"KeyId":"k","EncryptionContext":{"a":"\ud800"}}`, "encryptionContext"},
		{`{"SourceEncryptionContext":{},"DestinationEncryptionContext":{"\udc00":"x"}}`, "destinationEncryptionContext"},
		{"{\"Description\":\"\xff\",\"EncryptionContext\":{\"a\":\"\\ud800\"}}", "description"},
		{`{"\ud800":1}`, ""},
		{`not json`, ""},
	} {
		if got := badTextMember([]byte(tc.body)); got != tc.want {
			t.Errorf("badTextMember(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// FuzzBadText holds badText to encoding/json: a JSON body passes exactly
// when decoding it makes no U+FFFD that the body did not spell.
func FuzzBadText(f *testing.F) {
	for _, s := range []string{`{"a":"\ud800"}`, `{"a":"\ud83d\ude00"}`, "{\"a\":\"\xff\"}", `{"a":["\\u0041",{"b":"\uDC00"}]}`, `{"a":"\ufffd"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		bad := badText(body)
		var v any
		if json.Unmarshal(body, &v) != nil {
			return
		}
		if bytes.Contains(body, []byte("\ufffd")) || strings.Contains(strings.ToLower(string(body)), `\ufffd`) {
			return // the body spells U+FFFD: decoding cannot tell
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		replaced := bytes.Contains(out, []byte("\ufffd"))
		if bad != replaced {
			t.Fatalf("badText = %v, but decoding replaced text: %v (%q)", bad, replaced, body)
		}
		if bad && badTextMember(body) == "" && bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
			// Only a member name can hold the bad text then.
			var m map[string]json.RawMessage
			if json.Unmarshal(body, &m) == nil {
				for name, raw := range m {
					if name != "" && badText(raw) {
						t.Fatalf("badTextMember found no member, yet one holds bad text: %q", body)
					}
				}
			}
		}
	})
}
