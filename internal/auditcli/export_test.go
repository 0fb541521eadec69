package auditcli_test

import (
	"encoding/json"
	"testing"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/auditcli"
)

// The trail's own fields go in additionalEventData: the record's place in
// its chain, how many unauthenticated calls went unrecorded before it,
// and whether it was recovered.
func TestCloudTrailEventAdditionalData(t *testing.T) {
	for _, tc := range []struct {
		rec  audit.Record
		want string
	}{
		{audit.Record{Sequence: 7, PrevHash: "ab"}, `{"sequence":7,"previousHash":"ab"}`},
		{audit.Record{Sequence: 8, PrevHash: "cd", UnrecordedBefore: 42}, `{"sequence":8,"previousHash":"cd","unrecordedBefore":42}`},
		{audit.Record{Sequence: 9, PrevHash: "ef", AdditionalEventData: json.RawMessage(`{"recovered":true}`)}, `{"sequence":9,"previousHash":"ef","recovered":true}`},
	} {
		got, err := json.Marshal(auditcli.CloudTrailEvent(&tc.rec).AdditionalEventData)
		if err != nil || string(got) != tc.want {
			t.Errorf("additionalEventData %s, %v; want %s", got, err, tc.want)
		}
	}
}

// A service event keeps its eventType and serviceEventDetails, as
// CloudTrail delivers them; a call has neither details nor a place for
// them.
func TestCloudTrailEventServiceEvent(t *testing.T) {
	details := `{"rotationType":"AUTOMATIC","keyId":"k","keyOrigin":"AWS_KMS","currentKeyMaterialId":"m"}`
	ev := auditcli.CloudTrailEvent(&audit.Record{EventName: "RotateKey", EventType: "AwsServiceEvent",
		UserIdentity: audit.UserIdentity{Type: "AWSService", AccountID: "1", InvokedBy: "kms.amazonaws.com"}, ServiceEventDetails: json.RawMessage(details)})
	got, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(got, &out); err != nil {
		t.Fatal(err)
	}
	if string(out["serviceEventDetails"]) != details || string(out["eventType"]) != `"AwsServiceEvent"` || string(out["recipientAccountId"]) != `"1"` {
		t.Errorf("exported %s", got)
	}
	call, err := json.Marshal(auditcli.CloudTrailEvent(&audit.Record{EventName: "Decrypt"}))
	if err != nil {
		t.Fatal(err)
	}
	var callOut map[string]json.RawMessage
	if err := json.Unmarshal(call, &callOut); err != nil {
		t.Fatal(err)
	}
	if _, ok := callOut["serviceEventDetails"]; ok {
		t.Errorf("a call exported with serviceEventDetails: %s", call)
	}
}
