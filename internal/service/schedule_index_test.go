package service_test

import (
	"strings"
	"testing"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
)

// checkScheduleIndexes fails the test unless every rotation and pending
// deletion index record holds its key record's own date (and account),
// and every key whose record has a date the maintenance round acts on
// has its index record: a date copied into an index must never be
// later than the key record's, nor missing.
func (f *fixture) checkScheduleIndexes(step string) {
	f.t.Helper()
	rot, del := map[string][]byte{}, map[string][]byte{}
	var recs []keyrepo.KeyRecord
	err := f.st.View(f.ctx, func(tx store.Tx) error {
		for _, p := range []struct {
			prefix []byte
			m      map[string][]byte
		}{{keyrepo.RotationPrefix, rot}, {keyrepo.PendingDeletionPrefix, del}} {
			if err := tx.Scan(p.prefix, nil, func(k, v []byte) (bool, error) {
				p.m[string(k[len(p.prefix):])] = append([]byte(nil), v...)
				return true, nil
			}); err != nil {
				return err
			}
		}
		return tx.Scan([]byte("key/"), nil, func(_, v []byte) (bool, error) {
			var rec keyrepo.KeyRecord
			if err := keyrepo.UnmarshalRecord(v, &rec); err != nil {
				return false, err
			}
			recs = append(recs, rec)
			return true, nil
		})
	})
	f.must(err)
	for _, rec := range recs {
		name := rec.Region + "/" + rec.ID
		rotates := rec.RotationPeriodInDays > 0 && rec.NextRotationDate != nil && (!rec.MultiRegion || rec.IsPrimary())
		if v, ok := rot[name]; ok {
			date, dated := keyrepo.RotationIndexDate(v)
			if rotates && (!dated || !date.Equal(*rec.NextRotationDate)) {
				f.t.Errorf("%s: rotation index of %s holds %q, its record %v", step, name, v, rec.NextRotationDate)
			}
		} else if rotates {
			f.t.Errorf("%s: %s rotates on %v but has no rotation index record", step, name, rec.NextRotationDate)
		}
		delete(rot, name)
		pending := rec.State == keyrepo.StatePendingDeletion && rec.DeletionDate != nil
		if v, ok := del[name]; ok {
			date, acct, dated := keyrepo.PendingDeletionOf(v)
			if pending && (!dated || !date.Equal(*rec.DeletionDate) || acct != rec.Account) {
				f.t.Errorf("%s: pending deletion index of %s holds %q, its record %v %s", step, name, v, rec.DeletionDate, rec.Account)
			}
			if !pending {
				f.t.Errorf("%s: %s (%s) is indexed as pending deletion", step, name, rec.State)
			}
		} else if pending {
			f.t.Errorf("%s: %s is pending deletion on %v but has no index record", step, name, rec.DeletionDate)
		}
		delete(del, name)
	}
	for name := range del {
		f.t.Errorf("%s: pending deletion index record %s names no key", step, name)
	}
}

