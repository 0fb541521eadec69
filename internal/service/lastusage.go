package service

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/store"
)

// Last usage of keys (GetKeyLastUsage). Recording a use must not cost the
// hot path a store write, so each successful cryptographic operation only
// notes its key's newest use in memory (usageTracker.note, a map update
// under a mutex) and FlushKeyUsage writes the noted uses into the key
// records later: the server calls it every few seconds and on shutdown, so
// each used key costs at most one write per interval. A crash loses the
// uses noted since the last flush; GetKeyLastUsage then reports an older
// use, or none.

// usageTracker holds the uses noted since the last flush.
type usageTracker struct {
	since time.Time // when this process began noting uses

	mu      sync.Mutex
	pending map[keyRef]keyrepo.LastUsage
}

func newUsageTracker(now time.Time) *usageTracker {
	return &usageTracker{since: now, pending: map[keyRef]keyrepo.LastUsage{}}
}

// note keeps u as the newest use of key id unless a newer one is noted.
func (t *usageTracker) note(id keyRef, u keyrepo.LastUsage) {
	t.mu.Lock()
	if old, ok := t.pending[id]; !ok || !u.Time.Before(old.Time) {
		t.pending[id] = u
	}
	t.mu.Unlock()
}

// get returns the use of key id noted since the last flush, if any.
func (t *usageTracker) get(id keyRef) (keyrepo.LastUsage, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.pending[id]
	return u, ok
}

// take empties the tracker and returns what it held.
func (t *usageTracker) take() map[keyRef]keyrepo.LastUsage {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pending
	t.pending = map[keyRef]keyrepo.LastUsage{}
	return p
}

// putBack returns uses a failed flush did not write, keeping newer ones
// noted meanwhile.
func (t *usageTracker) putBack(p map[keyRef]keyrepo.LastUsage) {
	for id, u := range p {
		t.note(id, u)
	}
}

// noteUse records that the call in ctx used the key of rec successfully
// for op, naming the call's audit record.
func (s *Service) noteUse(ctx context.Context, rec *keyrepo.KeyRecord, op string) {
	u := keyrepo.LastUsage{Operation: op, Time: s.clock()}
	if ev := audit.FromContext(ctx); ev != nil {
		u.EventID, u.RequestID = ev.EventID, ev.RequestID
	}
	s.usage.note(keyRef{rec.Region, rec.ID}, u)
}

// usageFlushBatch bounds the key records one flush transaction writes: so
// that on PostgreSQL its change notification can name them (at most about
// 7,000 bytes of record names, hex-encoded, each up to 73 bytes with the
// longest region), rather than tell every node that anything may have
// changed, which empties all their caches.
const usageFlushBatch = 40

