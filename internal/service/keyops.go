package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/policy"

	"time"

	"strconv"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

const (
	maxPolicyBytes       = 32768
	originAWSKMS         = "AWS_KMS"
	defaultPendingWindow = 30
)

// defaultPolicy is the key policy AWS gives a key created without one
// (reference §6.1), in the layout GetKeyPolicy returns.
func defaultPolicy(account string) string {
	return `{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::` + account + `:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}`
}

// CreateKey creates a symmetric encryption key with fresh material.
func (s *Service) CreateKey(ctx context.Context, caller Caller, in *kmsapi.CreateKeyInput) (*kmsapi.CreateKeyOutput, error) {
	v := newViolations(ctx)
	v.policy(in.Policy)
	v.optStrLen("description", in.Description, 0, 8192)
	v.enum("keyUsage", in.KeyUsage, keyUsageEnum)
	v.enum("customerMasterKeySpec", in.CustomerMasterKeySpec, customerMasterKeySpecEnum)
	v.enum("keySpec", in.KeySpec, keySpecEnum)
	v.enum("origin", in.Origin, originEnum)
	v.optStrLen("customKeyStoreId", in.CustomKeyStoreID, 1, 64)
	if in.XksKeyID != nil {
		v.patterned("xksKeyId", *in.XksKeyID, 1, 128, xksKeyIDPattern, `^[a-zA-Z0-9-_.]+$`)
	}
	v.tags(in.Tags)
	if err := v.err(); err != nil {
		return nil, err
	}
	if in.KeySpec != "" && in.CustomerMasterKeySpec != "" {
		return nil, newErr(fault.Validation, "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.")
	}
	spec := in.KeySpec
	if spec == "" {
		spec = in.CustomerMasterKeySpec
	}
	if spec == "" {
		spec = keys.SymmetricDefault
	}
	usage := in.KeyUsage
	if spec != keys.SymmetricDefault && usage == "" {
		return nil, newErr(fault.Validation, "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.")
	}
	if usage == "" {
		usage = keys.UsageEncrypt
	}
	if spec == "SM2" {
		return nil, newErr(fault.UnsupportedOperation, "KeySpec SM2 is only available in AWS China Regions.")
	}
	if !slices.Contains(keys.Usages(spec), usage) {
		return nil, newErr(fault.Validation, "KeyUsage %s is not compatible with KeySpec %s", usage, spec)
	}
	if in.CustomKeyStoreID != nil {
		return nil, errCustomKeyStoreNotFound(*in.CustomKeyStoreID)
	}
	origin := in.Origin
	if origin == "" {
		origin = originAWSKMS
	}
	if origin != originAWSKMS && origin != originExternal {
		return nil, newErr(fault.UnsupportedOperation, "Origin %s is not supported by this server: custom key stores do not exist here.", origin)
	}
	if in.XksKeyID != nil {
		return nil, newErr(fault.UnsupportedOperation, "XksKeyId is only valid with a CustomKeyStoreId; custom key stores are not supported by this server.")
	}
	multi := "false"
	if in.MultiRegion {
		multi = "true"
	}
	bypass := "false"
	if in.BypassPolicyLockoutSafetyCheck {
		bypass = "true"
	}
	cond := &authz.Conditions{Tags: in.Tags, Extra: map[string]string{
		"kms:keyspec": spec, "kms:keyusage": usage, "kms:keyorigin": origin, "kms:multiregion": multi,
		"kms:bypasspolicylockoutsafetycheck": bypass,
	}}
	if in.MultiRegion {
		cond.Extra["kms:multiregionkeytype"] = "PRIMARY"
	}
	if err := s.authz.Account(&caller, "kms:CreateKey", "*", cond); err != nil {
		return nil, err
	}
	if len(in.Tags) > 0 {
		if err := s.authz.Account(&caller, "kms:TagResource", "*", cond); err != nil {
			return nil, err
		}
	}
	now := s.clock()
	region := s.regionOf(caller)
	kid := keys.NewID()
	if in.MultiRegion {
		kid = keys.NewMultiRegionID()
	}
	id := kid.String()
	rec := keyrepo.KeyRecord{
		V: keyrepo.RecordVersion, ID: id, Region: region, Account: caller.AccountID, Created: now,
		KeySpec: spec, KeyUsage: usage, Origin: origin, State: keyrepo.StateEnabled,
		Policy: defaultPolicy(caller.AccountID), Tags: mergeTags(nil, in.Tags), CurrentVersion: 1, UsageTrackedSince: &now,
	}
	if in.MultiRegion {
		rec.MultiRegion, rec.PrimaryRegion = true, region
	}
	if in.Policy != nil {
		// The lockout check judges the policy on the key as it will be.
		stand := &keyrepo.Key{Rec: rec, ARN: keyrepo.KeyARN(region, caller.AccountID, id)}
		var err error
		if _, rec.PolicyPrincipalIDs, err = s.parseKeyPolicy(ctx, &caller, *in.Policy, stand, in.BypassPolicyLockoutSafetyCheck); err != nil {
			return nil, err
		}
		rec.Policy = *in.Policy
	}
	if err := checkTags(nil, in.Tags); err != nil {
		return nil, err
	}
	if in.Description != nil {
		rec.Description = *in.Description
	}
	// An EXTERNAL key has no material until ImportKeyMaterial.
	var ver *keyrepo.VersionRecord
	if origin == originExternal {
		rec.State = keyrepo.StatePendingImport
		rec.CurrentVersion = 0
	} else {
		var vers []*keyrepo.VersionRecord
		var done context.CancelFunc
		var err error
		ctx, done, err = rsaOutsideBound(ctx, rec.KeySpec, func(ctx context.Context) (err error) {
			vers, err = s.firstMaterial(ctx, caller.AccountID, region, &rec, now)
			return err
		})
		defer done()
		if err != nil {
			return nil, err
		}
		ver = vers[0]
	}
	actions := []string{"kms:CreateKey"}
	if len(in.Tags) > 0 {
		actions = append(actions, "kms:TagResource")
	}
	gone, err := s.goneBefore(ctx, caller.AccountID, region)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, "CreateKey", func(tx store.Tx) error {
		if err := s.reauthorizeAccount(ctx, tx, &caller, "*", cond, actions...); err != nil {
			return err
		}
		if err := putJSON(tx, keyrepo.KeyKey(region, id), &rec); err != nil {
			return err
		}
		if ver != nil {
			if err := putJSON(tx, keyrepo.VersionKey(region, id, 1), ver); err != nil {
				return err
			}
		}
		return s.addAccountKey(tx, caller.AccountID, region, id, gone)
	})
	if err != nil {
		return nil, err
	}
	materialID := ""
	if ver != nil && spec == keys.SymmetricDefault {
		materialID = ver.MaterialID
	}
	md := s.metadata(&rec, materialID)
	audit.FromContext(ctx).AddKey(md.Arn)
	return &kmsapi.CreateKeyOutput{KeyMetadata: md}, nil
}

