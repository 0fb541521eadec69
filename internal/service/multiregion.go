package service

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/store"
)

// Multi-Region keys. A multi-Region key is one key id (mrk-...) with a
// record in each region it is in: the primary's and each replica's. The
// records share the key material (each region's versions are the same
// material, sealed for that region's record names), the key spec, usage
// and origin, and automatic rotation; each has its own key policy,
// description, tags, aliases, grants and state. Every change to a shared
// property is written to every region's record in one store transaction,
// so a replica never sees its primary half rotated. Since every region is
// in the one store, replication is synchronous: a replica is Enabled (or,
// for imported material, PendingImport) when ReplicateKey returns, never
// Creating.

// regionPattern is the form of ReplicaRegion and PrimaryRegion.
var regionPattern = regexp.MustCompile(`^([a-z]+-){2,3}\d+$`)

// ReplicateKey creates a replica of a multi-Region primary key in another
// region: the same key id and material, with its own key policy,
// description and tags.
func (s *Service) ReplicateKey(ctx context.Context, caller Caller, in *kmsapi.ReplicateKeyInput) (*kmsapi.ReplicateKeyOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	if v.requiredGiven("replicaRegion", in.ReplicaRegion) {
		v.patterned("replicaRegion", in.ReplicaRegion, 1, 32, regionPattern, regionPattern.String())
	}
	v.policy(in.Policy)
	v.optStrLen("description", in.Description, 0, 8192)
	v.tags(in.Tags)
	if err := v.err(); err != nil {
		return nil, err
	}
	to := in.ReplicaRegion
	bypass := "false"
	if in.BypassPolicyLockoutSafetyCheck {
		bypass = "true"
	}
	cond := &authz.Conditions{Extra: map[string]string{"kms:replicaregion": to, "kms:bypasspolicylockoutsafetycheck": bypass}}
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.IDOrARN, "kms:ReplicateKey", cond)
	if err != nil {
		return nil, err
	}
	if k, err = s.settled(ctx, k); err != nil {
		return nil, err
	}
	if err := s.checkReplicable(k); err != nil {
		return nil, err
	}
	if to == k.Rec.Region {
		return nil, newErr(fault.Validation, "The replica Region %s must differ from the primary key's Region.", to)
	}
	if !s.Serves(to) {
		return nil, newErr(fault.UnsupportedOperation, "This server does not serve the Region %s.", to)
	}
	// The replica is created in its own Region, by the same caller: it
	// needs kms:CreateKey (and kms:TagResource for tags) there.
	inReplica := caller
	inReplica.Region = to
	createCond := &authz.Conditions{Tags: in.Tags, Extra: map[string]string{
		"kms:keyspec": k.Rec.KeySpec, "kms:keyusage": k.Rec.KeyUsage, "kms:keyorigin": k.Rec.Origin,
		"kms:multiregion": "true", "kms:multiregionkeytype": "REPLICA",
		"kms:bypasspolicylockoutsafetycheck": bypass,
	}}
	createActions := []string{"kms:CreateKey"}
	if len(in.Tags) > 0 {
		createActions = append(createActions, "kms:TagResource")
	}
	for _, a := range createActions {
		if err := s.authz.Account(&inReplica, a, "*", createCond); err != nil {
			return nil, err
		}
	}
	arn := keyrepo.KeyARN(to, k.Rec.Account, k.Rec.ID)
	doc := defaultPolicy(k.Rec.Account)
	var policyIDs map[string]string
	if in.Policy != nil {
		var err error
		// The lockout check judges the policy on the replica as it will be.
		stand := &keyrepo.Key{ARN: arn, Rec: keyrepo.KeyRecord{ID: k.Rec.ID, Region: to, Account: k.Rec.Account,
			KeySpec: k.Rec.KeySpec, KeyUsage: k.Rec.KeyUsage, Origin: k.Rec.Origin, Tags: mergeTags(nil, in.Tags),
			MultiRegion: true, PrimaryRegion: k.Rec.Region}}
		if _, policyIDs, err = s.parseKeyPolicy(ctx, &inReplica, *in.Policy, stand, in.BypassPolicyLockoutSafetyCheck); err != nil {
			return nil, err
		}
		doc = *in.Policy
	}
	if err := checkTags(nil, in.Tags); err != nil {
		return nil, err
	}
	now := s.clock()
	var replica keyrepo.KeyRecord
	var materialID string // the replica's current material, as DescribeKey shows it
	err = s.update(ctx, "ReplicateKey", func(tx store.Tx) error {
		var primary keyrepo.KeyRecord
		if err := getJSON(tx, keyrepo.KeyKey(k.Rec.Region, k.Rec.ID), &primary); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return keyrepo.ErrKeyDoesNotExist(k.ARN)
			}
			return err
		}
		if err := s.reauthorize(ctx, tx, &caller, "kms:ReplicateKey", k, &primary, cond); err != nil {
			return err
		}
		// The replica is a key created in its Region: decided there too
		// on the caller as this transaction reads it, as CreateKey is.
		if err := s.reauthorizeAccount(ctx, tx, &inReplica, "*", createCond, createActions...); err != nil {
			return err
		}
		pk := *k
		pk.Rec = primary
		if err := s.checkReplicable(&pk); err != nil {
			return err
		}
		if _, err := tx.Get(keyrepo.KeyKey(to, primary.ID)); err == nil {
			return newErr(fault.AlreadyExists, "The multi-Region key %s already has a replica in %s: %s", k.ARN, to, arn)
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		replica = keyrepo.KeyRecord{
			V: keyrepo.RecordVersion, ID: primary.ID, Region: to, Account: primary.Account, Created: now, UsageTrackedSince: &now,
			KeySpec: primary.KeySpec, KeyUsage: primary.KeyUsage, Origin: primary.Origin, State: keyrepo.StateEnabled,
			Policy: doc, PolicyPrincipalIDs: policyIDs, Tags: mergeTags(nil, in.Tags), CurrentVersion: primary.CurrentVersion,
			RotationPeriodInDays: primary.RotationPeriodInDays, NextRotationDate: primary.NextRotationDate,
			OnDemandRotations: primary.OnDemandRotations,
			MultiRegion:       true, PrimaryRegion: primary.Region, ReplicaRegions: append(slices.Clone(primary.ReplicaRegions), to),
		}
		if in.Description != nil {
			replica.Description = *in.Description
		}
		// The material: a copy of each version, sealed for the replica.
		// Imported material is not copied: it is imported into each
		// replica, and must be the same (its key material id says so).
		var vers []keyrepo.VersionRecord
		err := tx.Scan(keyrepo.VersionPrefix(primary.Region, primary.ID), nil, func(_, val []byte) (bool, error) {
			var vr keyrepo.VersionRecord
			if err := keyrepo.UnmarshalRecord(val, &vr); err != nil {
				return false, err
			}
			vers = append(vers, vr)
			return true, nil
		})
		if err != nil {
			return err
		}
		materialID = ""
		for i := range vers {
			vr := &vers[i]
			if primary.Origin == originExternal {
				vr.Sealed = nil
			}
			if vr.Version == replica.CurrentVersion && vr.Sealed != nil && !vr.PendingRotation {
				materialID = vr.MaterialID
			}
			c, err := s.repo.Reseal(&primary, vr, to)
			if err != nil {
				return err
			}
			if err := putJSON(tx, keyrepo.VersionKey(to, primary.ID, vr.Version), c); err != nil {
				return err
			}
		}
		if primary.Origin == originExternal {
			replica.State = keyrepo.StatePendingImport
		}
		if err := putJSON(tx, keyrepo.KeyKey(to, replica.ID), &replica); err != nil {
			return err
		}
		if err := s.addAccountKey(tx, replica.Account, to, replica.ID, nil); err != nil {
			return err
		}
		// Every other region of the key learns of the new replica.
		for _, r := range primary.Regions() {
			var rec keyrepo.KeyRecord
			if err := getJSON(tx, keyrepo.KeyKey(r, primary.ID), &rec); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				return err
			}
			rec.ReplicaRegions = append(rec.ReplicaRegions, to)
			if err := putJSON(tx, keyrepo.KeyKey(r, rec.ID), &rec); err != nil {
				return err
			}
		}
		return nil
	})
	s.invalidateKey(&replica)
	s.invalidateKey(&k.Rec)
	if err != nil {
		return nil, err
	}
	audit.FromContext(ctx).AddKey(arn)
	tags := replica.Tags
	if tags == nil {
		tags = []kmsapi.Tag{}
	}
	return &kmsapi.ReplicateKeyOutput{ReplicaKeyMetadata: s.metadata(&replica, materialID), ReplicaPolicy: policy.Pretty(replica.Policy), ReplicaTags: tags}, nil
}