// FlushKeyUsage writes the key uses noted in memory since the last flush
// into their key records, at most one write per key, and keeps a record's
// newer use (another node may have written it). The server calls it
// periodically and on shutdown; what it has not written is lost on a
// crash. On error the uses not written are kept for the next flush.
func (s *Service) FlushKeyUsage(ctx context.Context) error {
	pending := s.usage.take()
	if len(pending) == 0 {
		return nil
	}
	ids := make([]keyRef, 0, len(pending))
	for id := range pending {
		ids = append(ids, id)
	}
	for start := 0; start < len(ids); start += usageFlushBatch {
		batch := ids[start:min(len(ids), start+usageFlushBatch)]
		err := s.update(ctx, "FlushKeyUsage", func(tx store.Tx) error {
			for _, id := range batch {
				if err := s.writeUsage(tx, id, pending[id]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			rest := make(map[keyRef]keyrepo.LastUsage, len(ids)-start)
			for _, id := range ids[start:] {
				rest[id] = pending[id]
			}
			s.usage.putBack(rest)
			return err
		}
	}
	return nil
}

// writeUsage puts u into key id's record unless the record holds a newer
// use; a key deleted meanwhile is skipped, and so is one whose record was
// changed outside the server (logged): kept, its use would fail every
// later flush, and the others' uses with it.
func (s *Service) writeUsage(tx store.Tx, id keyRef, u keyrepo.LastUsage) error {
	var rec keyrepo.KeyRecord
	if err := getJSON(tx, keyrepo.KeyKey(id.region, id.id), &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if errors.Is(err, store.ErrUnauthenticated) {
			s.log.Error("a key's last use not written: its record was changed outside the server", "keyId", id.id, "region", id.region, "err", err)
			return nil
		}
		return err
	}
	if rec.LastUsage != nil && rec.LastUsage.Time.After(u.Time) {
		return nil
	}
	rec.LastUsage = &u
	if rec.UsageTrackedSince == nil {
		since := s.usage.since
		rec.UsageTrackedSince = &since
	}
	return putJSON(tx, keyrepo.KeyKey(id.region, id.id), &rec)
}

// GetKeyLastUsage reports the last successful cryptographic use of a key
// in the caller's account: the operation, when, and the eventID and
// request id of its audit record, with the date from which uses were
// recorded and the key's creation date.
func (s *Service) GetKeyLastUsage(ctx context.Context, caller Caller, in *kmsapi.KeyIDInput) (*kmsapi.GetKeyLastUsageOutput, error) {
	if err := checkKeyID(ctx, in.KeyID); err != nil {
		return nil, err
	}
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.IDOrARN, "kms:GetKeyLastUsage", nil)
	if err != nil {
		return nil, err
	}
	// The cached record may predate the last flush: read it again.
	var rec keyrepo.KeyRecord
	err = s.view(ctx, "GetKeyLastUsage", func(tx store.Tx) error {
		return getJSON(tx, keyrepo.KeyKey(k.Rec.Region, k.Rec.ID), &rec)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, keyrepo.ErrKeyDoesNotExist(k.ARN)
	}
	if err != nil {
		return nil, err
	}
	last := s.lastUse(&rec)
	out := &kmsapi.GetKeyLastUsageOutput{KeyID: k.ARN, TrackingStartDate: kmsapi.NewTime(s.trackingStart(&rec)), KeyCreationDate: kmsapi.NewTime(rec.Created)}
	if last != nil {
		out.KeyLastUsage = &kmsapi.KeyLastUsage{Operation: last.Operation, Timestamp: kmsapi.NewTime(last.Time),
			CloudTrailEventID: last.EventID, KmsRequestID: last.RequestID}
	}
	return out, nil
}

// lastUse is the newest cryptographic use of the key of rec: the one its
// record holds, or a newer one noted since the last flush; nil if none.
func (s *Service) lastUse(rec *keyrepo.KeyRecord) *keyrepo.LastUsage {
	last := rec.LastUsage
	if u, ok := s.usage.get(keyRef{rec.Region, rec.ID}); ok && (last == nil || !u.Time.Before(last.Time)) {
		last = &u
	}
	return last
}

// trackingStart is when uses of the key of rec began to be recorded: its
// record says so once a use of it was written; before, the later of its
// creation and the start of this process's tracking.
func (s *Service) trackingStart(rec *keyrepo.KeyRecord) time.Time {
	since := s.usage.since
	if rec.UsageTrackedSince != nil {
		since = *rec.UsageTrackedSince
	} else if rec.Created.After(since) {
		since = rec.Created
	}
	return since
}

// idleDays is kms:TrailingDaysWithoutKeyUsage of key k, as AWS KMS
// counts it: the whole days since its last cryptographic use or, with
// none, since its tracking start (GetKeyLastUsage's TrackingStartDate).
// A use on another node of a cluster counts once that node flushed it.
func (s *Service) idleDays(k *keyrepo.Key) int {
	from := s.trackingStart(&k.Rec)
	if u := s.lastUse(&k.Rec); u != nil && u.Time.After(from) {
		from = u.Time
	}
	idle := s.now().Sub(from)
	if idle < 0 {
		return 0
	}
	return int(idle / (24 * time.Hour))
}
