package service

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/store"
)

const (
	defaultRotationPeriodDays = 365
	maxOnDemandRotations      = 25
	rotationAutomatic         = "AUTOMATIC"
	rotationOnDemand          = "ON_DEMAND"
	originExternal            = "EXTERNAL"
)

const day = 24 * time.Hour

// autoRotationGuard is how long before an automatic rotation is due
// RotateKeyOnDemand refuses, as AWS does (ConflictException).
const autoRotationGuard = 20 * time.Minute

// checkRotatable applies AWS's rules for the rotation operations: only
// symmetric encryption keys of origin AWS_KMS rotate automatically, and a
// key must be Enabled to change its rotation (reference §4.4, §4.11).
func checkRotatable(rec *keyrepo.KeyRecord, arn string) error {
	if err := checkPrimary(rec, arn); err != nil {
		return err
	}
	if rec.Origin == originExternal {
		return errOrigin(arn, rec.Origin)
	}
	if rec.KeySpec != keys.SymmetricDefault {
		return newErr(fault.UnsupportedOperation, "%s has key spec %s; only symmetric encryption keys rotate.", arn, rec.KeySpec)
	}
	if rec.State == keyrepo.StateEnabled {
		return nil
	}
	return rec.State.Err(arn)
}

// EnableKeyRotation turns on automatic rotation every RotationPeriodInDays
// (90 to 2560, default 365); the first rotation is one period from now.
func (s *Service) EnableKeyRotation(ctx context.Context, caller Caller, in *kmsapi.EnableKeyRotationInput) (*struct{}, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.intRange("rotationPeriodInDays", in.RotationPeriodInDays, 90, 2560)
	if err := v.err(); err != nil {
		return nil, err
	}
	period := int32(defaultRotationPeriodDays)
	if in.RotationPeriodInDays != nil {
		period = *in.RotationPeriodInDays
	}
	cond := &authz.Conditions{Extra: map[string]string{"kms:rotationperiodindays": strconv.Itoa(int(period))}}
	_, err := s.mutateKey(ctx, caller, in.KeyID, "EnableKeyRotation", cond, func(tx store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		if err := checkRotatable(rec, arn); err != nil {
			return err
		}
		next := s.clock().Add(time.Duration(period) * day)
		rec.RotationPeriodInDays = period
		rec.NextRotationDate = &next
		if err := s.syncReplicas(tx, rec); err != nil {
			return err
		}
		return tx.Put(keyrepo.RotationKey(rec.Region, rec.ID), keyrepo.RotationIndexValue(next))
	})
	return nil, err
}

// DisableKeyRotation turns off automatic rotation.
func (s *Service) DisableKeyRotation(ctx context.Context, caller Caller, in *kmsapi.KeyIDInput) (*struct{}, error) {
	if err := checkKeyID(ctx, in.KeyID); err != nil {
		return nil, err
	}
	_, err := s.mutateKey(ctx, caller, in.KeyID, "DisableKeyRotation", nil, func(tx store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		if err := checkRotatable(rec, arn); err != nil {
			return err
		}
		rec.RotationPeriodInDays = 0
		rec.NextRotationDate = nil
		if err := s.syncReplicas(tx, rec); err != nil {
			return err
		}
		return tx.Delete(keyrepo.RotationKey(rec.Region, rec.ID))
	})
	return nil, err
}

