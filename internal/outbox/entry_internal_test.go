package outbox

import (
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/openkms/kms/internal/audit"
)

type headTrail struct{ chain string }

func (h headTrail) Chain() string            { return h.chain }
func (headTrail) Head() (uint64, string)     { return 42, "" }
func (headTrail) Append(*audit.Record) error { return nil }

// An entry is written by hand as the JSON encoding/json would write (but
// for its escapes of HTML), and its record reads back as the event's.
func TestEntryIsWhatEncodingJSONWrites(t *testing.T) {
	at := time.Date(2026, 12, 7, 6, 0, 0, 123456789, time.FixedZone("x", 3600))
	b := New(headTrail{chain: "node<&>-1"}, nil, func() time.Time { return at }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ev := &audit.Event{Time: at, Source: "kms.amazonaws.com", Operation: "TagResource", Region: "us-east-1",
		Identity: audit.UserIdentity{Type: "Root", AccountID: "111122223333"}, RequestID: "r", EventID: "e",
		Params: json.RawMessage(`{"keyId":"k","tags":[{"tagKey":"a<b"}]}`)}
	got, err := b.entry(ev)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := ev.Snapshot()
	want, err := json.Marshal(entry{Chain: "node<&>-1", After: 42, Committed: at.UTC(), Record: rec})
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	json.Unmarshal(want, &w)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("entry:\ngot  %s\nwant %s", got, want)
	}
	var back entry
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	var r audit.Record
	if err := json.Unmarshal(back.Record, &r); err != nil || r.EventName != "TagResource" || r.RequestID != "r" || r.EventID != "e" ||
		string(r.RequestParameters) != `{"keyId":"k","tags":[{"tagKey":"a<b"}]}` || !back.Committed.Equal(at) {
		t.Fatalf("read back: %+v %+v %v", back, r, err)
	}
}
