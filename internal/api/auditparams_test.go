package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzScanParams checks the one-pass scan of audited members against
// decoding with encoding/json: for every valid body it handles, the same
// bytes; for any body at all, a record that is valid JSON.
func FuzzScanParams(f *testing.F) {
	for _, s := range []string{
		`{"KeyId":"alias/x","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}`,
		`{"keyid":"1234abcd-12ab-34cd-56ef-1234567890ab","GrantTokens":["t1","t2"],"KeyId":"second"}`,
		` { "Limit" : 10 , "Marker" : "x\"}" , "Policy": "{\"Version\":\"2012-10-17\"}" } `,
		`{"KeyId":null,"DryRun":true,"NumberOfBytes":1e3}`,
		`{"K\u0065yId":"escaped name"}`,
		`{"Tags":[{"TagKey":"a","TagValue":"[}"}],"Description":""}`,
		`{}`, `[]`, `{"KeyId":"x"} trailing`, `{"KeyId":`, `{"KeyId":"x",}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanParams(body)
		if !ok {
			return
		}
		if got != nil && !json.Valid(got) {
			t.Fatalf("scanParams(%q) = %q, not JSON", body, got)
		}
		if !json.Valid(body) {
			return
		}
		if want := decodeParams(body); !bytes.Equal(got, want) {
			t.Fatalf("scanParams(%q)\n = %s\nwant %s", body, got, want)
		}
	})
}

// A plaintext, however large, is skipped and never copied into the record.
func TestScanParamsSkipsPlaintext(t *testing.T) {
	secret := strings.Repeat("c2VjcmV0", 1<<14)
	body := []byte(`{"Plaintext":"` + secret + `","KeyId":"alias/k","CiphertextBlob":"` + secret + `"}`)
	got, ok := scanParams(body)
	if !ok || string(got) != `{"keyId":"alias/k"}` {
		t.Fatalf("got %s, %v", got, ok)
	}
}

func BenchmarkRequestParameters(b *testing.B) {
	body := []byte(`{"KeyId":"1234abcd-12ab-34cd-56ef-1234567890ab","Plaintext":"` + strings.Repeat("A", 44) + `","EncryptionContext":{"purpose":"bench"}}`)
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			scanParams(body)
		}
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			decodeParams(body)
		}
	})
}