// GetKeyRotationStatus reports whether automatic rotation is on. A key
// pending deletion reports false; cancelling the deletion restores it.
func (s *Service) GetKeyRotationStatus(ctx context.Context, caller Caller, in *kmsapi.KeyIDInput) (*kmsapi.GetKeyRotationStatusOutput, error) {
	if err := checkKeyID(ctx, in.KeyID); err != nil {
		return nil, err
	}
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.IDOrARN|keyrepo.FormOtherAccount, "kms:GetKeyRotationStatus", nil)
	if err != nil {
		return nil, err
	}
	if k.Rec.KeySpec != keys.SymmetricDefault {
		return nil, newErr(fault.UnsupportedOperation, "%s has key spec %s; only symmetric encryption keys rotate.", k.ARN, k.Rec.KeySpec)
	}
	if k.Rec.Origin == originExternal {
		return nil, errOrigin(k.ARN, k.Rec.Origin)
	}
	out := &kmsapi.GetKeyRotationStatusOutput{KeyID: k.ARN}
	if k.Rec.RotationPeriodInDays > 0 && !k.Rec.State.PendingDeletion() {
		out.KeyRotationEnabled = true
		out.RotationPeriodInDays = k.Rec.RotationPeriodInDays
		if k.Rec.NextRotationDate != nil {
			out.NextRotationDate = kmsapi.NewTime(*k.Rec.NextRotationDate)
		}
	}
	return out, nil
}

// RotateKeyOnDemand gives a key new material now, at most 25 times per key.
// It does not move the next automatic rotation. A symmetric key with
// imported material rotates to the material imported for it with
// ImportType NEW_KEY_MATERIAL (rotateImported). As on AWS, the rotation
// itself is recorded too, beside the call's own record: a RotateKey
// service event of type ON_DEMAND (serviceevents.go).
func (s *Service) RotateKeyOnDemand(ctx context.Context, caller Caller, in *kmsapi.KeyIDInput) (*kmsapi.RotateKeyOnDemandOutput, error) {
	if err := checkKeyID(ctx, in.KeyID); err != nil {
		return nil, err
	}
	var details rotateKeyDetails
	var at time.Time
	work := new(audit.Work)
	rec, err := s.mutateKey(audit.NewWorkContext(ctx, work), caller, in.KeyID, "RotateKeyOnDemand", nil, func(tx store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		work.Events = work.Events[:0]
		prev, err := materialID(tx, rec.Region, rec.ID, rec.CurrentVersion)
		if err != nil {
			return err
		}
		at = s.clock()
		if err := s.rotateOnDemand(tx, rec, arn); err != nil {
			return err
		}
		details = rotateKeyDetails{RotationType: rotationOnDemand, KeyID: rec.ID, KeyOrigin: rec.Origin, PreviousKeyMaterialID: prev}
		if details.CurrentKeyMaterialID, err = materialID(tx, rec.Region, rec.ID, rec.CurrentVersion); err != nil {
			return err
		}
		return addServiceEvent(work, at, "RotateKey", rec.Region, rec.Account, rec.ID, &details)
	})
	if err != nil {
		return nil, err
	}
	if err := s.recordServiceEvents(ctx, work); err != nil {
		return nil, s.storeErr("record an on-demand rotation", err)
	}
	return &kmsapi.RotateKeyOnDemandOutput{KeyID: keyrepo.KeyARN(rec.Region, rec.Account, rec.ID)}, nil
}

// rotateOnDemand is RotateKeyOnDemand's change to rec, in tx. The caller
// writes rec.
func (s *Service) rotateOnDemand(tx store.Tx, rec *keyrepo.KeyRecord, arn string) error {
	if rec.KeySpec != keys.SymmetricDefault {
		return &fault.Error{Code: fault.UnsupportedOperation}
	}
	if err := checkPrimary(rec, arn); err != nil {
		return err
	}
	if rec.Origin == originExternal {
		if rec.MultiRegion {
			return errMultiRegionNewMaterial(arn)
		}
		return s.rotateImported(tx, rec, arn)
	}
	if err := checkRotatable(rec, arn); err != nil {
		return err
	}
	now := s.clock()
	if rec.RotationPeriodInDays > 0 && rec.NextRotationDate != nil && rec.NextRotationDate.Sub(now) < autoRotationGuard {
		// As on AWS: an automatic rotation under way, or due within
		// 20 minutes, would follow this one at once.
		return newErr(fault.Conflict, "An automatic rotation of the key %s is in progress or scheduled within the next 20 minutes. Retry the on-demand rotation after it completes.", arn)
	}
	if rec.OnDemandRotations >= maxOnDemandRotations {
		return newErr(fault.LimitExceeded, "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: %s", arn)
	}
	rec.OnDemandRotations++
	return s.rotate(tx, rec, rotationOnDemand, now)
}

