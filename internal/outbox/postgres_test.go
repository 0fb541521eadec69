package outbox_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/outbox"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/pgstore"
	"github.com/openkms/kms/internal/store/pgtest"
	"github.com/openkms/kms/internal/testsupport"
)

// pgNode is a cluster node: the shared store and a chain of its own.
type pgNode struct {
	st  store.Store
	raw *pgstore.Store
	log *audit.Log
	box *outbox.Box
	rec audit.Recorder
}

func startPG(t *testing.T, dsn, host string, clock *testsupport.Clock) *pgNode {
	t.Helper()
	ctx := context.Background()
	raw, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	log, err := audit.OpenPostgres(ctx, raw.Pool(), host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	n := &pgNode{raw: raw, log: log}
	n.box = outbox.New(log, audit.NewPostgresTrail(raw.Pool()), clock.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	n.st = n.box.Wrap(raw)
	n.rec = n.box.Recorder(audit.NewLogRecorder(log))
	return n
}

// pgRecords are the records with eventID id in every chain, by chain.
func pgRecords(t *testing.T, raw *pgstore.Store, id string) map[string][]map[string]any {
	t.Helper()
	rows, err := raw.Pool().Query(context.Background(), `SELECT chain, line FROM kms_audit_records`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]map[string]any{}
	for rows.Next() {
		var chain string
		var line []byte
		if err := rows.Scan(&chain, &line); err != nil {
			t.Fatal(err)
		}
		var l struct {
			Event map[string]any `json:"event"`
		}
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatal(err)
		}
		if l.Event["eventID"] == id {
			out[chain] = append(out[chain], l.Event)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// In a cluster, a node killed between a change and its record leaves the
// entry in its chain (a node's every start has a new one): the node that
// does the background work writes the record in its own chain once the
// entry is OrphanAge old, and leaves alone one whose record is there.
func TestNodeKilledBeforeItsRecordInPostgres(t *testing.T) {
	dsn := pgtest.Start(t)
	clock := testsupport.NewClock(t0)
	a := startPG(t, dsn, "node-a", clock)
	ctx := context.Background()
	lost, kept := call("DisableKey"), call("CreateAlias")
	for _, ev := range []*audit.Event{lost, kept} {
		err := a.st.Update(audit.NewContext(ctx, ev), func(tx store.Tx) error { return tx.Put([]byte("key/"+ev.EventID), nil) })
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := a.rec.Record(ctx, kept); err != nil {
		t.Fatal(err)
	}
	// Node a is killed: no Flush, lost never recorded.

	b := startPG(t, dsn, "node-b", clock)
	if got, err := b.box.Recover(ctx, false); err != nil || got != 0 {
		t.Fatalf("Recover of b's own chain: %d, %v", got, err)
	}
	clock.Advance(outbox.OrphanAge - time.Second)
	if got, err := b.box.Recover(ctx, true); err != nil || got != 0 {
		t.Fatalf("Recover of young entries of another chain: %d, %v", got, err)
	}
	clock.Advance(time.Second)
	if got, err := b.box.Recover(ctx, true); err != nil || got != 1 {
		t.Fatalf("Recover of a's entries: %d records, %v; want 1", got, err)
	}
	if err := b.box.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs := pgRecords(t, b.raw, lost.EventID)
	if got := recs[b.log.Chain()]; len(recs) != 1 || len(got) != 1 || got[0]["eventName"] != "DisableKey" {
		t.Fatalf("records of the lost call: %v", recs)
	}
	if extra, _ := recs[b.log.Chain()][0]["additionalEventData"].(map[string]any); extra["recovered"] != true {
		t.Fatalf("recovered record not marked: %v", recs)
	}
	if recs := pgRecords(t, b.raw, kept.EventID); len(recs) != 1 || len(recs[a.log.Chain()]) != 1 {
		t.Fatalf("records of the recorded call: %v", recs)
	}
	var left int
	err := b.raw.View(ctx, func(tx store.Tx) error {
		return tx.Scan([]byte(outbox.Prefix), nil, func(_, _ []byte) (bool, error) { left++; return true, nil })
	})
	if err != nil || left != 0 {
		t.Fatalf("entries left: %d, %v", left, err)
	}
}
