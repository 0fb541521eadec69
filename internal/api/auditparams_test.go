package api

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
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
		got, ok := scanParams(body, nil)
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
		if want := decodeParams(body, nil); !bytes.Equal(got, want) {
			t.Fatalf("scanParams(%q)\n = %s\nwant %s", body, got, want)
		}
	})
}

// A plaintext, however large, is skipped and never copied into the record.
func TestScanParamsSkipsPlaintext(t *testing.T) {
	secret := strings.Repeat("c2VjcmV0", 1<<14)
	body := []byte(`{"Plaintext":"` + secret + `","KeyId":"alias/k","CiphertextBlob":"` + secret + `"}`)
	got, ok := scanParams(body, nil)
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
			scanParams(body, nil)
		}
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			decodeParams(body, nil)
		}
	})
}

// auditedStruct has a field for each audited member, as an operation's
// input struct has: encoding/json matches member names to it as it does
// to the operations'.
var auditedStruct = func() reflect.Type {
	fields := make([]reflect.StructField, len(auditedParams))
	for i, n := range auditedParams {
		fields[i] = reflect.StructField{Name: n, Type: reflect.TypeFor[json.RawMessage]()}
	}
	return reflect.StructOf(fields)
}()

// FuzzParamsNameWhatIsDecoded: a record names every audited member the
// operation decodes, however the client spelled its name (ASCII case, the
// Kelvin sign for K, the long s for S, escaped), and no other.
func FuzzParamsNameWhatIsDecoded(f *testing.F) {
	for _, s := range []string{
		`{"\u212aeyId":"alias/hidden","Plaintext":"aGk="}`,
		"{\"\xe2\x84\xaaeyId\":\"alias/hidden\"}",
		`{"Tag\u017f":[{"TagKey":"a","TagValue":"b"}],"Alia\u017fName":"alias/x"}`,
		`{"keyid":"a","KEYID":"b","KeyId":null}`,
		`{"K\u0065yId":"escaped"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v := reflect.New(auditedStruct)
		if json.Unmarshal(body, v.Interface()) != nil {
			return
		}
		params := requestParameters(body, nil)
		var recorded map[string]json.RawMessage
		if params != nil {
			if err := json.Unmarshal(params, &recorded); err != nil {
				t.Fatalf("requestParameters(%q) = %q: %v", body, params, err)
			}
		}
		for i, name := range paramNames {
			decoded := v.Elem().Field(i).Interface().(json.RawMessage) != nil
			if _, ok := recorded[name]; ok != decoded {
				t.Fatalf("body %q: %s decoded %v, recorded %v (%s)", body, auditedParams[i], decoded, ok, params)
			}
		}
	})
}
