package auditcli_test

import (
	"encoding/json"
	"testing"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/auditcli"
)

// The trail's own fields go in additionalEventData: the record's place in
// its chain, and how many unauthenticated calls went unrecorded before it.
func TestCloudTrailEventAdditionalData(t *testing.T) {
	for _, tc := range []struct {
		rec  audit.Record
		want string
	}{
		{audit.Record{Sequence: 7, PrevHash: "ab"}, `{"sequence":7,"previousHash":"ab"}`},
		{audit.Record{Sequence: 8, PrevHash: "cd", UnrecordedBefore: 42}, `{"sequence":8,"previousHash":"cd","unrecordedBefore":42}`},
	} {
		got, err := json.Marshal(auditcli.CloudTrailEvent(&tc.rec).AdditionalEventData)
		if err != nil || string(got) != tc.want {
			t.Errorf("additionalEventData %s, %v; want %s", got, err, tc.want)
		}
	}
}
