package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// appendRecord writes exactly what encoding/json writes.
func TestAppendRecordMatchesEncodingJSON(t *testing.T) {
	cases := []Record{
		{},
		{EventVersion: "1.11", UserIdentity: UserIdentity{Type: "Root", PrincipalID: "1", ARN: "arn:aws:iam::1:root", AccountID: "1", AccessKeyID: "AK", UserName: "u"},
			EventTime: "2026-01-01T00:00:00Z", EventSource: "kms.amazonaws.com", EventName: "Encrypt", AWSRegion: "us-east-1",
			SourceIPAddress: "127.0.0.1", UserAgent: "aws-cli/2 <x> & \"q\" \\ \t\n\r\x01 é \u2028 \xff end",
			RequestParameters: json.RawMessage(`{"keyId":"k","encryptionContext":{"a":"b"}}`), ResponseElements: json.RawMessage("null"),
			ErrorCode: "X", ErrorMessage: "m", RequestID: "r", EventID: "e", ReadOnly: true,
			Resources: []Resource{{AccountID: "1", Type: "AWS::KMS::Key", ARN: "arn"}, {Type: "T", ARN: "a2"}},
			EventType: "AwsApiCall", ManagementEvent: true, RecipientAccountID: "1", EventCategory: "Management", Sequence: 42, PrevHash: "00"},
		{EventVersion: "1.11", UserIdentity: UserIdentity{Type: "Unknown"}, ErrorCode: "IncompleteSignatureException", ErrorMessage: "m",
			UnrecordedBefore: 18446744073709551615, Sequence: 7, PrevHash: "00"},
		{EventVersion: "1.11", UserIdentity: UserIdentity{Type: "AssumedRole", PrincipalID: "AROAX:s\"", ARN: "arn:aws:sts::1:assumed-role/r/s",
			AccountID: "1", AccessKeyID: "ASIA", SessionContext: &SessionContext{
				SessionIssuer: SessionIssuer{Type: "Role", PrincipalID: "AROAX", ARN: "arn:aws:iam::1:role/p/r", AccountID: "1", UserName: "r<"},
				Attributes:    SessionAttributes{CreationDate: "2026-01-01T00:00:00Z", MFAAuthenticated: "false"}}},
			ResponseElements: json.RawMessage(`{"credentials":{"accessKeyId":"ASIA"}}`), RequestParameters: json.RawMessage("null"), Sequence: 8, PrevHash: "00"},
		{EventVersion: "1.11", UserIdentity: UserIdentity{Type: "AWSService", AccountID: "1", InvokedBy: "kms.amazonaws.com"},
			EventName: "RotateKey", Resources: []Resource{{AccountID: "1", Type: "AWS::KMS::Key", ARN: "arn"}}, EventType: "AwsServiceEvent",
			ManagementEvent: true, RecipientAccountID: "1", ServiceEventDetails: json.RawMessage(`{"rotationType":"AUTOMATIC","keyId":"k"}`),
			EventCategory: "Management", Sequence: 9, PrevHash: "00"},
		{EventVersion: "1.11", UserIdentity: UserIdentity{Type: "Root", AccountID: "1"}, EventName: "TagResource",
			AdditionalEventData: json.RawMessage(`{"recovered":true}`), EventCategory: "Management", Sequence: 10, PrevHash: "00"},
	}
	for i, r := range cases {
		if r.RequestParameters == nil {
			r.RequestParameters = json.RawMessage("null")
			r.ResponseElements = json.RawMessage("null")
		}
		want, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRecord(nil, &r); !bytes.Equal(got, want) {
			t.Fatalf("case %d:\ngot  %s\nwant %s", i, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("plain")
	f.Add("<&>\"\\\x00\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s want %s", s, got, want)
		}
	})
}

// Whatever a client sends, a record is valid JSON in valid UTF-8 without
// lone surrogates, so that every reader — encoding/json, a JSON string on
// the wire to `kms audit verify --endpoint` — sees the bytes that were
// hashed, and the chain verifies.
func FuzzRecordIsValidJSON(f *testing.F) {
	f.Add("ua", []byte(`{"encryptionContext":{"k":"\xff\xfe"}}`))
	f.Add("\xff", []byte(`{"a":"\ud800","b":"\udc00\ud83d\ude00","c":"x\u00"}`))
	f.Add("", []byte("{\"a\":\"\x01\"}"))
	f.Add("", []byte(`not json`))
	f.Fuzz(func(t *testing.T, s string, raw []byte) {
		r := Record{EventVersion: "1.11", UserAgent: s, UserIdentity: UserIdentity{Type: "Unknown", AccessKeyID: s},
			RequestParameters: raw, ResponseElements: json.RawMessage("null"), ErrorMessage: s}
		r.Sequence, r.PrevHash = 1, genesis
		ev := appendRecord(nil, &r)
		if !utf8.Valid(ev) || !json.Valid(ev) {
			t.Fatalf("record is not valid JSON in UTF-8: %q", ev)
		}
		if hasLoneSurrogate(ev) {
			t.Fatalf("record holds a lone surrogate: %q", ev)
		}
		ln := appendLine(nil, chainHash(genesis, ev), ev)
		// As --endpoint receives it: a JSON string, decoded.
		wire, _ := json.Marshal(string(ln[:len(ln)-1]))
		var got string
		if err := json.Unmarshal(wire, &got); err != nil || got != string(ln[:len(ln)-1]) {
			t.Fatalf("line changed on the wire: %q", ln)
		}
		if _, _, err := checkLine([]byte(got), genesis, 1); err != nil {
			t.Fatalf("line does not verify: %v: %q", err, ln)
		}
	})
}