// checkPolicy accepts a policy document that is a JSON object within AWS's
// size limit; its characters have passed request validation
// (violations.policy). Evaluating it is the policy engine's job.
func checkPolicy(p string) error {
	if len(p) > maxPolicyBytes {
		return newErr(fault.LimitExceeded, "The key policy document exceeds the maximum size of %d bytes.", maxPolicyBytes)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(p), &doc); err != nil {
		return newErr(fault.MalformedPolicyDocument, "The key policy is not a valid JSON object.")
	}
	if _, ok := doc["Statement"]; !ok {
		return newErr(fault.MalformedPolicyDocument, "The key policy has no Statement.")
	}
	return nil
}

// metadata describes a key as a client sees it. Imported material past
// its ValidTo is already gone: the key shows PendingImport. A key
// PendingImport shows no CurrentKeyMaterialId, ExpirationModel or
// ValidTo, whichever of its materials is missing: one whose current
// material is still there but an older one is gone is no more usable
// than one without any.
func (s *Service) metadata(rec *keyrepo.KeyRecord, currentMaterialID string) *kmsapi.KeyMetadata {
	if s.repo.StateOf(rec) == keyrepo.StatePendingImport {
		r := *rec
		r.State, r.ExpirationModel, r.ValidTo = keyrepo.StatePendingImport, "", nil
		rec, currentMaterialID = &r, ""
	}
	m := &kmsapi.KeyMetadata{
		AWSAccountID:          rec.Account,
		KeyID:                 rec.ID,
		Arn:                   keyrepo.KeyARN(rec.Region, rec.Account, rec.ID),
		CreationDate:          kmsapi.Time(rec.Created),
		Enabled:               rec.State == keyrepo.StateEnabled,
		Description:           rec.Description,
		KeyUsage:              rec.KeyUsage,
		KeyState:              string(rec.State),
		Origin:                rec.Origin,
		KeyManager:            "CUSTOMER",
		CustomerMasterKeySpec: rec.KeySpec,
		KeySpec:               rec.KeySpec,
		CurrentKeyMaterialID:  currentMaterialID,
	}
	algs := keys.Algorithms(rec.KeySpec, rec.KeyUsage)
	m.EncryptionAlgorithms, m.SigningAlgorithms, m.MacAlgorithms = algs.Encryption, algs.Signing, algs.MAC
	m.KeyAgreementAlgorithms, m.EncapsulationAlgorithms = algs.KeyAgreement, algs.Encapsulation
	if rec.KeySpec != keys.SymmetricDefault {
		m.CurrentKeyMaterialID = ""
	}
	if rec.DeletionDate != nil {
		m.DeletionDate = kmsapi.NewTime(*rec.DeletionDate)
	}
	if rec.Origin == originExternal {
		m.ExpirationModel = rec.ExpirationModel
		if rec.ValidTo != nil {
			m.ValidTo = kmsapi.NewTime(*rec.ValidTo)
		}
	}
	if rec.MultiRegion {
		m.MultiRegion = true
		cfg := &kmsapi.MultiRegionConfiguration{
			MultiRegionKeyType: "REPLICA",
			PrimaryKey:         &kmsapi.MultiRegionKey{Arn: keyrepo.KeyARN(rec.PrimaryRegion, rec.Account, rec.ID), Region: rec.PrimaryRegion},
			ReplicaKeys:        []kmsapi.MultiRegionKey{},
		}
		if rec.IsPrimary() {
			cfg.MultiRegionKeyType = "PRIMARY"
		}
		for _, r := range rec.ReplicaRegions {
			cfg.ReplicaKeys = append(cfg.ReplicaKeys, kmsapi.MultiRegionKey{Arn: keyrepo.KeyARN(r, rec.Account, rec.ID), Region: r})
		}
		m.MultiRegionConfiguration = cfg
	}
	if rec.State == keyrepo.StatePendingReplicaDeletion {
		m.PendingDeletionWindowInDays = rec.PendingWindowInDays
	}
	return m
}

