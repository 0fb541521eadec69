package outbox_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/outbox"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/testsupport"
)

// node is a server's store, trail and outbox, on files in dir.
type node struct {
	t     *testing.T
	dir   string
	raw   *boltstore.Store
	log   *audit.Log
	box   *outbox.Box
	st    store.Store
	rec   audit.Recorder
	clock *testsupport.Clock
}

func start(t *testing.T, dir string, clock *testsupport.Clock) *node {
	t.Helper()
	raw, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	log, err := audit.OpenDir(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, dir: dir, raw: raw, log: log, clock: clock}
	n.box = outbox.New(log, audit.NewFileTrail(dir), clock.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	n.st = n.box.Wrap(raw)
	n.rec = n.box.Recorder(audit.NewLogRecorder(log))
	t.Cleanup(n.stop)
	return n
}

// stop closes the node as a kill would leave it: no Flush.
func (n *node) stop() {
	n.log.Close()
	n.raw.Close()
}

// call is the event of a call by the account root, as the protocol layer
// has it when the call's change commits.
func call(op string) *audit.Event {
	return &audit.Event{Time: time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC), Source: "kms.amazonaws.com", Operation: op, Region: "us-east-1",
		Identity:  audit.UserIdentity{Type: "Root", AccountID: "111122223333", ARN: "arn:aws:iam::111122223333:root"},
		RequestID: keys.NewID().String(), EventID: keys.NewID().String(), Params: json.RawMessage(`{"keyId":"k"}`)}
}

// change commits a write of key as ev's call.
func (n *node) change(ev *audit.Event, key string) {
	n.t.Helper()
	err := n.st.Update(audit.NewContext(context.Background(), ev), func(tx store.Tx) error {
		return tx.Put([]byte(key), []byte("v"))
	})
	if err != nil {
		n.t.Fatal(err)
	}
}

// entries are the outbox's keys.
func (n *node) entries() []string {
	n.t.Helper()
	var ks []string
	err := n.raw.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte(outbox.Prefix), nil, func(k, _ []byte) (bool, error) {
			ks = append(ks, string(k))
			return true, nil
		})
	})
	if err != nil {
		n.t.Fatal(err)
	}
	return ks
}