// rotateImported makes the material pending rotation of an EXTERNAL key its
// current material. The caller writes rec.
func (s *Service) rotateImported(tx store.Tx, rec *keyrepo.KeyRecord, arn string) error {
	switch {
	case rec.State == keyrepo.StatePendingImport || s.repo.MaterialExpired(rec):
		return keyrepo.StatePendingImport.Err(arn)
	case rec.State != keyrepo.StateEnabled:
		return rec.State.Err(arn)
	}
	vers, err := materials(tx, rec)
	if err != nil {
		return err
	}
	now := s.clock()
	next := pendingMaterial(vers)
	if next == nil || !imported(next, now) {
		return newErr(fault.InvalidState, "No available key material pending rotation for the key: %s.", arn)
	}
	if rec.OnDemandRotations >= maxOnDemandRotations {
		return newErr(fault.LimitExceeded, "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: %s", arn)
	}
	rec.OnDemandRotations++
	next.PendingRotation, next.RotationType, next.Created = false, rotationOnDemand, now
	rec.CurrentVersion = next.Version
	return settleMaterials(tx, rec, vers, now)
}

// rotate adds a new material version to rec and makes it current. The
// caller writes rec; older versions stay to decrypt older ciphertexts. A
// multi-Region primary rotates every replica with it, in the same
// transaction.
func (s *Service) rotate(tx store.Tx, rec *keyrepo.KeyRecord, rotationType string, now time.Time) error {
	v := rec.CurrentVersion + 1
	regions := []string{rec.Region}
	if rec.IsPrimary() {
		regions = rec.Regions()
	}
	vers, err := s.repo.NewVersion(regions, rec, v, now, rotationType)
	if err != nil {
		return err
	}
	for i, r := range regions {
		if err := putJSON(tx, keyrepo.VersionKey(r, rec.ID, v), vers[i]); err != nil {
			return err
		}
	}
	rec.CurrentVersion = v
	return s.syncReplicas(tx, rec)
}

// checkPrimary refuses an operation that only a multi-Region key's
// primary may take (the shared properties: rotation, replication).
func checkPrimary(rec *keyrepo.KeyRecord, arn string) error {
	if rec.MultiRegion && !rec.IsPrimary() {
		return newErr(fault.UnsupportedOperation, "%s is not a multi-region primary key.", arn)
	}
	return nil
}

// syncReplicas copies the properties a multi-Region primary shares with
// its replicas (its current material version and its automatic rotation)
// to their records, in the caller's transaction. It does nothing for
// other keys.
func (s *Service) syncReplicas(tx store.Tx, primary *keyrepo.KeyRecord) error {
	if !primary.IsPrimary() {
		return nil
	}
	for _, r := range primary.ReplicaRegions {
		var rec keyrepo.KeyRecord
		if err := getJSON(tx, keyrepo.KeyKey(r, primary.ID), &rec); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return err
		}
		rec.CurrentVersion = primary.CurrentVersion
		rec.RotationPeriodInDays = primary.RotationPeriodInDays
		rec.NextRotationDate = primary.NextRotationDate
		rec.OnDemandRotations = primary.OnDemandRotations
		if err := putJSON(tx, keyrepo.KeyKey(r, rec.ID), &rec); err != nil {
			return err
		}
	}
	return nil
}

