package audit

import (
	"bytes"
	"encoding/json"
	"testing"
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
