package service_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
)

// keyReads counts the key records (key/...) read through it.
type keyReads struct {
	store.Store
	n atomic.Int64
}

func (s *keyReads) View(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.View(ctx, func(tx store.Tx) error { return fn(keyReadsTx{tx, &s.n}) })
}

func (s *keyReads) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Update(ctx, func(tx store.Tx) error { return fn(keyReadsTx{tx, &s.n}) })
}

type keyReadsTx struct {
	store.Tx
	n *atomic.Int64
}

func (t keyReadsTx) Get(key []byte) ([]byte, error) {
	if bytes.HasPrefix(key, []byte("key/")) {
		t.n.Add(1)
	}
	return t.Tx.Get(key)
}

// rotationEnv is a service on a store that counts its key record reads,
// with keys keys whose automatic rotation is on, every 90 days.
func rotationEnv(t *testing.T, keys int) (*env, *service.Service, *keyReads, []string) {
	t.Helper()
	e := newEnv(t)
	counted := &keyReads{Store: e.st}
	svc, err := service.New(service.Config{Store: counted, RootKey: e.root, Region: "us-east-1", Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range keys {
		id := e.createKey(t)
		if _, err := svc.EnableKeyRotation(context.Background(), root, &kmsapi.EnableKeyRotationInput{KeyID: id, RotationPeriodInDays: i32(90)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return e, svc, counted, ids
}

// A maintenance round reads the key records of the keys due for
// rotation, not of every key whose rotation is on: the round runs every
// minute, and an account may have 100,000 keys that rotate yearly.
func TestRotationRoundReadsOnlyKeysDue(t *testing.T) {
	e, svc, counted, ids := rotationEnv(t, 30)
	ctx := context.Background()
	round := func(wantRotated int) int64 {
		t.Helper()
		before := counted.n.Load()
		n, err := svc.RotateDueKeys(ctx)
		if err != nil || n != wantRotated {
			t.Fatalf("RotateDueKeys = %d, %v; want %d rotated", n, err, wantRotated)
		}
		return counted.n.Load() - before
	}
	if n := round(0); n != 0 {
		t.Errorf("a round with no key due read %d key records, want 0", n)
	}
	// One key is due early: its period was shortened, as a new
	// EnableKeyRotation does.
	e.clock.Advance(60 * day)
	if _, err := svc.EnableKeyRotation(ctx, root, &kmsapi.EnableKeyRotationInput{KeyID: ids[0], RotationPeriodInDays: i32(90)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(31 * day) // past the others' date, not ids[0]'s
	if n := round(len(ids) - 1); n > 3*int64(len(ids)) {
		t.Errorf("a round rotating %d keys read %d key records", len(ids)-1, n)
	}
	if n := round(0); n != 0 {
		t.Errorf("the round after the rotations read %d key records, want 0: the rotated keys' next dates are in their index", n)
	}
	e.clock.Advance(60 * day) // ids[0] is due now, the others not yet
	if n := round(1); n > 3 {
		t.Errorf("a round rotating one key read %d key records", n)
	}
}

// A rotation index record stored before the index held dates is read as
// before (its key record tells whether the key is due), and dated by the
// round, so that the rounds after it read no key record for it.
func TestRotationRoundDatesUndatedIndex(t *testing.T) {
	e, svc, counted, ids := rotationEnv(t, 5)
	ctx := context.Background()
	if err := e.st.Update(ctx, func(tx store.Tx) error {
		for _, id := range ids {
			if err := tx.Put(keyrepo.RotationKey("us-east-1", id), nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := counted.n.Load()
	if n, err := svc.RotateDueKeys(ctx); err != nil || n != 0 {
		t.Fatalf("RotateDueKeys = %d, %v", n, err)
	}
	if n := counted.n.Load() - before; n < int64(len(ids)) {
		t.Errorf("a round over %d undated index records read %d key records: they were taken as not due unread", len(ids), n)
	}
	before = counted.n.Load()
	if n, err := svc.RotateDueKeys(ctx); err != nil || n != 0 {
		t.Fatalf("RotateDueKeys = %d, %v", n, err)
	}
	if n := counted.n.Load() - before; n != 0 {
		t.Errorf("the round after the one that dated the index read %d key records, want 0", n)
	}
	e.clock.Advance(90 * day)
	if n, err := svc.RotateDueKeys(ctx); err != nil || n != len(ids) {
		t.Fatalf("on their date: RotateDueKeys = %d, %v; want %d", n, err, len(ids))
	}
}