// checkReplicable refuses to replicate a key that is not a multi-Region
// primary, or that is not Enabled.
func (s *Service) checkReplicable(k *keyrepo.Key) error {
	if !k.Rec.MultiRegion {
		return newErr(fault.UnsupportedOperation, "%s is not a multi-region key.", k.ARN)
	}
	if err := checkPrimary(&k.Rec, k.ARN); err != nil {
		return err
	}
	return s.repo.StateOf(&k.Rec).Err(k.ARN)
}

// UpdatePrimaryRegion makes the replica in another region the primary of
// a multi-Region key, and the primary a replica. It is called in the
// primary's region.
func (s *Service) UpdatePrimaryRegion(ctx context.Context, caller Caller, in *kmsapi.UpdatePrimaryRegionInput) (*struct{}, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	if v.requiredGiven("primaryRegion", in.PrimaryRegion) {
		v.patterned("primaryRegion", in.PrimaryRegion, 1, 32, regionPattern, regionPattern.String())
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	to := in.PrimaryRegion
	cond := &authz.Conditions{Extra: map[string]string{"kms:primaryregion": to}}
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.IDOrARN, "kms:UpdatePrimaryRegion", cond)
	if err != nil {
		return nil, err
	}
	if k, err = s.settled(ctx, k); err != nil {
		return nil, err
	}
	if err := s.checkReplicable(k); err != nil {
		return nil, err
	}
	if to == k.Rec.Region {
		return nil, newErr(fault.Validation, "The key %s is already the primary key in %s.", k.ARN, to)
	}
	// A replica in a region no longer served stays a replica: as the
	// primary, no call could reach it to rotate, replicate, move or
	// delete the key.
	if !s.Serves(to) {
		return nil, newErr(fault.UnsupportedOperation, "This server does not serve the Region %s.", to)
	}
	// The new primary must allow UpdatePrimaryRegion too: AWS authorizes
	// the call against both keys.
	target, err := s.repo.Load(ctx, to, k.Rec.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && s.repo.Expired(&target.Rec)) {
		return nil, keyrepo.ErrKeyDoesNotExist(keyrepo.KeyARN(to, k.Rec.Account, k.Rec.ID))
	}
	if err != nil {
		return nil, s.storeErr("UpdatePrimaryRegion", err)
	}
	inTarget := caller
	inTarget.Region = to
	if err := s.authz.Key(ctx, &inTarget, "kms:UpdatePrimaryRegion", target, cond); err != nil {
		return nil, err
	}
	var regions []string
	err = s.update(ctx, "UpdatePrimaryRegion", func(tx store.Tx) error {
		var primary, next keyrepo.KeyRecord
		if err := getJSON(tx, keyrepo.KeyKey(k.Rec.Region, k.Rec.ID), &primary); err != nil {
			return err
		}
		if !primary.IsPrimary() {
			return newErr(fault.UnsupportedOperation, "%s is not a multi-region primary key.", k.ARN)
		}
		// The primary as it is now: a ScheduleKeyDeletion committed since
		// it was read would otherwise leave a replica waiting for its
		// replicas' deletion, which no one ever deletes.
		if err := s.repo.StateOf(&primary).Err(k.ARN); err != nil {
			return err
		}
		targetARN := keyrepo.KeyARN(to, primary.Account, primary.ID)
		if err := getJSON(tx, keyrepo.KeyKey(to, primary.ID), &next); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return keyrepo.ErrKeyDoesNotExist(targetARN)
			}
			return err
		}
		// Both keys must be Enabled when the update starts, as on AWS: a
		// disabled replica would otherwise become a primary no one
		// enabled, and could be replicated while disabled.
		if err := s.repo.StateOf(&next).Err(targetARN); err != nil {
			return err
		}
		// Both keys as this transaction reads them, as the call was
		// authorized on both (reauthorize): a caller shut out of either
		// since moves nothing.
		if err := s.reauthorize(ctx, tx, &caller, "kms:UpdatePrimaryRegion", k, &primary, cond); err != nil {
			return err
		}
		if err := s.reauthorize(ctx, tx, &inTarget, "kms:UpdatePrimaryRegion", target, &next, cond); err != nil {
			return err
		}
		regions = primary.Regions()
		replicas := append([]string{primary.Region}, slices.DeleteFunc(slices.Clone(primary.ReplicaRegions), func(r string) bool { return r == to })...)
		for _, r := range regions {
			var rec keyrepo.KeyRecord
			if err := getJSON(tx, keyrepo.KeyKey(r, primary.ID), &rec); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				return err
			}
			rec.PrimaryRegion, rec.ReplicaRegions = to, slices.Clone(replicas)
			if err := putJSON(tx, keyrepo.KeyKey(r, rec.ID), &rec); err != nil {
				return err
			}
		}
		// Automatic rotation is driven from the primary.
		if primary.RotationPeriodInDays > 0 {
			if err := tx.Delete(keyrepo.RotationKey(primary.Region, primary.ID)); err != nil {
				return err
			}
			var dated []byte // an undated record moves as it was
			if primary.NextRotationDate != nil {
				dated = keyrepo.RotationIndexValue(*primary.NextRotationDate)
			}
			return tx.Put(keyrepo.RotationKey(to, primary.ID), dated)
		}
		return nil
	})
	for _, r := range regions {
		s.repo.Invalidate(r, k.Rec.ID, "")
	}
	s.invalidateKey(&k.Rec)
	if err != nil {
		return nil, err
	}
	audit.FromContext(ctx).AddKey(target.ARN)
	return nil, nil
}

