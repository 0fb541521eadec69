package pgstore

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// FuzzParsePayload feeds the notification parser what any session of the
// database could send on the channel: it must never panic, and what it
// returns must be exactly the keys an honest payload names, or nil
// ("everything may have changed").
func FuzzParsePayload(f *testing.F) {
	f.Add("6b65792f31", "key/2")
	f.Add("*", "")
	f.Add("zz\n6b", "alias/111122223333/alias/x")
	f.Add("", "iam/user/111122223333/alice")
	f.Fuzz(func(t *testing.T, raw, key string) {
		if keys := parsePayload(raw); keys != nil {
			var lines []string
			for _, k := range keys {
				lines = append(lines, strings.ToLower(string(hexEncode(k))))
			}
			if strings.Join(lines, "\n") != strings.ToLower(raw) {
				t.Fatalf("parsePayload(%q) = %q, which does not encode back", raw, keys)
			}
		}
		changed := map[string]struct{}{key: {}, "key/" + key: {}}
		p := payload(changed)
		keys := parsePayload(p)
		if p == payloadEverything {
			if keys != nil {
				t.Fatalf("an oversized change parsed to %q", keys)
			}
			return
		}
		want := [][]byte{[]byte(key), []byte("key/" + key)}
		slices.SortFunc(want, bytes.Compare)
		if !slices.EqualFunc(keys, want, bytes.Equal) {
			t.Fatalf("round trip of %q gave %q", want, keys)
		}
	})
}

func hexEncode(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}
