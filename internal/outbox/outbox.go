// Package outbox keeps the audit record of each call that changes the
// store in the same transaction as the change, until the call's own
// record is in the trail.
//
// A call's record is written after its change commits, and the call is
// answered only once the record is durable. A server killed between the
// two, a trail that failed just then (a full disk past its reserve, a
// lost commit in PostgreSQL), would otherwise leave a change no record
// names. The Store that Wrap returns adds, to every transaction of a call
// that writes something, an entry under Prefix holding the record the
// call would get (audit.Event.Snapshot) and the head of the trail's chain
// at the commit: the call's record, if it was written, comes after it.
// Once the call's record is durable (the Recorder that Recorder returns),
// the entry is deleted in the next transaction, or by Flush.
//
// Recover writes, for every entry whose call's record is not in the
// trail after the head the entry names, the snapshot as a record marked
// {"recovered":true} (audit.Record.AdditionalEventData), and deletes the
// entry: at start, before calls are served; then every few seconds while
// an entry's record could not be written; and, on the node that does a
// cluster's background work, for the entries of other nodes' chains older
// than OrphanAge (a node that died).
//
// The work the service does on its own is kept the same way: its
// transaction's context carries the service events it makes
// (audit.Work), each kept as a call's record is.
//
// Limits: a recovered record of a call has no responseElements, and says
// nothing of how the call was answered (it was refused, or not answered
// at all). A record recovered for an entry of another node's chain that
// was only slow (older than OrphanAge, its record written after the
// check: by its call, or by that node's own Recover once its trail took
// records again after refusing them that long) is written twice, the
// second time marked recovered; so is one whose chain two nodes look at
// together, the background work having passed from one to the other
// meanwhile.
package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/store"
)

// Prefix is the key prefix of the entries: no node caches them, and a
// cluster's nodes are not told of their changes.
const Prefix = store.UnwatchedPrefix

// OrphanAge is how old an entry of another node's chain, or one of this
// node's calls that never reached its Recorder, must be before Recover
// writes its record: far longer than any call takes from its commit to
// its record.
const OrphanAge = 10 * time.Minute

// Trail is the log a node appends its records to (audit.Log).
type Trail interface {
	Chain() string
	Head() (uint64, string)
	Append(*audit.Record) error
}

// Reader reads a chain's records after a position (audit.FileTrail,
// audit.PostgresTrail).
type Reader interface {
	Records(ctx context.Context, chain string, after int64, limit, maxBytes int) ([]audit.Row, bool, error)
}

// Box is the outbox of one server: the Store and Recorder wrappers share
// it.
type Box struct {
	trail  Trail
	reader Reader
	now    func() time.Time
	log    *slog.Logger
	store  store.Store // the wrapped store, for Recover and Flush

	mu      sync.Mutex
	pending map[string]*pendingCall // by event id: calls whose changes committed, not yet recorded
	done    [][]byte                // entries whose records are in the trail
	failed  bool                    // a call's record was not written: Recover is due

	// recovering is held by the Recover under way: two at once (the
	// periodic one and the cluster's background work) would each find
	// an entry without its record, and each write it.
	recovering sync.Mutex
}

// New returns the outbox of calls recorded to trail, read back through
// reader.
func New(trail Trail, reader Reader, now func() time.Time, log *slog.Logger) *Box {
	return &Box{trail: trail, reader: reader, now: now, log: log, pending: map[string]*pendingCall{}}
}

// pendingCall is a call whose change committed with its entry.
type pendingCall struct {
	since     time.Time // its first commit
	recording bool      // its Recorder was called and has not returned
}

// entry is the value of an entry: the record a call would get and where
// in which chain to look for it.
type entry struct {
	Chain     string          `json:"chain"`
	After     uint64          `json:"after"`
	Committed time.Time       `json:"committed"`
	Record    json.RawMessage `json:"record"`
}

// Key is the entry of the call whose event id is id.
func Key(eventID string) []byte { return []byte(Prefix + eventID) }