// records are the trail's records with eventID id ("": every record).
func records(t *testing.T, dir, id string) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, audit.FirstSegment))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(audit.SegmentData(f))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 || sc.Bytes()[0] != '{' {
			continue
		}
		var line struct {
			Event map[string]any `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%q: %v", sc.Bytes(), err)
		}
		rec := line.Event
		if id == "" || rec["eventID"] == id {
			out = append(out, rec)
		}
	}
	return out
}

// record writes ev's record through the outbox's Recorder.
func (n *node) record(ev *audit.Event) {
	n.t.Helper()
	if err := n.rec.Record(context.Background(), ev); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) recover(others bool) int {
	n.t.Helper()
	got, err := n.box.Recover(context.Background(), others)
	if err != nil {
		n.t.Fatal(err)
	}
	if err := n.box.Flush(context.Background()); err != nil {
		n.t.Fatal(err)
	}
	return got
}

var t0 = time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)

// A server killed after a call's change committed and before its record
// was written: the next start writes the record, marked recovered.
func TestChangeWithoutItsRecordIsRecordedAtStart(t *testing.T) {
	dir := t.TempDir()
	clock := testsupport.NewClock(t0)
	n := start(t, dir, clock)
	// A record before, so that the lost one is not the trail's first.
	n.record(call("DescribeKey"))
	ev := call("TagResource")
	n.change(ev, "key/k")
	if got := n.entries(); len(got) != 1 || got[0] != outbox.Prefix+ev.EventID {
		t.Fatalf("entries after the commit: %q", got)
	}
	n.stop()

	n = start(t, dir, clock)
	if got := n.recover(false); got != 1 {
		t.Fatalf("Recover wrote %d records, want 1", got)
	}
	recs := records(t, dir, ev.EventID)
	if len(recs) != 1 {
		t.Fatalf("records of the call: %d, want 1", len(recs))
	}
	r := recs[0]
	if r["eventName"] != "TagResource" || r["requestID"] != ev.RequestID || r["eventTime"] != "2026-12-07T06:00:00Z" {
		t.Fatalf("recovered record: %v", r)
	}
	if id, _ := r["userIdentity"].(map[string]any); id["type"] != "Root" || id["accountId"] != "111122223333" {
		t.Fatalf("recovered record's caller: %v", r["userIdentity"])
	}
	if extra, _ := r["additionalEventData"].(map[string]any); extra["recovered"] != true {
		t.Fatalf("recovered record not marked: %v", r)
	}
	if p, _ := r["requestParameters"].(map[string]any); p["keyId"] != "k" {
		t.Fatalf("recovered record's parameters: %v", r["requestParameters"])
	}
	if got := n.entries(); len(got) != 0 {
		t.Fatalf("entries left: %q", got)
	}
	if got := n.recover(false); got != 0 {
		t.Fatalf("a second Recover wrote %d records", got)
	}
	f, err := os.Open(filepath.Join(dir, audit.FirstSegment))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if count, problem, err := audit.Verify(f); err != nil || problem != nil || count != 2 {
		t.Fatalf("the trail: %d records, problem %v, err %v", count, problem, err)
	}
}

// A call recorded, and the server killed before its entry was deleted:
// the next start finds the record and writes none.
func TestRecordedChangeIsNotRecordedTwice(t *testing.T) {
	dir := t.TempDir()
	clock := testsupport.NewClock(t0)
	n := start(t, dir, clock)
	ev := call("CreateAlias")
	n.change(ev, "alias/a")
	n.record(ev)
	// Later records, so that the call's is not the last one.
	for range 3 {
		n.record(call("Encrypt"))
	}
	if got := n.entries(); len(got) != 1 {
		t.Fatalf("entries before a flush: %q", got)
	}
	n.stop()

	n = start(t, dir, clock)
	if got := n.recover(false); got != 0 {
		t.Fatalf("Recover wrote %d records of a recorded call", got)
	}
	if got := len(records(t, dir, ev.EventID)); got != 1 {
		t.Fatalf("records of the call: %d, want 1", got)
	}
	if got := n.entries(); len(got) != 0 {
		t.Fatalf("entries left: %q", got)
	}
}

// Once a call is recorded, its entry goes with the next transaction, or
// with Flush.
func TestEntryOfARecordedCallGoesWithTheNextChange(t *testing.T) {
	n := start(t, t.TempDir(), testsupport.NewClock(t0))
	ev := call("DisableKey")
	n.change(ev, "key/k")
	n.record(ev)
	if err := n.st.Update(context.Background(), func(tx store.Tx) error { return tx.Put([]byte("key/other"), nil) }); err != nil {
		t.Fatal(err)
	}
	if got := n.entries(); len(got) != 0 {
		t.Fatalf("entries after the next change: %q", got)
	}
	ev = call("EnableKey")
	n.change(ev, "key/k")
	n.record(ev)
	if err := n.box.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := n.entries(); len(got) != 0 {
		t.Fatalf("entries after Flush: %q", got)
	}
}

// refusing is a trail that refuses records, as a full disk or a lost
// PostgreSQL commit would.
type refusing struct{ audit.Recorder }

var errRefused = errors.New("no room")

func (refusing) Record(context.Context, *audit.Event) error { return errRefused }

// A call whose record the trail refused after its change: the record is
// written once the trail takes records again, while serving.
func TestRefusedRecordIsWrittenWhileServing(t *testing.T) {
	dir := t.TempDir()
	n := start(t, dir, testsupport.NewClock(t0))
	failing := n.box.Recorder(refusing{})
	ev := call("PutKeyPolicy")
	n.change(ev, "key/k")
	if err := failing.Record(context.Background(), ev); !errors.Is(err, errRefused) {
		t.Fatalf("Record: %v", err)
	}
	if !n.box.Due() {
		t.Fatal("a refused record does not make Recover due")
	}
	if got := n.recover(false); got != 1 {
		t.Fatalf("Recover wrote %d records, want 1", got)
	}
	if n.box.Due() {
		t.Fatal("still due after Recover")
	}
	if got := len(records(t, dir, ev.EventID)); got != 1 {
		t.Fatalf("records of the call: %d, want 1", got)
	}
	if got := n.entries(); len(got) != 0 {
		t.Fatalf("entries left: %q", got)
	}
}

// panicking is a Recorder with a bug: it panics on every record.
type panicking struct{ audit.Recorder }

func (panicking) Record(context.Context, *audit.Event) error { panic("injected fault") }

// A record whose Recorder panicked, in work whose panic is recovered (a
// background round, a call), is a refused one: the record is written
// while serving, not left waiting for the end of the process as one
// still being written.
func TestRecordThatPanickedIsWrittenWhileServing(t *testing.T) {
	dir := t.TempDir()
	clock := testsupport.NewClock(t0)
	n := start(t, dir, clock)
	ev := call("DeleteKey")
	n.change(ev, "key/k")
	func() {
		defer func() {
			if p := recover(); p == nil {
				t.Fatal("the Recorder's panic did not reach its caller")
			}
		}()
		n.box.Recorder(panicking{}).Record(context.Background(), ev)
	}()
	if !n.box.Due() {
		t.Error("a record that panicked does not make Recover due")
	}
	clock.Advance(outbox.OrphanAge + time.Minute)
	if got := n.recover(false); got != 1 {
		t.Fatalf("Recover wrote %d records, want 1", got)
	}
	if got := len(records(t, dir, ev.EventID)); got != 1 {
		t.Fatalf("records of the call: %d, want 1", got)
	}
	if got := n.entries(); len(got) != 0 {
		t.Fatalf("entries left: %q", got)
	}
}

// A call between its commit and its record is left to write its own.
func TestCallUnderWayIsLeftAlone(t *testing.T) {
	dir := t.TempDir()
	clock := testsupport.NewClock(t0)
	n := start(t, dir, clock)
	ev := call("ScheduleKeyDeletion")
	n.change(ev, "key/k")
	if got := n.recover(false); got != 0 {
		t.Fatalf("Recover wrote %d records of a call under way", got)
	}
	if got := n.entries(); len(got) != 1 {
		t.Fatalf("entries: %q", got)
	}
	n.record(ev)
	if got := n.recover(false); got != 0 || len(n.entries()) != 0 {
		t.Fatalf("after the record: Recover wrote %d, entries %q", got, n.entries())
	}
	if got := len(records(t, dir, ev.EventID)); got != 1 {
		t.Fatalf("records of the call: %d, want 1", got)
	}

	// One that never reached its Recorder is taken for lost after
	// OrphanAge.
	ev = call("TagResource")
	n.change(ev, "key/k")
	clock.Advance(outbox.OrphanAge - time.Second)
	if got := n.recover(false); got != 0 {
		t.Fatalf("Recover wrote %d records of a call under way", got)
	}
	clock.Advance(time.Second)
	if got := n.recover(false); got != 1 {
		t.Fatalf("Recover wrote %d records of a call lost for OrphanAge, want 1", got)
	}
}

// Only a call's transaction that writes something keeps an entry: not a
// transaction without a call, nor one that wrote nothing or failed, nor
// an unauthenticated caller's.
func TestOnlyChangesOfCallsKeepEntries(t *testing.T) {
	n := start(t, t.TempDir(), testsupport.NewClock(t0))
	ctx := context.Background()
	if err := n.st.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("key/a"), nil) }); err != nil {
		t.Fatal(err)
	}
	ev := call("DescribeKey")
	if err := n.st.Update(audit.NewContext(ctx, ev), func(tx store.Tx) error { _, err := tx.Get([]byte("key/a")); return err }); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("refused")
	ev = call("CreateKey")
	err := n.st.Update(audit.NewContext(ctx, ev), func(tx store.Tx) error {
		if err := tx.Put([]byte("key/b"), nil); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("Update: %v", err)
	}
	anon := call("CreateKey")
	anon.Identity = audit.UserIdentity{}
	n.change(anon, "key/c")
	if got := n.entries(); len(got) != 0 {
		t.Fatalf("entries: %q", got)
	}
}

// A cluster node that died leaves entries in its own chain: the node that
// does the background work writes their records once they are older
// than OrphanAge, and no other Recover touches them.
func TestEntriesOfAnotherChainWaitForOrphanAge(t *testing.T) {
	dir := t.TempDir()
	clock := testsupport.NewClock(t0)
	n := start(t, dir, clock)
	ev := call("CreateGrant")
	rec, err := ev.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := json.Marshal(map[string]any{"chain": "node-b", "after": 7, "committed": t0, "record": json.RawMessage(rec)})
	if err := n.raw.Update(context.Background(), func(tx store.Tx) error { return tx.Put(outbox.Key(ev.EventID), v) }); err != nil {
		t.Fatal(err)
	}
	if got := n.recover(true); got != 0 {
		t.Fatalf("Recover wrote %d records of a young entry of another chain", got)
	}
	clock.Advance(outbox.OrphanAge)
	if got := n.recover(false); got != 0 {
		t.Fatalf("Recover of its own chain wrote %d records of another's", got)
	}
	if got := n.recover(true); got != 1 {
		t.Fatalf("Recover wrote %d records of an orphan, want 1", got)
	}
	if got := len(records(t, dir, ev.EventID)); got != 1 {
		t.Fatalf("records of the call: %d, want 1", got)
	}
	if got := n.entries(); len(got) != 0 {
		t.Fatalf("entries left: %q", got)
	}
}

// gate is a Reader whose second call, once it has read its rows, closes
// entered and waits until release is closed to return them.
type gate struct {
	outbox.Reader
	calls            atomic.Int32
	entered, release chan struct{}
}

func (g *gate) Records(ctx context.Context, chain string, after int64, limit, maxBytes int) ([]audit.Row, bool, error) {
	rows, more, err := g.Reader.Records(ctx, chain, after, limit, maxBytes)
	if g.calls.Add(1) == 2 {
		close(g.entered)
		<-g.release
	}
	return rows, more, err
}

// A cluster node runs Recover from two places (its periodic one, and the
// background work's for other chains): one begun while another looks for
// the same entry's record leaves it to that one, and the record is
// written once.
func TestRecoversOneAtATime(t *testing.T) {
	dir := t.TempDir()
	n := start(t, dir, testsupport.NewClock(t0))
	g := &gate{Reader: audit.NewFileTrail(dir), entered: make(chan struct{}), release: make(chan struct{})}
	box := outbox.New(n.log, g, n.clock.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	n.st = box.Wrap(n.raw)
	n.record(call("DescribeKey"))
	ev := call("PutKeyPolicy")
	n.change(ev, "key/k")
	if err := box.Recorder(refusing{}).Record(context.Background(), ev); !errors.Is(err, errRefused) {
		t.Fatalf("Record: %v", err)
	}
	type result struct {
		n   int
		err error
	}
	first := make(chan result, 1)
	go func() {
		k, err := box.Recover(context.Background(), true)
		first <- result{k, err}
	}()
	<-g.entered
	second, err := box.Recover(context.Background(), false)
	close(g.release)
	r := <-first
	if err != nil || r.err != nil {
		t.Fatalf("Recover: %v, %v", r.err, err)
	}
	if second != 0 || r.n != 1 {
		t.Fatalf("Recover under way wrote %d records, the one begun meanwhile %d; want 1 and 0", r.n, second)
	}
	if got := len(records(t, dir, ev.EventID)); got != 1 {
		t.Fatalf("records of the call: %d, want 1", got)
	}
}

// held is a Recorder whose Record waits, once entered is closed, until
// release is closed: a trail that hangs (a PostgreSQL connection that
// neither answers nor fails).
type held struct {
	audit.Recorder
	entered, release chan struct{}
}

func (h held) Record(ctx context.Context, e *audit.Event) error {
	close(h.entered)
	<-h.release
	return h.Recorder.Record(ctx, e)
}

// A call whose record is being written is not taken for lost, however
// long the trail takes: its record is written once, by the call.
func TestCallBeingRecordedIsNotTakenForLost(t *testing.T) {
	dir := t.TempDir()
	clock := testsupport.NewClock(t0)
	n := start(t, dir, clock)
	ev := call("CreateGrant")
	n.change(ev, "grant/g")
	h := held{Recorder: audit.NewLogRecorder(n.log), entered: make(chan struct{}), release: make(chan struct{})}
	recorded := make(chan error, 1)
	go func() { recorded <- n.box.Recorder(h).Record(context.Background(), ev) }()
	<-h.entered
	clock.Advance(outbox.OrphanAge + time.Minute)
	got, err := n.box.Recover(context.Background(), false)
	close(h.release)
	if err := <-recorded; err != nil {
		t.Fatal(err)
	}
	if err != nil || got != 0 {
		t.Fatalf("Recover wrote %d records of a call whose record was being written (%v), want 0", got, err)
	}
	if got := len(records(t, dir, ev.EventID)); got != 1 {
		t.Fatalf("records of the call: %d, want 1", got)
	}
	if got := n.recover(false); got != 0 || len(n.entries()) != 0 {
		t.Fatalf("after the record: Recover wrote %d, entries %q", got, n.entries())
	}
}

// Work no call asked for (a key deleted after its waiting period) keeps
// its service events' records with it as a call does: a server killed
// before they were written writes them at its next start.
func TestServiceEventsWithoutTheirRecordsAreRecordedAtStart(t *testing.T) {
	dir := t.TempDir()
	clock := testsupport.NewClock(t0)
	n := start(t, dir, clock)
	arn := "arn:aws:kms:us-east-1:111122223333:key/k"
	w := &audit.Work{Events: []*audit.Event{
		audit.ServiceEvent(t0, "DeleteExpiredKeyMaterial", "us-east-1", "111122223333", arn, json.RawMessage(`{"keyMaterialId":"m1"}`)),
		audit.ServiceEvent(t0, "DeleteExpiredKeyMaterial", "us-east-1", "111122223333", arn, json.RawMessage(`{"keyMaterialId":"m2"}`)),
	}}
	err := n.st.Update(audit.NewWorkContext(context.Background(), w), func(tx store.Tx) error { return tx.Delete([]byte("keyver/k/1")) })
	if err != nil {
		t.Fatal(err)
	}
	// The first recorded, the second not: the server is killed.
	n.record(w.Events[0])
	if got := n.entries(); len(got) != 2 {
		t.Fatalf("entries: %q", got)
	}
	n.stop()

	n = start(t, dir, clock)
	if got := n.recover(false); got != 1 {
		t.Fatalf("Recover wrote %d records, want 1", got)
	}
	for i, ev := range w.Events {
		recs := records(t, dir, ev.EventID)
		if len(recs) != 1 || recs[0]["eventType"] != "AwsServiceEvent" || recs[0]["eventName"] != "DeleteExpiredKeyMaterial" {
			t.Fatalf("records of service event %d: %v", i, recs)
		}
		_, marked := recs[0]["additionalEventData"]
		if details, _ := recs[0]["serviceEventDetails"].(map[string]any); details["keyMaterialId"] != fmt.Sprintf("m%d", i+1) || marked != (i == 1) {
			t.Fatalf("record of service event %d: %v", i, recs[0])
		}
	}
	if got := n.entries(); len(got) != 0 {
		t.Fatalf("entries left: %q", got)
	}
}

// A call and the service event of its work, committed together and
// neither recorded: they come back in the order they are written while
// serving, the service event first (RotateKey before RotateKeyOnDemand).
func TestRecoveredRecordsKeepTheOrderOfTheirWork(t *testing.T) {
	for round := range 8 { // event ids are random: an order by id would fail one round in two
		dir := t.TempDir()
		clock := testsupport.NewClock(t0)
		n := start(t, dir, clock)
		ev := call("RotateKeyOnDemand")
		w := &audit.Work{Events: []*audit.Event{audit.ServiceEvent(t0, "RotateKey", "us-east-1", "111122223333",
			"arn:aws:kms:us-east-1:111122223333:key/k", json.RawMessage(`{"rotationType":"ON_DEMAND"}`))}}
		ctx := audit.NewWorkContext(audit.NewContext(context.Background(), ev), w)
		if err := n.st.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("keyver/k/2"), nil) }); err != nil {
			t.Fatal(err)
		}
		n.stop()

		n = start(t, dir, clock)
		if got := n.recover(false); got != 2 {
			t.Fatalf("round %d: Recover wrote %d records, want 2", round, got)
		}
		service, call := records(t, dir, w.Events[0].EventID), records(t, dir, ev.EventID)
		if len(service) != 1 || len(call) != 1 {
			t.Fatalf("round %d: records %v, %v", round, service, call)
		}
		if s, c := service[0]["sequence"].(float64), call[0]["sequence"].(float64); s >= c {
			t.Fatalf("round %d: RotateKey recovered at %v, after RotateKeyOnDemand at %v", round, s, c)
		}
		n.stop()
	}
}

// Calls changing the store from many goroutines, some of whose records
// the trail refuses, beside Recover and Flush running on their own: once
// the last Recover is over, every call has exactly one record and no
// entry is left (run with -race).
func TestConcurrentCallsEachGetOneRecord(t *testing.T) {
	dir := t.TempDir()
	n := start(t, dir, testsupport.NewClock(t0))
	failing := n.box.Recorder(refusing{})
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids []string
	)
	for w := range 8 {
		wg.Go(func() {
			for i := range 40 {
				ev := call("TagResource")
				n.change(ev, fmt.Sprintf("key/%d", w))
				if i%7 == 0 {
					if err := failing.Record(context.Background(), ev); !errors.Is(err, errRefused) {
						t.Errorf("Record: %v", err)
					}
				} else if err := n.rec.Record(context.Background(), ev); err != nil {
					t.Error(err)
				}
				mu.Lock()
				ids = append(ids, ev.EventID)
				mu.Unlock()
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 20 {
				if _, err := n.box.Recover(context.Background(), false); err != nil {
					t.Error(err)
				}
				if err := n.box.Flush(context.Background()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	n.recover(false)
	if got := n.entries(); len(got) != 0 {
		t.Fatalf("%d entries left", len(got))
	}
	count := map[string]int{}
	for _, rec := range records(t, dir, "") {
		id, _ := rec["eventID"].(string)
		count[id]++
	}
	for _, id := range ids {
		if count[id] != 1 {
			t.Fatalf("call %s has %d records, want 1", id, count[id])
		}
	}
}
