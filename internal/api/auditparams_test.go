package api

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/audit"
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
		if len(got) > maxParamsBytes {
			t.Fatalf("scanParams(%q) gives %d bytes, over %d", body, len(got), maxParamsBytes)
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

// A form's parameters are bounded as a JSON body's: each string as
// written, the whole at maxParamsBytes, whatever the form holds.
func TestFormParametersBounded(t *testing.T) {
	form := url.Values{}
	for _, name := range auditedParams {
		form.Set(name, strings.Repeat("\xff<", 1<<14))
	}
	got := formParameters(form)
	if !json.Valid(got) || len(got) > maxParamsBytes {
		t.Fatalf("%d bytes of parameters, want valid JSON of at most %d", len(got), maxParamsBytes)
	}
	var m map[string]string
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(m["keyId"], audit.Truncated) || m["keyId"] == audit.Truncated {
		t.Errorf("keyId %.40q..., want its start and the mark of the cut", m["keyId"])
	}
	if m["maxSessionDuration"] != audit.Truncated && m["maxSessionDuration"] != "" {
		t.Errorf("the last member %.40q..., want it marked or left out", m["maxSessionDuration"])
	}

	small := url.Values{"UserName": {"alice"}, "Path": {"/ops/"}, "Action": {"CreateUser"}}
	if got := string(formParameters(small)); got != `{"userName":"alice","path":"/ops/"}` {
		t.Errorf("parameters %s", got)
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