// DropAll deletes every entry of tx's store and returns how many there
// were: for a copy of a store that leaves behind the trail its entries
// name places in (kms migrate, a restore into the other kind of store),
// whose servers would find none of their records in their own trail and
// write each again.
func DropAll(tx store.Tx) (int, error) {
	var keys [][]byte
	err := tx.Scan([]byte(Prefix), nil, func(k, _ []byte) (bool, error) {
		keys = append(keys, append([]byte(nil), k...))
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		if err := tx.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// Wrap returns s keeping an entry in each transaction of a call (its
// context carries an audit.Event of an authenticated caller) that writes
// something, and one for each service event of its audit.Work, and
// deleting the entries of recorded calls. Recover and
// Flush work on s.
func (b *Box) Wrap(s store.Store) store.Store {
	b.store = s
	return &boxStore{Store: s, b: b}
}

type boxStore struct {
	store.Store
	b *Box
}

// writeTx notes whether a transaction wrote anything.
type writeTx struct {
	store.Tx
	wrote bool
}

func (t *writeTx) Put(k, v []byte) error { t.wrote = true; return t.Tx.Put(k, v) }
func (t *writeTx) Delete(k []byte) error { t.wrote = true; return t.Tx.Delete(k) }

func (s *boxStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	b := s.b
	call, work := audit.FromContext(ctx), audit.WorkFromContext(ctx)
	drop := b.takeDone(maxCarried)
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		wtx := &writeTx{Tx: tx}
		if err := fn(wtx); err != nil {
			return err
		}
		if wtx.wrote {
			// Nothing changes for an unauthenticated caller.
			if call != nil && call.Identity.Type != "" {
				if err := b.keep(tx, call); err != nil {
					return err
				}
			}
			if work != nil {
				for _, ev := range work.Events {
					if err := b.keep(tx, ev); err != nil {
						return err
					}
				}
			}
		}
		for _, k := range drop {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(drop) > 0 {
		b.giveBack(drop)
	}
	return err
}

// keep puts ev's entry in tx, and notes its call pending before the
// commit, so that no Recover that sees the entry takes it for one whose
// call has ended.
func (b *Box) keep(tx store.Tx, ev *audit.Event) error {
	if ev.EventID == "" {
		return nil
	}
	v, err := b.entry(ev)
	if err != nil {
		return err
	}
	b.begin(ev.EventID)
	ev.Keep()
	return tx.Put(Key(ev.EventID), v)
}

// entry is the value of ev's entry now.
func (b *Box) entry(ev *audit.Event) ([]byte, error) {
	rec, err := ev.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("outbox: the call's record: %w", err)
	}
	seq, _ := b.trail.Head()
	// The JSON encoding/json would write for the entry, without checking
	// and compacting again the record the audit package wrote.
	chain, err := json.Marshal(b.trail.Chain())
	if err != nil {
		return nil, err
	}
	v := make([]byte, 0, len(rec)+len(chain)+96)
	v = append(v, `{"chain":`...)
	v = append(v, chain...)
	v = append(v, `,"after":`...)
	v = strconv.AppendUint(v, seq, 10)
	v = append(v, `,"committed":"`...)
	v = b.now().UTC().AppendFormat(v, time.RFC3339Nano)
	v = append(v, `","record":`...)
	v = append(v, rec...)
	return append(v, '}'), nil
}

func (b *Box) begin(id string) {
	b.mu.Lock()
	if _, ok := b.pending[id]; !ok {
		b.pending[id] = &pendingCall{since: b.now()}
	}
	b.mu.Unlock()
}

// forget drops the call of event id from those pending: its entry was
// taken for lost.
func (b *Box) forget(id string) {
	b.mu.Lock()
	delete(b.pending, id)
	b.mu.Unlock()
}

// recording notes that the call of event id is being recorded: until
// its record is written or refused, its entry is not taken for lost,
// however long the trail takes.
func (b *Box) recording(id string) {
	b.mu.Lock()
	if c, ok := b.pending[id]; ok {
		c.recording = true
	}
	b.mu.Unlock()
}

// recorded notes that the call of event id ended: its record written
// (ok) or refused.
func (b *Box) recorded(id string, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, was := b.pending[id]; !was {
		return
	}
	delete(b.pending, id)
	if ok {
		b.done = append(b.done, Key(id))
	} else {
		b.failed = true
	}
}

// Bounds on the deletions of entries one transaction makes: a call's
// carries a few (in PostgreSQL each is a round trip, inside the call's
// transaction), Flush many.
const (
	maxCarried = 16
	maxFlushed = 1024
)

// takeDone takes up to limit entries to delete from those whose records
// are in the trail.
func (b *Box) takeDone(limit int) [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.done), limit)
	if n == 0 {
		return nil
	}
	drop := b.done[len(b.done)-n:]
	b.done = b.done[: len(b.done)-n : len(b.done)-n]
	return drop
}

func (b *Box) giveBack(drop [][]byte) {
	b.mu.Lock()
	b.done = append(b.done, drop...)
	b.mu.Unlock()
}

// Recorder returns r telling the box of each call's record.
func (b *Box) Recorder(r audit.Recorder) audit.Recorder { return boxRecorder{Recorder: r, b: b} }

type boxRecorder struct {
	audit.Recorder
	b *Box
}

// Record records e; for a call whose change kept an entry (e.Kept), it
// tells the box when the record is being written and how that ended.
// Other calls, the cryptographic ones among them, cost the box one
// atomic load. A Record that panics is a refused one, and the panic goes
// on: where it is recovered (a call, a background round), the process
// goes on, and a call left marked as being recorded would never have its
// entry taken for lost while it runs.
func (r boxRecorder) Record(ctx context.Context, e *audit.Event) (err error) {
	if !e.Kept() {
		return r.Recorder.Record(ctx, e)
	}
	r.b.recording(e.EventID)
	done := false
	defer func() { r.b.recorded(e.EventID, done && err == nil) }()
	err = r.Recorder.Record(ctx, e)
	done = true
	return err
}

// Flush deletes the entries of the calls recorded so far.
func (b *Box) Flush(ctx context.Context) error {
	for {
		drop := b.takeDone(maxFlushed)
		if len(drop) == 0 {
			return nil
		}
		err := b.store.Update(ctx, func(tx store.Tx) error {
			for _, k := range drop {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.giveBack(drop)
			return err
		}
	}
}

// Due reports whether a call's record was refused since the last
// Recover: its entry waits for the trail.
func (b *Box) Due() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failed
}

// found is one entry Recover considers.
type found struct {
	key   []byte
	id    string
	entry entry
}

// callRank is 0 for the entry of a service event, 1 for a call's.
func (f found) callRank() int {
	var rec struct {
		EventType string `json:"eventType"`
	}
	if json.Unmarshal(f.entry.Record, &rec) == nil && rec.EventType == "AwsServiceEvent" {
		return 0
	}
	return 1
}

// Recover writes the records of the calls whose entries are left without
// them, as described in the package comment, and deletes those entries;
// others also takes the entries of other chains older than OrphanAge. It
// returns how many records it wrote. Called while another Recover runs,
// it returns 0 at once, having done nothing (Due stays as it was).
func (b *Box) Recover(ctx context.Context, others bool) (int, error) {
	if !b.recovering.TryLock() {
		return 0, nil
	}
	defer b.recovering.Unlock()
	b.mu.Lock()
	b.failed = false
	b.mu.Unlock()
	var all []found
	err := b.store.View(ctx, func(tx store.Tx) error {
		all = all[:0]
		return store.ScanReadable(tx, []byte(Prefix), nil, func(k, v []byte) (bool, error) {
			f := found{key: append([]byte(nil), k...), id: string(k[len(Prefix):])}
			if err := json.Unmarshal(v, &f.entry); err != nil {
				b.log.Error("an outbox entry does not read; it is left", "key", string(k), "err", err)
				return true, nil
			}
			all = append(all, f)
			return true, nil
		}, func(err error) { b.log.Error("an outbox entry does not read; it is left", "err", err) })
	})
	if err != nil {
		return 0, fmt.Errorf("outbox: reading the entries: %w", err)
	}
	now := b.now()
	own := b.trail.Chain()
	chains := map[string][]found{}
	b.mu.Lock()
	present := make(map[string]bool, len(all))
	for _, f := range all {
		present[f.id] = true
	}
	for id, c := range b.pending {
		// A call that never reached its Recorder, and whose change was
		// not made after all, is forgotten.
		if now.Sub(c.since) >= OrphanAge && !c.recording && !present[id] {
			delete(b.pending, id)
		}
	}
	done := make(map[string]bool, len(b.done))
	for _, k := range b.done {
		done[string(k)] = true
	}
	for _, f := range all {
		old := now.Sub(f.entry.Committed) >= OrphanAge
		if f.entry.Chain != own {
			if others && old {
				chains[f.entry.Chain] = append(chains[f.entry.Chain], f)
			}
			continue
		}
		if done[string(f.key)] {
			continue
		}
		if c, ok := b.pending[f.id]; ok && (c.recording || now.Sub(c.since) < OrphanAge) {
			continue
		}
		chains[own] = append(chains[own], f)
	}
	b.mu.Unlock()
	wrote := 0
	for chain, group := range chains {
		n, err := b.recoverChain(ctx, chain, group)
		wrote += n
		if err != nil {
			b.mu.Lock()
			b.failed = true
			b.mu.Unlock()
			return wrote, err
		}
	}
	return wrote, nil
}

// recoverChain handles the entries of one chain: each whose record is
// not in the chain after its head gets it written to this node's trail.
func (b *Box) recoverChain(ctx context.Context, chain string, group []found) (int, error) {
	want := make(map[string]bool, len(group))
	after := group[0].entry.After
	for _, f := range group {
		want[f.id] = true
		after = min(after, f.entry.After)
	}
	in, err := b.inTrail(ctx, chain, int64(after), want)
	if err != nil {
		return 0, err
	}
	// Records go back in the order their changes committed: by the head
	// of the trail then, and, of one transaction, its service events
	// before its call's record, as they are written while serving
	// (RotateKey before RotateKeyOnDemand).
	slices.SortStableFunc(group, func(x, y found) int {
		if c := cmp.Compare(x.entry.After, y.entry.After); c != 0 {
			return c
		}
		if c := cmp.Compare(x.callRank(), y.callRank()); c != 0 {
			return c
		}
		return x.entry.Committed.Compare(y.entry.Committed)
	})
	wrote := 0
	var drop [][]byte
	defer func() {
		if len(drop) > 0 {
			b.giveBack(drop)
		}
	}()
	for _, f := range group {
		if !in[f.id] {
			var rec audit.Record
			if err := json.Unmarshal(f.entry.Record, &rec); err != nil {
				b.log.Error("an outbox entry's record does not read; it is left", "key", string(f.key), "err", err)
				continue
			}
			rec.AdditionalEventData = recovered
			if err := b.trail.Append(&rec); err != nil {
				return wrote, fmt.Errorf("outbox: writing the record of a call whose change was made: %w", err)
			}
			wrote++
			b.log.Warn("wrote the record of a call whose change was made but not recorded",
				"requestId", rec.RequestID, "eventName", rec.EventName, "eventTime", rec.EventTime)
		}
		drop = append(drop, f.key)
		b.forget(f.id)
	}
	return wrote, nil
}

var recovered = json.RawMessage(`{"recovered":true}`)

// line is what Recover reads of a line of the trail: {"hash", "event"}.
type line struct {
	Event struct {
		EventID  string `json:"eventID"`
		Sequence int64  `json:"sequence"`
	} `json:"event"`
}

// inTrail returns which of the event ids in want have a record in chain
// after position after.
func (b *Box) inTrail(ctx context.Context, chain string, after int64, want map[string]bool) (map[string]bool, error) {
	in := map[string]bool{}
	// A reader's positions count the records it holds: a data directory
	// whose first segments were archived holds fewer than the sequence
	// numbers count.
	first, _, err := b.reader.Records(ctx, chain, 0, 1, 1)
	if err != nil {
		return nil, fmt.Errorf("outbox: reading the trail: %w", err)
	}
	if len(first) == 0 {
		return in, nil
	}
	var head line
	if err := json.Unmarshal(first[0].Line, &head); err != nil {
		return nil, fmt.Errorf("outbox: reading the trail's first record: %w", err)
	}
	after = max(after-(head.Event.Sequence-first[0].Seq), 0)
	for {
		rows, more, err := b.reader.Records(ctx, chain, after, 10000, 8<<20)
		if err != nil {
			return nil, fmt.Errorf("outbox: reading the trail: %w", err)
		}
		for _, r := range rows {
			var l line
			if json.Unmarshal(r.Line, &l) == nil && want[l.Event.EventID] {
				in[l.Event.EventID] = true
			}
			after = r.Seq
		}
		if !more || len(rows) == 0 {
			return in, nil
		}
	}
}

// Run, until ctx is done, deletes the entries of recorded calls every
// interval and, when a call's record was refused (and once a minute in
// any case), writes the records of the entries left without them.
func (b *Box) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := b.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.round(ctx, &last)
	}
}

// round is a round of Run; last is when it last ran Recover. A panic in
// it is logged rather than left to end the process: the entries it had
// to handle stay in the store, and a later round takes them up again.
func (b *Box) round(ctx context.Context, last *time.Time) {
	defer func() {
		if p := recover(); p != nil {
			b.log.Error("panic in a round of the outbox; its entries wait for the next", "panic", p)
		}
	}()
	if b.Due() || b.now().Sub(*last) >= time.Minute {
		*last = b.now()
		if _, err := b.Recover(ctx, false); err != nil && ctx.Err() == nil {
			b.log.Error("writing the records of calls whose changes were made but not recorded", "err", err)
		}
	}
	if err := b.Flush(ctx); err != nil && ctx.Err() == nil {
		b.log.Error("deleting the outbox entries of recorded calls", "err", err)
	}
}