// checkReplicasDeletable refuses to make the primary rec wait for a
// replica that no call can schedule for deletion: one in a region the
// server no longer serves (--regions narrowed since it was made) that is
// not pending deletion already. The primary would wait forever, unusable.
// A replica scheduled while its region was served is deleted when due
// whether or not the region is served (DeleteExpiredKeys), so the primary
// may wait for it.
func (s *Service) checkReplicasDeletable(tx store.Tx, rec *keyrepo.KeyRecord) error {
	for _, r := range rec.ReplicaRegions {
		if s.Serves(r) {
			continue
		}
		var replica keyrepo.KeyRecord
		if err := getJSON(tx, keyrepo.KeyKey(r, rec.ID), &replica); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return err
		}
		if replica.State != keyrepo.StatePendingDeletion {
			return newErr(fault.UnsupportedOperation, "The replica %s is in a Region this server does not serve: serve %s again and schedule the replica's deletion there before the primary's.",
				keyrepo.KeyARN(r, rec.Account, rec.ID), r)
		}
	}
	return nil
}

// settleReplicas finishes, as the maintenance round would, the deletion
// of the other regions of the multi-Region key rec whose deletion date
// has passed, before an operation reads rec's regions. Such a replica is
// already gone in its own region (Resolve refuses it); once its deletion
// is finished no region lists it, ReplicateKey may make a new one in its
// region, and a primary that waited for it is in its own waiting period,
// whether a call or the maintenance round comes first. It reports
// whether it deleted any: rec is then stale.
func (s *Service) settleReplicas(ctx context.Context, rec *keyrepo.KeyRecord) (bool, error) {
	if !rec.MultiRegion {
		return false, nil
	}
	type due struct {
		region string
		date   time.Time
	}
	var dues []due
	err := s.view(ctx, "read a multi-Region key's regions", func(tx store.Tx) error {
		dues = dues[:0]
		for _, r := range rec.Regions() {
			if r == rec.Region {
				continue
			}
			var other keyrepo.KeyRecord
			if err := getJSON(tx, keyrepo.KeyKey(r, rec.ID), &other); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				return err
			}
			if s.repo.Expired(&other) {
				dues = append(dues, due{r, *other.DeletionDate})
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	// Oldest first, as the maintenance round deletes them: a primary's
	// waiting period starts from the date of the last.
	slices.SortFunc(dues, func(a, b due) int { return a.date.Compare(b.date) })
	deleted := false
	for _, d := range dues {
		done, err := s.deleteKey(ctx, d.region, rec.ID, s.now())
		deleted = deleted || done
		if err != nil {
			// Also a deletion the trail cannot record, or did not: the
			// call fails as it would for want of its own record.
			return deleted, s.storeErr("delete a multi-Region key's region past its deletion date", err)
		}
	}
	return deleted, nil
}

// settled is k once settleReplicas has finished the deletions due in its
// other regions: k itself when there were none, else k read again.
func (s *Service) settled(ctx context.Context, k *keyrepo.Key) (*keyrepo.Key, error) {
	changed, err := s.settleReplicas(ctx, &k.Rec)
	if err != nil || !changed {
		return k, err
	}
	fresh, err := s.repo.Load(ctx, k.Rec.Region, k.Rec.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && s.repo.Expired(&fresh.Rec)) {
		return nil, keyrepo.ErrKeyDoesNotExist(k.ARN)
	}
	if err != nil {
		return nil, s.storeErr("read a key again", err)
	}
	return fresh, nil
}

// errMultiRegionNewMaterial refuses new imported material, and on-demand
// rotation to it, for a multi-Region key: AWS imports it into the primary
// and each replica before the primary rotates every region to it
// (PENDING_MULTI_REGION_IMPORT_AND_ROTATION), which this server does not
// do yet. Re-importing a multi-Region key's material works.
func errMultiRegionNewMaterial(arn string) error {
	return newErr(fault.UnsupportedOperation, "New key material for the multi-Region key %s is not supported by this server: re-import its current key material.", arn)
}