// RotateDueKeys rotates every Enabled key whose next automatic rotation date
// has passed and returns how many it rotated, each recorded as a RotateKey
// service event; while the trail cannot record, none (serviceevents.go).
// The server calls it periodically; tests call it after moving the clock.
// A key that was disabled on its date rotates when it is next found
// Enabled. A multi-Region primary's rotation, which rotates its replicas
// with it, is one event, of the primary.
func (s *Service) RotateDueKeys(ctx context.Context) (int, error) {
	if err := s.trailErr(); err != nil {
		return 0, fmt.Errorf("keys due for rotation not rotated: %w", err)
	}
	now := s.now()
	// A key whose index record dates its next rotation after now is not
	// due: its key record is not read. One indexed before the records
	// held a date is read, and dated (datedRotations).
	var undated []keyRef
	notDue := func(index []byte) bool {
		next, ok := keyrepo.RotationIndexDate(index)
		return ok && now.Before(next)
	}
	due, err := s.scanIndexOf(ctx, keyrepo.RotationPrefix, notDue, func(ref keyRef, index []byte, rec *keyrepo.KeyRecord) bool {
		if _, ok := keyrepo.RotationIndexDate(index); !ok {
			undated = append(undated, ref)
		}
		return s.rotationDue(rec, now)
	}, func() { undated = undated[:0] })
	if err != nil {
		return 0, err
	}
	rotated := 0
	var errs []error
	for _, ref := range due {
		region, id := ref.region, ref.id
		if err := s.trailErr(); err != nil {
			return rotated, errors.Join(append(errs, fmt.Errorf("keys due for rotation not rotated: %w", err))...)
		}
		done := false
		var at time.Time
		var details rotateKeyDetails
		var rec keyrepo.KeyRecord
		work := new(audit.Work)
		err := s.update(audit.NewWorkContext(ctx, work), "RotateDueKeys", func(tx store.Tx) error {
			done, work.Events = false, work.Events[:0]
			rec = keyrepo.KeyRecord{}
			if err := getJSON(tx, keyrepo.KeyKey(region, id), &rec); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return tx.Delete(keyrepo.RotationKey(region, id))
				}
				return err
			}
			if rec.MultiRegion && !rec.IsPrimary() {
				// Made a replica since the scan: its new primary rotates
				// every region, and a replica rotating alone would give
				// its region material no other region has.
				return tx.Delete(keyrepo.RotationKey(region, id))
			}
			if !s.rotationDue(&rec, now) {
				return nil
			}
			at = s.clock()
			details = rotateKeyDetails{RotationType: rotationAutomatic, KeyID: id, KeyOrigin: rec.Origin}
			var err error
			if details.PreviousKeyMaterialID, err = materialID(tx, region, id, rec.CurrentVersion); err != nil {
				return err
			}
			if err := s.rotate(tx, &rec, rotationAutomatic, at); err != nil {
				return err
			}
			if details.CurrentKeyMaterialID, err = materialID(tx, region, id, rec.CurrentVersion); err != nil {
				return err
			}
			next := at.Add(time.Duration(rec.RotationPeriodInDays) * day)
			rec.NextRotationDate = &next
			if err := s.syncReplicas(tx, &rec); err != nil {
				return err
			}
			if err := tx.Put(keyrepo.RotationKey(region, id), keyrepo.RotationIndexValue(next)); err != nil {
				return err
			}
			if err := addServiceEvent(work, at, "RotateKey", region, rec.Account, id, &details); err != nil {
				return err
			}
			done = true
			return putJSON(tx, keyrepo.KeyKey(region, id), &rec)
		})
		s.repo.Invalidate(region, id, "")
		if done {
			s.invalidateKey(&rec)
		}
		if err != nil {
			// One key that cannot rotate must not keep the others from it.
			if ctx.Err() != nil {
				return rotated, err
			}
			s.log.Error("rotating a key automatically", "keyId", id, "region", region, "err", err)
			errs = append(errs, fmt.Errorf("key %s in %s: %w", id, region, err))
			continue
		}
		if done {
			rotated++
			s.log.Info("key rotated automatically", "keyId", id)
			if err := s.recordServiceEvents(ctx, work); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := s.dateRotations(ctx, undated); err != nil {
		if ctx.Err() != nil {
			return rotated, err
		}
		errs = append(errs, fmt.Errorf("dating the rotation index: %w", err))
	}
	return rotated, errors.Join(errs...)
}

