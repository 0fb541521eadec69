package service_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
)

// deletionEnv is a service with a key quota of quota on a store that
// counts its key record reads.
func deletionEnv(t *testing.T, quota int) (*env, *service.Service, *keyReads) {
	t.Helper()
	e := newEnv(t)
	counted := &keyReads{Store: e.st}
	svc, err := service.New(service.Config{Store: counted, RootKey: e.root, Region: "us-east-1", Now: e.clock.Now, KeyQuota: quota})
	if err != nil {
		t.Fatal(err)
	}
	return e, svc, counted
}

func scheduleDeletions(t *testing.T, svc *service.Service, caller service.Caller, n int) {
	t.Helper()
	ctx := context.Background()
	for range n {
		out, err := svc.CreateKey(ctx, caller, &kmsapi.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ScheduleKeyDeletion(ctx, caller, &kmsapi.ScheduleKeyDeletionInput{KeyID: out.KeyMetadata.KeyID, PendingWindowInDays: i32(7)}); err != nil {
			t.Fatal(err)
		}
	}
}

// A CreateKey refused at the key quota counts the account's keys past
// their deletion date without reading the key record of every key of the
// Region pending deletion: it counts in the transaction that would add
// the key, holding the store's write lock, and a caller at its quota may
// repeat it at will.
func TestKeyQuotaRefusalReadsNoKeyPendingDeletion(t *testing.T) {
	const quota = 12
	e, svc, counted := deletionEnv(t, quota)
	ctx := context.Background()
	other := service.Caller{AccountID: "444455556666", ARN: "arn:aws:iam::444455556666:root", Root: true,
		Principal: policy.Principal{ARN: "arn:aws:iam::444455556666:root", Account: "444455556666", UserID: "444455556666"}}
	for range 10 { // another account's keys pending deletion
		scheduleDeletions(t, svc, other, 1)
		e.clock.Advance(time1) // their dates come one after the other
	}
	scheduleDeletions(t, svc, root, 2)
	for range quota - 2 {
		if _, err := svc.CreateKey(ctx, root, &kmsapi.CreateKeyInput{}); err != nil {
			t.Fatal(err)
		}
	}
	before := counted.n.Load()
	_, err := svc.CreateKey(ctx, root, &kmsapi.CreateKeyInput{})
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Code != fault.LimitExceeded {
		t.Fatalf("CreateKey at the quota: %v, want LimitExceededException", err)
	}
	if n := counted.n.Load() - before; n != 0 {
		t.Errorf("a CreateKey refused at the quota read %d key records of keys pending deletion, want 0", n)
	}
	// Past their date, the account's own two no longer count: the key
	// is made, reading those two.
	e.clock.Advance(7 * day)
	before = counted.n.Load()
	if _, err := svc.CreateKey(ctx, root, &kmsapi.CreateKeyInput{}); err != nil {
		t.Fatalf("CreateKey with two keys past their deletion date: %v", err)
	}
	if n := counted.n.Load() - before; n > 2 {
		t.Errorf("CreateKey read %d key records of keys pending deletion, want the account's 2 past their date", n)
	}
}

// A maintenance round reads the key records of the keys past their
// deletion date alone, not of every key pending deletion.
func TestDeletionRoundReadsOnlyKeysDue(t *testing.T) {
	e, svc, counted := deletionEnv(t, 100)
	ctx := context.Background()
	scheduleDeletions(t, svc, root, 20)
	before := counted.n.Load()
	if n, err := svc.DeleteExpiredKeys(ctx); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredKeys = %d, %v", n, err)
	}
	if n := counted.n.Load() - before; n != 0 {
		t.Errorf("a round with no key past its date read %d key records, want 0", n)
	}
	e.clock.Advance(7 * day)
	if n, err := svc.DeleteExpiredKeys(ctx); err != nil || n != 20 {
		t.Fatalf("on their date: DeleteExpiredKeys = %d, %v; want 20", n, err)
	}
}

const time1 = day / 24

// writeScans counts the pending deletion index records read in
// read-write transactions.
type writeScans struct {
	store.Store
	n atomic.Int64
}

func (s *writeScans) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Update(ctx, func(tx store.Tx) error { return fn(writeScansTx{tx, &s.n}) })
}

type writeScansTx struct {
	store.Tx
	n *atomic.Int64
}

func (t writeScansTx) Scan(prefix, after []byte, fn func(key, value []byte) (bool, error)) error {
	return t.Tx.Scan(prefix, after, func(k, v []byte) (bool, error) {
		if bytes.HasPrefix(k, keyrepo.PendingDeletionPrefix) {
			t.n.Add(1)
		}
		return fn(k, v)
	})
}

// A CreateKey at the key quota looks for the account's keys past their
// deletion date before its transaction, not in it: looking reads the
// Region's index of keys pending deletion, and the transaction holds the
// store's write lock.
func TestKeyQuotaLooksForGoneKeysOutsideTheWrite(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	counted := &writeScans{Store: e.st}
	const quota = 5
	svc, err := service.New(service.Config{Store: counted, RootKey: e.root, Region: "us-east-1", Now: e.clock.Now, KeyQuota: quota})
	if err != nil {
		t.Fatal(err)
	}
	scheduleDeletions(t, svc, root, 2)
	for range quota - 2 {
		if _, err := svc.CreateKey(ctx, root, &kmsapi.CreateKeyInput{}); err != nil {
			t.Fatal(err)
		}
	}
	before := counted.n.Load()
	_, err = svc.CreateKey(ctx, root, &kmsapi.CreateKeyInput{})
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Code != fault.LimitExceeded {
		t.Fatalf("CreateKey at the quota: %v, want LimitExceededException", err)
	}
	if n := counted.n.Load() - before; n != 0 {
		t.Errorf("a CreateKey refused at the quota read %d pending deletion index records holding the write lock, want 0", n)
	}
	e.clock.Advance(7 * day)
	before = counted.n.Load()
	for range 2 { // the two past their date no longer count
		if _, err := svc.CreateKey(ctx, root, &kmsapi.CreateKeyInput{}); err != nil {
			t.Fatalf("CreateKey with keys past their deletion date: %v", err)
		}
	}
	if _, err := svc.CreateKey(ctx, root, &kmsapi.CreateKeyInput{}); !errors.As(err, &fe) || fe.Code != fault.LimitExceeded {
		t.Fatalf("CreateKey at the quota again: %v, want LimitExceededException", err)
	}
	if n := counted.n.Load() - before; n != 0 {
		t.Errorf("CreateKeys at the quota read %d pending deletion index records holding the write lock, want 0", n)
	}
}