// firstMaterial makes the material of rec, a new key of account in
// region, once its turn to make an RSA key pair comes (rsaTurn), if it is
// an RSA key.
func (s *Service) firstMaterial(ctx context.Context, account, region string, rec *keyrepo.KeyRecord, now time.Time) ([]*keyrepo.VersionRecord, error) {
	release, err := s.rsaTurn(ctx, account, rec.KeySpec)
	if err != nil {
		return nil, err
	}
	defer release()
	vers, err := s.repo.NewVersion([]string{region}, rec, 1, now, "")
	if err != nil {
		return nil, s.storeErr("CreateKey", err)
	}
	return vers, nil
}

// DescribeKey returns a key's metadata, in any state.
func (s *Service) DescribeKey(ctx context.Context, caller Caller, in *kmsapi.DescribeKeyInput) (*kmsapi.DescribeKeyOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.grantTokens(in.GrantTokens)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	ctx = withGrantTokens(ctx, in.GrantTokens)
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.AnyForm|keyrepo.FormOtherAccount, "kms:DescribeKey", nil)
	if err != nil {
		return nil, err
	}
	if k, err = s.settled(ctx, k); err != nil {
		return nil, err
	}
	return &kmsapi.DescribeKeyOutput{KeyMetadata: s.metadata(&k.Rec, k.MaterialID())}, nil
}