// datedBatch is how many rotation index records one transaction of
// dateRotations dates.
const datedBatch = 500

// dateRotations writes into the rotation index records of refs, written
// before they held a date, their keys' next rotation date, so that later
// rounds read those keys' records only when they are due. Each record is
// dated from its key record as its transaction reads both; one already
// dated, gone, or whose key no longer rotates, is left as it is.
func (s *Service) dateRotations(ctx context.Context, refs []keyRef) error {
	for len(refs) > 0 {
		batch := refs[:min(datedBatch, len(refs))]
		refs = refs[len(batch):]
		err := s.update(ctx, "DateRotations", func(tx store.Tx) error {
			for _, ref := range batch {
				// One gone, or changed outside the server since the
				// scan (the scan leaves those out), is left as it is.
				index, err := tx.Get(keyrepo.RotationKey(ref.region, ref.id))
				if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnauthenticated) {
					continue
				}
				if err != nil {
					return err
				}
				if _, dated := keyrepo.RotationIndexDate(index); dated {
					continue
				}
				var rec keyrepo.KeyRecord
				if err := getJSON(tx, keyrepo.KeyKey(ref.region, ref.id), &rec); errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnauthenticated) {
					continue
				} else if err != nil {
					return err
				}
				if rec.RotationPeriodInDays == 0 || rec.NextRotationDate == nil {
					continue
				}
				if err := tx.Put(keyrepo.RotationKey(ref.region, ref.id), keyrepo.RotationIndexValue(*rec.NextRotationDate)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) rotationDue(rec *keyrepo.KeyRecord, now time.Time) bool {
	return rec.State == keyrepo.StateEnabled && rec.RotationPeriodInDays > 0 && rec.NextRotationDate != nil &&
		!now.Before(*rec.NextRotationDate)
}

// keyRef names a key in a region.
type keyRef struct{ region, id string }

// scanIndex returns the keys in an index (prefix + region/key id) whose key
// record satisfies due. A key whose record, or index entry, was changed
// outside the server is logged and left out: one such record must not
// stop the work due on every other key.
func (s *Service) scanIndex(ctx context.Context, prefix []byte, due func(*keyrepo.KeyRecord) bool) ([]keyRef, error) {
	return s.scanIndexOf(ctx, prefix, nil, func(_ keyRef, _ []byte, rec *keyrepo.KeyRecord) bool { return due(rec) }, nil)
}

// scanIndexOf is scanIndex that first asks notDue (if set) about each
// index record's value, and reads the key record of none it says is not
// due; due is given the index record's value too. retry (if set) is
// called before each attempt of the scan's transaction, for due's
// caller to forget what an earlier attempt told it.
func (s *Service) scanIndexOf(ctx context.Context, prefix []byte, notDue func(index []byte) bool,
	due func(ref keyRef, index []byte, rec *keyrepo.KeyRecord) bool, retry func()) ([]keyRef, error) {
	var ids []keyRef
	err := s.view(ctx, "scan "+string(prefix), func(tx store.Tx) error {
		ids = ids[:0]
		if retry != nil {
			retry()
		}
		return store.ScanReadable(tx, prefix, nil, func(k, index []byte) (bool, error) {
			region, id, ok := keyrepo.SplitRegionID(string(k[len(prefix):]))
			if !ok {
				return false, errors.New("malformed index entry " + string(k))
			}
			if notDue != nil && notDue(index) {
				return true, nil
			}
			var rec keyrepo.KeyRecord
			if err := getJSON(tx, keyrepo.KeyKey(region, id), &rec); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					ids = append(ids, keyRef{region, id}) // a dangling index entry: let the caller clean it
					return true, nil
				}
				if errors.Is(err, store.ErrUnauthenticated) {
					// The calls on that key fail; the others' work is done.
					s.log.Error("a key left out of the maintenance round: its record was changed outside the server", "index", string(prefix), "err", err)
					return true, nil
				}
				return false, err
			}
			if due(keyRef{region, id}, index, &rec) {
				ids = append(ids, keyRef{region, id})
			}
			return true, nil
		}, func(err error) {
			s.log.Error("an index entry left out of the maintenance round: it was changed outside the server", "index", string(prefix), "err", err)
		})
	})
	return ids, err
}

// ListKeyRotations lists a key's completed rotations, oldest first, or with
// IncludeKeyMaterial ALL_KEY_MATERIAL every version of its material.
func (s *Service) ListKeyRotations(ctx context.Context, caller Caller, in *kmsapi.ListKeyRotationsInput) (*kmsapi.ListKeyRotationsOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.enum("includeKeyMaterial", in.IncludeKeyMaterial, []string{"ALL_KEY_MATERIAL", "ROTATIONS_ONLY"})
	v.paging(in.Limit, in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	marker, err := parseMarker(in.Marker)
	if err != nil {
		return nil, err
	}
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.IDOrARN, "kms:ListKeyRotations", nil)
	if err != nil {
		return nil, err
	}
	pages := newListing("ListKeyRotations", k.Rec.Region, k.Rec.ID)
	after, err := marker.position(pages)
	if err != nil {
		return nil, err
	}
	if after != "" {
		if _, err := strconv.ParseUint(after, 16, 32); err != nil || len(after) != 8 {
			return nil, errBadMarker
		}
	}
	if k.Rec.KeySpec != keys.SymmetricDefault {
		return nil, &fault.Error{Code: fault.UnsupportedOperation}
	}
	all := in.IncludeKeyMaterial == "ALL_KEY_MATERIAL"
	limit := pageLimit(in.Limit, 100, 1000)
	out := &kmsapi.ListKeyRotationsOutput{}
	err = s.view(ctx, "ListKeyRotations", func(tx store.Tx) error {
		var err error
		out.Rotations, out.NextMarker, err = scanPage(tx, pages, keyrepo.VersionPrefix(k.Rec.Region, k.Rec.ID), after, limit, func(_ string, val []byte) (kmsapi.RotationsListEntry, bool, error) {
			var vr keyrepo.VersionRecord
			if err := keyrepo.UnmarshalRecord(val, &vr); err != nil {
				return kmsapi.RotationsListEntry{}, false, err
			}
			if !all && vr.RotationType == "" {
				return kmsapi.RotationsListEntry{}, false, nil
			}
			return s.rotationEntry(&k.Rec, &vr), true, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	out.Truncated = out.NextMarker != ""
	return out, nil
}

func (s *Service) rotationEntry(rec *keyrepo.KeyRecord, vr *keyrepo.VersionRecord) kmsapi.RotationsListEntry {
	e := kmsapi.RotationsListEntry{KeyID: rec.ID, KeyMaterialID: vr.MaterialID, KeyMaterialState: "NON_CURRENT", RotationType: vr.RotationType}
	if vr.Version == rec.CurrentVersion {
		e.KeyMaterialState = "CURRENT"
	}
	if vr.RotationType != "" {
		e.RotationDate = kmsapi.NewTime(vr.Created)
	}
	if vr.PendingRotation {
		e.KeyMaterialState = "PENDING_ROTATION"
	}
	if vr.ExpirationModel == "" && vr.Sealed != nil && vr.Version == rec.CurrentVersion {
		vr.ExpirationModel, vr.ValidTo = rec.ExpirationModel, rec.ValidTo // written before materials had their own
	}
	if rec.Origin == originExternal {
		e.KeyMaterialDescription = vr.Description
		e.ImportState = "PENDING_IMPORT"
		if imported(vr, s.now()) {
			e.ImportState = "IMPORTED"
			e.ExpirationModel = vr.ExpirationModel
			if vr.ValidTo != nil {
				e.ValidTo = kmsapi.NewTime(*vr.ValidTo)
			}
		}
	}
	return e
}