// hasLoneSurrogate reports whether b holds a \u escape of a surrogate that
// is not part of a pair.
func hasLoneSurrogate(b []byte) bool {
	for i := 0; i+6 <= len(b); i++ {
		if b[i] == '\\' {
			if b[i+1] != 'u' {
				i++
				continue
			}
			r, _ := hex4(b[i:])
			switch {
			case r >= 0xd800 && r < 0xdc00:
				r2, ok := hex4(b[i+6:])
				if !ok || r2 < 0xdc00 || r2 >= 0xe000 {
					return true
				}
				i += 11
			case r >= 0xdc00 && r < 0xe000:
				return true
			default:
				i += 5
			}
		}
	}
	return false
}

// CleanJSON cuts long strings at the bound and marks the cut.
func TestCleanJSONBoundsStrings(t *testing.T) {
	got := CleanJSON([]byte(`{"a":"abcdefgh","b":["\u00e9\u00e9\u00e9"],"c":"ab"}`), 6)
	want := `{"a":"abcdef...(truncated)","b":["\u00e9...(truncated)"],"c":"ab"}`
	if string(got) != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if got := CleanJSON([]byte("\"\xff\xfe\""), 0); string(got) != `"\ufffd\ufffd"` {
		t.Fatalf("invalid UTF-8: got %s", got)
	}
}

func TestARNAccount(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:kms:us-east-1:111122223333:key/1234":  "111122223333",
		"arn:aws:kms:us-east-1:111122223333:alias/a:b": "111122223333",
		"arn:aws:kms:us-east-1:111122223333":           "",
		"arn:aws:kms":                                  "",
		"":                                             "",
	} {
		if got := arnAccount(arn); got != want {
			t.Errorf("arnAccount(%q) = %q, want %q", arn, got, want)
		}
	}
}

// The commit hashes the previous hash and the event in one buffer; it must
// be the chain's hash that verification recomputes.
func TestHashLinkedIsChainHash(t *testing.T) {
	prev := chainHash("", []byte(`{"a":1}`))
	ev := []byte(`{"eventVersion":"1.11","sequence":2}`)
	if got, want := hashLinked(append([]byte(prev), ev...)), chainHash(prev, ev); got != want {
		t.Fatalf("hashLinked = %s, chainHash = %s", got, want)
	}
}

// AppendBounded cuts arrays to their first elements, saying how many it
// left out, drops space outside strings, and appends nothing past its
// bound.
func TestAppendBounded(t *testing.T) {
	for _, tc := range []struct {
		raw                       string
		maxString, items, maxSize int
		want                      string
		ok                        bool
	}{
		{`{"a": [1, 2, 3, 4], "b": [ ], "c":[[1,2,3],{"d":[5,"],",6]}]}`, 0, 2, 0,
			`{"a":[1,2,"...(2 more)"],"b":[],"c":[[1,2,"...(1 more)"],{"d":[5,"],","...(1 more)"]}]}`, true},
		{`[[1],{"a":[2]},[3,4],"x"]`, 0, 2, 0, `[[1],{"a":[2]},"...(2 more)"]`, true},
		{`["a b", "c"]`, 0, 2, 0, `["a b","c"]`, true},
		{"[\"\xff\xff\",\"x\"]", 0, 1, 0, `["\ufffd\ufffd","...(1 more)"]`, true},
		{`["abcdefgh"]`, 4, 0, 0, `["abcd...(truncated)"]`, true},
		{`["abcdefgh"]`, 0, 0, 12, `["abcdefgh"]`, true},
		{`["abcdefgh"]`, 0, 0, 11, ``, false},
		{`[1,`, 0, 5, 0, `null`, true},
	} {
		got, ok := AppendBounded([]byte("x"), []byte(tc.raw), tc.maxString, tc.items, tc.maxSize)
		if string(got) != "x"+tc.want || ok != tc.ok {
			t.Errorf("AppendBounded(%q, %d, %d, %d) = %q, %v; want %q, %v", tc.raw, tc.maxString, tc.items, tc.maxSize, got, ok, "x"+tc.want, tc.ok)
		}
	}
}