// Every call that changes a key's rotation or deletion schedule writes
// its index record's date in the same transaction, in every region of a
// multi-Region key, and the rounds leave them agreeing.
func TestScheduleIndexesFollowEveryChange(t *testing.T) {
	f := newFixture(t)
	regions := []string{"us-east-1", "eu-west-1", "ap-south-1"}
	svc := f.newService(service.Config{Regions: regions})
	us, eu, ap := inRegion(rootA, "us-east-1"), inRegion(rootA, "eu-west-1"), inRegion(rootA, "ap-south-1")
	step := func(name string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f.checkScheduleIndexes(name)
	}
	round := func(name string) {
		t.Helper()
		_, err := svc.RotateDueKeys(f.ctx)
		step(name+": rotation round", err)
		_, err = svc.DeleteExpiredKeys(f.ctx)
		step(name+": deletion round", err)
	}
	out, err := svc.CreateKey(f.ctx, us, &kmsapi.CreateKeyInput{MultiRegion: true})
	step("CreateKey", err)
	id := out.KeyMetadata.KeyID
	single, err := svc.CreateKey(f.ctx, us, &kmsapi.CreateKeyInput{})
	step("CreateKey", err)
	sid := single.KeyMetadata.KeyID
	_, err = svc.EnableKeyRotation(f.ctx, us, &kmsapi.EnableKeyRotationInput{KeyID: id})
	step("EnableKeyRotation", err)
	_, err = svc.ReplicateKey(f.ctx, us, &kmsapi.ReplicateKeyInput{KeyID: id, ReplicaRegion: "eu-west-1"})
	step("ReplicateKey", err)
	_, err = svc.EnableKeyRotation(f.ctx, us, &kmsapi.EnableKeyRotationInput{KeyID: id, RotationPeriodInDays: int32p(90)})
	step("EnableKeyRotation 90", err)
	_, err = svc.EnableKeyRotation(f.ctx, us, &kmsapi.EnableKeyRotationInput{KeyID: sid, RotationPeriodInDays: int32p(91)})
	step("EnableKeyRotation single", err)
	_, err = svc.RotateKeyOnDemand(f.ctx, us, &kmsapi.KeyIDInput{KeyID: id})
	step("RotateKeyOnDemand", err)
	f.advance(90 * day)
	round("day 90")
	_, err = svc.UpdatePrimaryRegion(f.ctx, us, &kmsapi.UpdatePrimaryRegionInput{KeyID: id, PrimaryRegion: "eu-west-1"})
	step("UpdatePrimaryRegion", err)
	_, err = svc.ReplicateKey(f.ctx, eu, &kmsapi.ReplicateKeyInput{KeyID: id, ReplicaRegion: "ap-south-1"})
	step("ReplicateKey from the new primary", err)
	_, err = svc.DisableKey(f.ctx, eu, &kmsapi.KeyIDInput{KeyID: id})
	step("DisableKey", err)
	f.advance(91 * day)
	round("disabled on its date")
	_, err = svc.EnableKey(f.ctx, eu, &kmsapi.KeyIDInput{KeyID: id})
	step("EnableKey", err)
	round("enabled after its date")
	_, err = svc.ScheduleKeyDeletion(f.ctx, us, &kmsapi.ScheduleKeyDeletionInput{KeyID: sid, PendingWindowInDays: int32p(30)})
	step("ScheduleKeyDeletion", err)
	_, err = svc.CancelKeyDeletion(f.ctx, us, &kmsapi.KeyIDInput{KeyID: sid})
	step("CancelKeyDeletion", err)
	_, err = svc.ScheduleKeyDeletion(f.ctx, us, &kmsapi.ScheduleKeyDeletionInput{KeyID: sid, PendingWindowInDays: int32p(7)})
	step("ScheduleKeyDeletion again", err)
	_, err = svc.ScheduleKeyDeletion(f.ctx, eu, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: int32p(10)})
	step("ScheduleKeyDeletion of the primary", err)
	_, err = svc.ScheduleKeyDeletion(f.ctx, us, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: int32p(7)})
	step("ScheduleKeyDeletion of a replica", err)
	_, err = svc.ScheduleKeyDeletion(f.ctx, ap, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: int32p(8)})
	step("ScheduleKeyDeletion of the other replica", err)
	f.advance(7 * day)
	round("day 7")
	f.advance(day)
	round("day 8")
	if d, err := svc.DescribeKey(f.ctx, eu, &kmsapi.DescribeKeyInput{KeyID: id}); err != nil || d.KeyMetadata.KeyState != string(keyrepo.StatePendingDeletion) {
		t.Fatalf("the primary after its last replica's deletion: %+v, %v", d, err)
	}
	f.advance(10 * day)
	round("day 18")
	for name := range f.snapshot() {
		if strings.Contains(name, id) || strings.Contains(name, sid) {
			t.Errorf("record %s left after the keys' deletion", name)
		}
	}
}

// An index record dated earlier than its key record (or left by a
// cancelled deletion) has the rounds read the key record, which decides:
// no key is deleted before its own date or after a cancel, none rotated
// before its own date, and the quota counts no such key as gone.
func TestScheduleIndexEarlierThanRecordIsReadAgain(t *testing.T) {
	f := newFixture(t)
	svc := f.newService(service.Config{KeyQuota: 2})
	scheduled, cancelled := f.createKey(kmsapi.CreateKeyInput{}), f.createKey(kmsapi.CreateKeyInput{})
	f.must2(svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: scheduled, PendingWindowInDays: int32p(30)}))
	f.must2(svc.ScheduleKeyDeletion(f.ctx, rootA, &kmsapi.ScheduleKeyDeletionInput{KeyID: cancelled, PendingWindowInDays: int32p(7)}))
	f.must2(svc.CancelKeyDeletion(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: cancelled}))
	f.must2(svc.EnableKey(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: cancelled}))
	f.must2(svc.EnableKeyRotation(f.ctx, rootA, &kmsapi.EnableKeyRotationInput{KeyID: cancelled, RotationPeriodInDays: int32p(90)}))
	past := f.now.Add(-day)
	f.must(f.st.Update(f.ctx, func(tx store.Tx) error {
		for _, id := range []string{scheduled, cancelled} {
			if err := tx.Put(keyrepo.PendingDeletionKey(region, id), keyrepo.PendingDeletionValue(past, acctA)); err != nil {
				return err
			}
		}
		return tx.Put(keyrepo.RotationKey(region, cancelled), keyrepo.RotationIndexValue(past))
	}))
	if n, err := svc.DeleteExpiredKeys(f.ctx); err != nil || n != 0 {
		t.Fatalf("DeleteExpiredKeys with index dates before the records' = %d, %v; want none deleted", n, err)
	}
	if n, err := svc.RotateDueKeys(f.ctx); err != nil || n != 0 {
		t.Fatalf("RotateDueKeys with an index date before the record's = %d, %v; want none rotated", n, err)
	}
	if _, err := svc.CreateKey(f.ctx, rootA, &kmsapi.CreateKeyInput{}); !fault.Is(err, fault.LimitExceeded) {
		t.Fatalf("CreateKey at the quota with two keys indexed as past their date but not: %v, want LimitExceededException", err)
	}
	for _, id := range []string{scheduled, cancelled} {
		f.describe(id) // still there
	}
}