// ListKeys lists the caller's keys in every state, ordered by key id.
func (s *Service) ListKeys(ctx context.Context, caller Caller, in *kmsapi.ListKeysInput) (*kmsapi.ListKeysOutput, error) {
	v := newViolations(ctx)
	v.paging(in.Limit, in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	pages := newListing("ListKeys", caller.AccountID, s.regionOf(caller))
	after, err := decodeMarker(in.Marker, pages)
	if err != nil {
		return nil, err
	}
	if err := s.authz.Account(&caller, "kms:ListKeys", "*", nil); err != nil {
		return nil, err
	}
	limit := pageLimit(in.Limit, 100, 1000)
	out := &kmsapi.ListKeysOutput{}
	err = s.view(ctx, "ListKeys", func(tx store.Tx) error {
		var err error
		out.Keys, out.NextMarker, err = scanPage(tx, pages, keyrepo.AcctKeyPrefix(caller.AccountID, s.regionOf(caller)), after, limit, func(id string, _ []byte) (kmsapi.KeyListEntry, bool, error) {
			gone, err := s.expiredInTx(tx, s.regionOf(caller), id)
			return kmsapi.KeyListEntry{KeyID: id, KeyArn: keyrepo.KeyARN(s.regionOf(caller), caller.AccountID, id)}, !gone, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	out.Truncated = out.NextMarker != ""
	return out, nil
}

// EnableKey moves a Disabled key to Enabled.
func (s *Service) EnableKey(ctx context.Context, caller Caller, in *kmsapi.KeyIDInput) (*struct{}, error) {
	return nil, s.setEnabled(ctx, caller, in, true)
}

// DisableKey moves an Enabled key to Disabled.
func (s *Service) DisableKey(ctx context.Context, caller Caller, in *kmsapi.KeyIDInput) (*struct{}, error) {
	return nil, s.setEnabled(ctx, caller, in, false)
}

func (s *Service) setEnabled(ctx context.Context, caller Caller, in *kmsapi.KeyIDInput, enable bool) error {
	if err := checkKeyID(ctx, in.KeyID); err != nil {
		return err
	}
	action := "DisableKey"
	if enable {
		action = "EnableKey"
	}
	var cond *authz.Conditions
	if !enable {
		cond = &authz.Conditions{IdleDays: s.idleDays}
	}
	_, err := s.mutateKey(ctx, caller, in.KeyID, action, cond, func(_ store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		// Enabling and disabling move between these two states only.
		if st := s.repo.StateOf(rec); st != keyrepo.StateEnabled && st != keyrepo.StateDisabled {
			return st.Err(arn)
		}
		if enable {
			rec.State = keyrepo.StateEnabled
		} else {
			rec.State = keyrepo.StateDisabled
		}
		return nil
	})
	return err
}

// ScheduleKeyDeletion puts a key in PendingDeletion for 7 to 30 days; when
// the date passes the key, its material and its aliases are deleted.
func (s *Service) ScheduleKeyDeletion(ctx context.Context, caller Caller, in *kmsapi.ScheduleKeyDeletionInput) (*kmsapi.ScheduleKeyDeletionOutput, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	v.intRange("pendingWindowInDays", in.PendingWindowInDays, 1, 365)
	if err := v.err(); err != nil {
		return nil, err
	}
	days := int32(defaultPendingWindow)
	if in.PendingWindowInDays != nil {
		days = *in.PendingWindowInDays
	}
	if days < 7 || days > 30 {
		return nil, newErr(fault.Validation, "PendingWindowInDays must be between 7 and 30")
	}
	var out kmsapi.ScheduleKeyDeletionOutput
	cond := &authz.Conditions{Extra: map[string]string{"kms:schedulekeydeletionpendingwindowindays": strconv.Itoa(int(days))}, IdleDays: s.idleDays}
	_, err := s.mutateKey(ctx, caller, in.KeyID, "ScheduleKeyDeletion", cond, func(tx store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		if rec.State == keyrepo.StatePendingDeletion || rec.State == keyrepo.StatePendingReplicaDeletion {
			return rec.State.Err(arn)
		}
		rec.PendingWindowInDays = days
		if rec.IsPrimary() && len(rec.ReplicaRegions) > 0 {
			// A primary outlives its replicas: its waiting period
			// starts when the last of them is deleted.
			if err := s.checkReplicasDeletable(tx, rec); err != nil {
				return err
			}
			rec.State = keyrepo.StatePendingReplicaDeletion
			out = kmsapi.ScheduleKeyDeletionOutput{KeyID: arn, KeyState: string(rec.State), PendingWindowInDays: days}
			return nil
		}
		date := s.clock().Add(time.Duration(days) * 24 * time.Hour)
		rec.State = keyrepo.StatePendingDeletion
		rec.DeletionDate = &date
		out = kmsapi.ScheduleKeyDeletionOutput{KeyID: arn, DeletionDate: kmsapi.NewTime(date), KeyState: string(keyrepo.StatePendingDeletion), PendingWindowInDays: days}
		return tx.Put(keyrepo.PendingDeletionKey(rec.Region, rec.ID), keyrepo.PendingDeletionValue(date, rec.Account))
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelKeyDeletion takes a key out of PendingDeletion; like AWS, it leaves
// the key Disabled.
func (s *Service) CancelKeyDeletion(ctx context.Context, caller Caller, in *kmsapi.KeyIDInput) (*kmsapi.CancelKeyDeletionOutput, error) {
	if err := checkKeyID(ctx, in.KeyID); err != nil {
		return nil, err
	}
	rec, err := s.mutateKey(ctx, caller, in.KeyID, "CancelKeyDeletion", nil, func(tx store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		if rec.State != keyrepo.StatePendingDeletion && rec.State != keyrepo.StatePendingReplicaDeletion {
			return newErr(fault.InvalidState, "%s is not pending deletion.", arn)
		}
		// A key comes back disabled, or pending import if it has no
		// key material (never imported, or deleted while it waited).
		rec.State = keyrepo.StateDisabled
		if rec.Origin == originExternal {
			has, err := s.hasMaterial(tx, rec)
			if err != nil {
				return err
			}
			if !has {
				rec.State = keyrepo.StatePendingImport
			}
		}
		rec.DeletionDate = nil
		rec.PendingWindowInDays = 0
		return tx.Delete(keyrepo.PendingDeletionKey(rec.Region, rec.ID))
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.CancelKeyDeletionOutput{KeyID: keyrepo.KeyARN(rec.Region, rec.Account, rec.ID)}, nil
}

// UpdateKeyDescription replaces a key's description.
func (s *Service) UpdateKeyDescription(ctx context.Context, caller Caller, in *kmsapi.UpdateKeyDescriptionInput) (*struct{}, error) {
	v := newViolations(ctx)
	v.keyID("keyId", in.KeyID)
	if in.Description == nil {
		v.add("Value null at 'description' failed to satisfy constraint: Member must not be null")
	}
	v.optStrLen("description", in.Description, 0, 8192)
	if err := v.err(); err != nil {
		return nil, err
	}
	_, err := s.mutateKey(ctx, caller, in.KeyID, "UpdateKeyDescription", nil, func(_ store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		if rec.State.PendingDeletion() {
			return rec.State.Err(arn)
		}
		rec.Description = *in.Description
		return nil
	})
	return nil, err
}

func checkKeyID(ctx context.Context, id string) error {
	v := newViolations(ctx)
	v.keyID("keyId", id)
	return v.err()
}

// mutateKey applies fn to the current record of the key ident names (a key
// id or key ARN) in one transaction, then drops the key from the cache.
// Unless action is empty, the caller must be authorized for "kms:"+action
// on the key first, and again on the record the transaction reads if what
// a decision reads of it changed meanwhile (keyrepo.Repo.AsRecorded): a
// caller whose access a change committed in between took away must not
// make a change that outlasts it. With action empty, fn must do the same
// for the authorization its caller made.
func (s *Service) mutateKey(ctx context.Context, caller Caller, ident, action string, cond *authz.Conditions, fn func(tx store.Tx, rec *keyrepo.KeyRecord, arn string) error) (*keyrepo.KeyRecord, error) {
	var k *keyrepo.Key
	var err error
	if action == "" { // authorized already by the caller of mutateKey
		k, err = s.resolve(ctx, caller, ident, keyrepo.IDOrARN)
	} else {
		k, err = s.useKey(ctx, &caller, ident, keyrepo.IDOrARN, "kms:"+action, cond)
	}
	if err != nil {
		return nil, err
	}
	// The change is judged on the key's regions as they are now (a
	// primary scheduled for deletion waits for no replica already gone).
	if _, err := s.settleReplicas(ctx, &k.Rec); err != nil {
		return nil, err
	}
	region, id, arn := k.Rec.Region, k.Rec.ID, k.ARN
	var rec keyrepo.KeyRecord
	err = s.update(ctx, action, func(tx store.Tx) error {
		rec = keyrepo.KeyRecord{}
		err := getJSON(tx, keyrepo.KeyKey(region, id), &rec)
		if errors.Is(err, store.ErrNotFound) || (err == nil && s.repo.Expired(&rec)) {
			return keyrepo.ErrKeyDoesNotExist(arn)
		}
		if err != nil {
			return err
		}
		if action != "" {
			if err := s.reauthorize(ctx, tx, &caller, "kms:"+action, k, &rec, cond); err != nil {
				return err
			}
		}
		if err := fn(tx, &rec, arn); err != nil {
			return err
		}
		return putJSON(tx, keyrepo.KeyKey(region, id), &rec)
	})
	// The regions of the key as it was read before, and as the
	// transaction found it: fn may write every region of a multi-Region
	// key (a rotation, syncReplicas), and one replicated in between is
	// in the second alone.
	s.invalidateKey(&k.Rec)
	if rec.ID != "" {
		s.invalidateKey(&rec)
	}
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// reauthorize authorizes caller for action on key k again, as the
// transaction tx of a change to it found its record, rec, if another call
// changed what a decision reads of it (its policy, the principals that
// binds, its tags) since caller was authorized on k: so a call authorized
// a moment before a change that takes the caller's access away cannot
// make a change that outlasts it (put itself back into the policy, give
// itself a grant or the tag a condition asks for), undoing what was
// answered as done.
//
// When ctx carries the caller's policies as tx reads them
// (WithPoliciesNow), the caller is authorized again in any case, with
// those: an identity policy deleted, or the caller's access key, since
// the caller was authenticated refuses the change too.
func (s *Service) reauthorize(ctx context.Context, tx store.Tx, caller *Caller, action string, k *keyrepo.Key, rec *keyrepo.KeyRecord, cond *authz.Conditions) error {
	now, changed := s.repo.AsRecorded(tx, k, rec)
	switch c, err := callerNow(ctx, tx, caller); {
	case err != nil:
		return err
	case c != nil:
		caller, changed = c, true
	}
	if !changed {
		return nil
	}
	return s.authz.Key(ctx, caller, action, now, cond)
}

// reauthorizeAccount is reauthorize for a change decided by identity
// policies alone (CreateKey): when ctx carries the caller's policies as
// tx reads them, the caller is authorized again with those for each of
// actions on resource.
func (s *Service) reauthorizeAccount(ctx context.Context, tx store.Tx, caller *Caller, resource string, cond *authz.Conditions, actions ...string) error {
	c, err := callerNow(ctx, tx, caller)
	if err != nil || c == nil {
		return err
	}
	for _, a := range actions {
		if err := s.authz.Account(c, a, resource, cond); err != nil {
			return err
		}
	}
	return nil
}

// callerNow is caller with the identity policies ctx's reader
// (WithPoliciesNow) reads in tx; nil when ctx carries none.
func callerNow(ctx context.Context, tx store.Tx, caller *Caller) (*Caller, error) {
	read, ok := ctx.Value(policiesNowKey{}).(func(store.Tx) ([]*policy.Policy, error))
	if !ok {
		return nil, nil
	}
	policies, err := read(tx)
	if err != nil {
		return nil, err
	}
	c := *caller
	c.Policies = policies
	return &c, nil
}

type policiesNowKey struct{}

// WithPoliciesNow returns ctx carrying read, which reads the identity
// policies of the call's caller in a transaction of the store, as they
// are then, or fails for a caller whose credential is gone: the changes
// to keys decide on the caller as their own transaction reads it
// (reauthorize).
func WithPoliciesNow(ctx context.Context, read func(tx store.Tx) ([]*policy.Policy, error)) context.Context {
	return context.WithValue(ctx, policiesNowKey{}, read)
}

// invalidateKey drops a key from the cache once a change to it is
// committed: every region of a multi-Region key, since a change to the
// primary may change its replicas.
func (s *Service) invalidateKey(rec *keyrepo.KeyRecord) {
	s.repo.Invalidate(rec.Region, rec.ID, "")
	if rec.MultiRegion {
		for _, r := range rec.Regions() {
			s.repo.Invalidate(r, rec.ID, "")
		}
	}
}

// expired reports whether a key's deletion date has passed: it is gone for
// every purpose even before the sweeper removes its records.
func (s *Service) expired(rec *keyrepo.KeyRecord) bool {
	return rec.State == keyrepo.StatePendingDeletion && rec.DeletionDate != nil && !s.now().Before(*rec.DeletionDate)
}

// expiredInTx reads a key's record and reports whether it is missing or
// expired, for lists that must not show such keys.
func (s *Service) expiredInTx(tx store.Tx, region, id string) (bool, error) {
	var rec keyrepo.KeyRecord
	if err := getJSON(tx, keyrepo.KeyKey(region, id), &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return true, nil
		}
		return false, err
	}
	return s.repo.Expired(&rec), nil
}

// pastDeletionInTx reports whether key keyID of region is past its
// deletion date, read in tx: its aliases and grants are gone with it from
// that instant, before the sweeper removes their records. Unlike
// expiredInTx, it reports a key that is not there as not past its date:
// what names such a key is left as it is.
func (s *Service) pastDeletionInTx(tx store.Tx, region, keyID string) (bool, error) {
	var rec keyrepo.KeyRecord
	err := getJSON(tx, keyrepo.KeyKey(region, keyID), &rec)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return s.repo.Expired(&rec), nil
}

// addAccountKey indexes and counts a new key of account in region, in tx,
// unless the account has its quota of keys there (Config.KeyQuota). The
// account's keys past their deletion date do not count: they are gone,
// though the maintenance round has not yet removed them and counted them
// out. They are looked for only when the count has reached the quota:
// gone is what goneBefore found of them before tx began, and those of
// them still there are counted; nil (not looked for then) looks for them
// in tx.
func (s *Service) addAccountKey(tx store.Tx, account, region, id string, gone []string) error {
	n, err := keyrepo.KeyCount(tx, account, region)
	if err != nil {
		return err
	}
	counted := 0
	if n >= s.keyQuota {
		if gone == nil {
			if gone, err = s.keysPastDeletion(tx, account, region); err != nil {
				return err
			}
		}
		// A key past its deletion date stays so until it is removed,
		// and counted out with its index record.
		for _, g := range gone {
			if _, err := tx.Get(keyrepo.AcctKeyKey(account, region, g)); err == nil {
				counted++
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
	}
	return keyrepo.AddAccountKey(tx, account, region, id, s.keyQuota, counted)
}

// goneBefore returns, when account has reached its key quota in region,
// the ids of its keys there past their deletion date, for addAccountKey;
// nil when it has not (or its count is not yet recorded). They are looked
// for in a read-only transaction before the one that adds the key, so that
// looking, which reads the Region's index of keys pending deletion, does
// not hold the store's write lock: a caller at its quota may repeat a
// refused CreateKey at will.
func (s *Service) goneBefore(ctx context.Context, account, region string) ([]string, error) {
	var gone []string
	err := s.view(ctx, "CountKeys", func(tx store.Tx) error {
		gone = nil
		b, err := tx.Get(keyrepo.KeyCountKey(account, region))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if n, err := strconv.Atoi(string(b)); err != nil || n < s.keyQuota {
			return nil // a corrupt count is left to the transaction to report
		}
		gone, err = s.keysPastDeletion(tx, account, region)
		return err
	})
	return gone, err
}

// keysPastDeletion returns, read in tx, the ids of account's keys in
// region whose deletion date has passed and whose records are still
// there; an empty slice, not nil, when there are none. A record that does
// not read is left out.
func (s *Service) keysPastDeletion(tx store.Tx, account, region string) ([]string, error) {
	prefix := keyrepo.PendingDeletionKey(region, "")
	now := s.now()
	ids := []string{}
	err := tx.Scan(prefix, nil, func(k, index []byte) (bool, error) {
		// Another account's key, or one whose date has not come, is
		// passed over without reading its key record.
		if date, acct, ok := keyrepo.PendingDeletionOf(index); ok && (acct != account || now.Before(date)) {
			return true, nil
		}
		var rec keyrepo.KeyRecord
		err := getJSON(tx, keyrepo.KeyKey(region, string(k[len(prefix):])), &rec)
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrUnauthenticated):
			return true, nil
		case err != nil:
			return false, err
		}
		if rec.Account == account && s.repo.Expired(&rec) {
			ids = append(ids, rec.ID)
		}
		return true, nil
	})
	return ids, err
}

// DeleteExpiredKeys deletes every key whose deletion date has passed, with
// its material and aliases, and returns how many it deleted, each recorded
// as a DeleteKey service event; while the trail cannot record, none
// (serviceevents.go). The server calls it periodically; tests call it
// after moving the clock.
func (s *Service) DeleteExpiredKeys(ctx context.Context) (int, error) {
	if err := s.trailErr(); err != nil {
		return 0, fmt.Errorf("keys past their deletion date not deleted: %w", err)
	}
	now := s.now()
	dates := map[keyRef]time.Time{}
	// A key whose index record dates its deletion after now is not read.
	notDue := func(index []byte) bool {
		date, _, ok := keyrepo.PendingDeletionOf(index)
		return ok && now.Before(date)
	}
	due, err := s.scanIndexOf(ctx, keyrepo.PendingDeletionPrefix, notDue, func(_ keyRef, _ []byte, rec *keyrepo.KeyRecord) bool {
		if rec.State == keyrepo.StatePendingDeletion && rec.DeletionDate != nil && !now.Before(*rec.DeletionDate) {
			dates[keyRef{rec.Region, rec.ID}] = *rec.DeletionDate
			return true
		}
		return false
	}, func() { clear(dates) })
	if err != nil {
		return 0, err
	}
	// Oldest first: a primary waiting for its replicas starts its own
	// waiting period from the date of the last deleted (forgetReplica).
	slices.SortStableFunc(due, func(a, b keyRef) int { return dates[a].Compare(dates[b]) })
	deleted := 0
	var errs []error
	for _, ref := range due {
		done, err := s.deleteKey(ctx, ref.region, ref.id, now)
		if done {
			deleted++
		}
		if err != nil {
			// One key that cannot be deleted must not keep the others
			// (and their material) past their date.
			if ctx.Err() != nil || errors.Is(err, errTrailDown) {
				return deleted, errors.Join(append(errs, err)...)
			}
			s.log.Error("deleting a key past its deletion date", "keyId", ref.id, "region", ref.region, "err", err)
			errs = append(errs, fmt.Errorf("key %s in %s: %w", ref.id, ref.region, err))
		}
	}
	return deleted, errors.Join(errs...)
}

// deleteKey deletes a key of region whose deletion date has passed, with
// its material, aliases and grants, and records a DeleteKey service event
// (serviceevents.go); while the trail cannot record, it deletes nothing.
// A multi-Region key's other regions forget it in the same transaction; a
// primary that waited for its last replica starts its own waiting period
// then. It reports whether it deleted the key: of two that race for a key
// (the maintenance round and a call's settleReplicas, or two nodes), one
// deletes it and records the event; the other finds it gone.
func (s *Service) deleteKey(ctx context.Context, region, id string, now time.Time) (bool, error) {
	if err := s.trailErr(); err != nil {
		return false, err
	}
	var account string
	var aliases, others []string
	work := new(audit.Work)
	err := s.update(audit.NewWorkContext(ctx, work), "DeleteKey", func(tx store.Tx) error {
		account, aliases, others, work.Events = "", aliases[:0], others[:0], work.Events[:0]
		var rec keyrepo.KeyRecord
		if err := getJSON(tx, keyrepo.KeyKey(region, id), &rec); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return tx.Delete(keyrepo.PendingDeletionKey(region, id))
			}
			return err
		}
		if rec.State != keyrepo.StatePendingDeletion || rec.DeletionDate == nil || now.Before(*rec.DeletionDate) {
			return nil // cancelled in the meantime
		}
		account = rec.Account
		var doomed [][]byte
		collect := func(k, _ []byte) (bool, error) { doomed = append(doomed, append([]byte(nil), k...)); return true, nil }
		if err := tx.Scan(keyrepo.VersionPrefix(region, id), nil, collect); err != nil {
			return err
		}
		n := len(doomed)
		if err := tx.Scan(keyrepo.KeyAliasPrefix(region, id), nil, collect); err != nil {
			return err
		}
		for _, k := range doomed[n:] {
			name := string(k[len(keyrepo.KeyAliasPrefix(region, id)):])
			aliases = append(aliases, name)
			doomed = append(doomed, keyrepo.AliasKey(account, region, name))
		}
		err := tx.Scan(keyrepo.GrantPrefix(region, id), nil, func(k, v []byte) (bool, error) {
			var g keyrepo.GrantRecord
			if err := keyrepo.UnmarshalRecord(v, &g); err != nil {
				return false, err
			}
			doomed = append(doomed, append([]byte(nil), k...))
			if g.Retiring != "" {
				doomed = append(doomed, keyrepo.RetirableKey(g.Retiring, region, id, g.ID))
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		if err := tx.Scan(keyrepo.GrantNamesPrefix(region, id), nil, collect); err != nil {
			return err
		}
		doomed = append(doomed, keyrepo.GrantCountKey(region, id))
		doomed = append(doomed, keyrepo.RotationKey(region, id), keyrepo.ImportExpiryKey(region, id))
		doomed = append(doomed, keyrepo.KeyKey(region, id), keyrepo.PendingDeletionKey(region, id))
		if err := keyrepo.RemoveAccountKey(tx, account, region, id); err != nil {
			return err
		}
		for _, k := range doomed {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		// Its material stays in the store's files until a compaction.
		if err := store.NoteErased(tx); err != nil {
			return err
		}
		if err := addServiceEvent(work, now, "DeleteKey", region, account, id, nil); err != nil {
			return err
		}
		if rec.MultiRegion {
			others = slices.DeleteFunc(rec.Regions(), func(r string) bool { return r == region })
			return s.forgetReplica(tx, &rec, others)
		}
		return nil
	})
	s.repo.Invalidate(region, id, account, aliases...)
	for _, r := range others {
		s.repo.Invalidate(r, id, "")
	}
	if err != nil || account == "" {
		return false, err
	}
	s.log.Info("key deleted after its waiting period", "keyId", id, "region", region, "account", account, "aliases", len(aliases))
	return true, s.recordServiceEvents(ctx, work)
}

// forgetReplica removes a deleted multi-Region key's region from the
// records of its other regions. A primary that waited for its replicas
// (PendingReplicaDeletion) and has none left is then scheduled for
// deletion after its own waiting period, from the deleted key's deletion
// date: the instant it was gone, whenever its records are removed (by
// the maintenance round or by the first call that reads the key's
// regions, settleReplicas), so that every reader sees the same date.
func (s *Service) forgetReplica(tx store.Tx, gone *keyrepo.KeyRecord, others []string) error {
	for _, r := range others {
		var rec keyrepo.KeyRecord
		if err := getJSON(tx, keyrepo.KeyKey(r, gone.ID), &rec); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			return err
		}
		rec.ReplicaRegions = slices.DeleteFunc(rec.ReplicaRegions, func(x string) bool { return x == gone.Region })
		if rec.State == keyrepo.StatePendingReplicaDeletion && len(rec.ReplicaRegions) == 0 {
			date := gone.DeletionDate.UTC().Truncate(time.Millisecond).Add(time.Duration(rec.PendingWindowInDays) * 24 * time.Hour)
			rec.State, rec.DeletionDate = keyrepo.StatePendingDeletion, &date
			if err := tx.Put(keyrepo.PendingDeletionKey(r, rec.ID), keyrepo.PendingDeletionValue(date, rec.Account)); err != nil {
				return err
			}
		}
		if err := putJSON(tx, keyrepo.KeyKey(r, rec.ID), &rec); err != nil {
			return err
		}
	}
	return nil
}
