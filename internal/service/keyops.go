package service

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/openkms/kms/internal/authz"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"

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
	var v violations
	v.optStrLen("policy", in.Policy, 1, 131072)
	v.optStrLen("description", in.Description, 0, 8192)
	v.enum("keyUsage", in.KeyUsage, keyUsageEnum)
	v.enum("customerMasterKeySpec", in.CustomerMasterKeySpec, customerMasterKeySpecEnum)
	v.enum("keySpec", in.KeySpec, keySpecEnum)
	v.enum("origin", in.Origin, originEnum)
	v.optStrLen("customKeyStoreId", in.CustomKeyStoreID, 1, 64)
	v.optStrLen("xksKeyId", in.XksKeyID, 1, 128)
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
	if in.MultiRegion {
		return nil, newErr(fault.UnsupportedOperation, "Multi-Region keys are not supported by this server.")
	}
	bypass := "false"
	if in.BypassPolicyLockoutSafetyCheck {
		bypass = "true"
	}
	cond := &authz.Conditions{Tags: in.Tags, Extra: map[string]string{
		"kms:keyspec": spec, "kms:keyusage": usage, "kms:keyorigin": origin, "kms:multiregion": "false",
		"kms:bypasspolicylockoutsafetycheck": bypass,
	}}
	if err := s.authz.Account(&caller, "kms:CreateKey", "*", cond); err != nil {
		return nil, err
	}
	if len(in.Tags) > 0 {
		if err := s.authz.Account(&caller, "kms:TagResource", "*", cond); err != nil {
			return nil, err
		}
	}
	policy := defaultPolicy(caller.AccountID)
	if in.Policy != nil {
		if _, err := s.parseKeyPolicy(ctx, &caller, *in.Policy, "", in.BypassPolicyLockoutSafetyCheck); err != nil {
			return nil, err
		}
		policy = *in.Policy
	}
	if err := checkTags(nil, in.Tags); err != nil {
		return nil, err
	}
	now := s.clock()
	id := keys.NewID().String()
	rec := keyrepo.KeyRecord{
		V: keyrepo.RecordVersion, ID: id, Account: caller.AccountID, Created: now,
		KeySpec: spec, KeyUsage: usage, Origin: origin, State: keyrepo.StateEnabled,
		Policy: policy, Tags: mergeTags(nil, in.Tags), CurrentVersion: 1, UsageTrackedSince: &now,
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
		var err error
		if ver, err = s.repo.NewVersion(id, spec, 1, now, ""); err != nil {
			return nil, s.storeErr("CreateKey", err)
		}
	}
	err := s.update(ctx, "CreateKey", func(tx store.Tx) error {
		if err := putJSON(tx, keyrepo.KeyKey(id), &rec); err != nil {
			return err
		}
		if ver != nil {
			if err := putJSON(tx, keyrepo.VersionKey(id, 1), ver); err != nil {
				return err
			}
		}
		return tx.Put(keyrepo.AcctKeyKey(caller.AccountID, id), nil)
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
// size and character limits. Evaluating it is the policy engine's job.
func checkPolicy(p string) error {
	if len(p) > maxPolicyBytes {
		return newErr(fault.LimitExceeded, "The key policy document exceeds the maximum size of %d bytes.", maxPolicyBytes)
	}
	for _, r := range p {
		if !(r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xff)) {
			return newErr(fault.MalformedPolicyDocument, "The key policy contains a character that is not allowed: %q.", r)
		}
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
// its ValidTo is already gone: the key shows PendingImport.
func (s *Service) metadata(rec *keyrepo.KeyRecord, currentMaterialID string) *kmsapi.KeyMetadata {
	if s.repo.StateOf(rec) != rec.State {
		r := *rec
		r.State, r.ExpirationModel, r.ValidTo = keyrepo.StatePendingImport, "", nil
		rec, currentMaterialID = &r, ""
	}
	m := &kmsapi.KeyMetadata{
		AWSAccountID:          rec.Account,
		KeyID:                 rec.ID,
		Arn:                   s.repo.KeyARN(rec.Account, rec.ID),
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
	m.EncryptionAlgorithms, m.SigningAlgorithms, m.MacAlgorithms, m.KeyAgreementAlgorithms = keys.Algorithms(rec.KeySpec, rec.KeyUsage)
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
	return m
}

// DescribeKey returns a key's metadata, in any state.
func (s *Service) DescribeKey(ctx context.Context, caller Caller, in *kmsapi.DescribeKeyInput) (*kmsapi.DescribeKeyOutput, error) {
	var v violations
	v.keyID("keyId", in.KeyID)
	v.grantTokens(in.GrantTokens)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := checkGrantTokens(in.GrantTokens); err != nil {
		return nil, err
	}
	k, err := s.useKey(ctx, &caller, in.KeyID, keyrepo.AnyForm|keyrepo.FormOtherAccount, "kms:DescribeKey", nil)
	if err != nil {
		return nil, err
	}
	return &kmsapi.DescribeKeyOutput{KeyMetadata: s.metadata(&k.Rec, k.MaterialID())}, nil
}

// ListKeys lists the caller's keys in every state, ordered by key id.
func (s *Service) ListKeys(ctx context.Context, caller Caller, in *kmsapi.ListKeysInput) (*kmsapi.ListKeysOutput, error) {
	var v violations
	v.paging(in.Limit, in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	after, err := decodeMarker(in.Marker)
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
		out.Keys, out.NextMarker, err = scanPage(tx, keyrepo.AcctKeyPrefix(caller.AccountID), after, limit, func(id string, _ []byte) (kmsapi.KeyListEntry, bool, error) {
			gone, err := s.expiredInTx(tx, id)
			return kmsapi.KeyListEntry{KeyID: id, KeyArn: s.repo.KeyARN(caller.AccountID, id)}, !gone, err
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
	if err := checkKeyID(in.KeyID); err != nil {
		return err
	}
	action := "DisableKey"
	if enable {
		action = "EnableKey"
	}
	_, err := s.mutateKey(ctx, caller, in.KeyID, action, nil, func(_ store.Tx, rec *keyrepo.KeyRecord, arn string) error {
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
	var v violations
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
	cond := &authz.Conditions{Extra: map[string]string{"kms:schedulekeydeletionpendingwindowindays": strconv.Itoa(int(days))}}
	_, err := s.mutateKey(ctx, caller, in.KeyID, "ScheduleKeyDeletion", cond, func(tx store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		if rec.State == keyrepo.StatePendingDeletion {
			return keyrepo.StatePendingDeletion.Err(arn)
		}
		date := s.clock().Add(time.Duration(days) * 24 * time.Hour)
		rec.State = keyrepo.StatePendingDeletion
		rec.DeletionDate = &date
		rec.PendingWindowInDays = days
		out = kmsapi.ScheduleKeyDeletionOutput{KeyID: arn, DeletionDate: kmsapi.Time(date), KeyState: string(keyrepo.StatePendingDeletion), PendingWindowInDays: days}
		return tx.Put(keyrepo.PendingDeletionKey(rec.ID), nil)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelKeyDeletion takes a key out of PendingDeletion; like AWS, it leaves
// the key Disabled.
func (s *Service) CancelKeyDeletion(ctx context.Context, caller Caller, in *kmsapi.KeyIDInput) (*kmsapi.CancelKeyDeletionOutput, error) {
	if err := checkKeyID(in.KeyID); err != nil {
		return nil, err
	}
	rec, err := s.mutateKey(ctx, caller, in.KeyID, "CancelKeyDeletion", nil, func(tx store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		if rec.State != keyrepo.StatePendingDeletion {
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
		return tx.Delete(keyrepo.PendingDeletionKey(rec.ID))
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.CancelKeyDeletionOutput{KeyID: s.repo.KeyARN(rec.Account, rec.ID)}, nil
}

// UpdateKeyDescription replaces a key's description.
func (s *Service) UpdateKeyDescription(ctx context.Context, caller Caller, in *kmsapi.UpdateKeyDescriptionInput) (*struct{}, error) {
	var v violations
	v.keyID("keyId", in.KeyID)
	if in.Description == nil {
		v.add("Value null at 'description' failed to satisfy constraint: Member must not be null")
	}
	v.optStrLen("description", in.Description, 0, 8192)
	if err := v.err(); err != nil {
		return nil, err
	}
	_, err := s.mutateKey(ctx, caller, in.KeyID, "UpdateKeyDescription", nil, func(_ store.Tx, rec *keyrepo.KeyRecord, arn string) error {
		if rec.State == keyrepo.StatePendingDeletion {
			return keyrepo.StatePendingDeletion.Err(arn)
		}
		rec.Description = *in.Description
		return nil
	})
	return nil, err
}

func checkKeyID(id string) error {
	var v violations
	v.keyID("keyId", id)
	return v.err()
}

// mutateKey applies fn to the current record of the key ident names (a key
// id or key ARN) in one transaction, then drops the key from the cache.
// Unless action is empty, the caller must be authorized for "kms:"+action
// on the key first.
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
	id, arn := k.Rec.ID, k.ARN
	var rec keyrepo.KeyRecord
	err = s.update(ctx, action, func(tx store.Tx) error {
		rec = keyrepo.KeyRecord{}
		err := getJSON(tx, keyrepo.KeyKey(id), &rec)
		if errors.Is(err, store.ErrNotFound) || (err == nil && s.repo.Expired(&rec)) {
			return keyrepo.ErrKeyDoesNotExist(arn)
		}
		if err != nil {
			return err
		}
		if err := fn(tx, &rec, arn); err != nil {
			return err
		}
		return putJSON(tx, keyrepo.KeyKey(id), &rec)
	})
	s.repo.Invalidate(id, "")
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// expired reports whether a key's deletion date has passed: it is gone for
// every purpose even before the sweeper removes its records.
func (s *Service) expired(rec *keyrepo.KeyRecord) bool {
	return rec.State == keyrepo.StatePendingDeletion && rec.DeletionDate != nil && !s.now().Before(*rec.DeletionDate)
}

// expiredInTx reads a key's record and reports whether it is missing or
// expired, for lists that must not show such keys.
func (s *Service) expiredInTx(tx store.Tx, id string) (bool, error) {
	var rec keyrepo.KeyRecord
	if err := getJSON(tx, keyrepo.KeyKey(id), &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return true, nil
		}
		return false, err
	}
	return s.repo.Expired(&rec), nil
}

// DeleteExpiredKeys deletes every key whose deletion date has passed, with
// its material and aliases, and returns how many it deleted. The server
// calls it periodically; tests call it after moving the clock.
func (s *Service) DeleteExpiredKeys(ctx context.Context) (int, error) {
	var due []string
	now := s.now()
	err := s.view(ctx, "DeleteExpiredKeys", func(tx store.Tx) error {
		due = due[:0]
		return tx.Scan(keyrepo.PendingDeletionPrefix, nil, func(k, _ []byte) (bool, error) {
			id := string(k[len(keyrepo.PendingDeletionPrefix):])
			var rec keyrepo.KeyRecord
			if err := getJSON(tx, keyrepo.KeyKey(id), &rec); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return true, nil
				}
				return false, err
			}
			if rec.State == keyrepo.StatePendingDeletion && rec.DeletionDate != nil && !now.Before(*rec.DeletionDate) {
				due = append(due, id)
			}
			return true, nil
		})
	})
	if err != nil {
		return 0, err
	}
	deleted := 0
	for _, id := range due {
		if err := s.deleteKey(ctx, id, now); err != nil {
			return deleted, err
		}
		deleted++
	}
	return deleted, nil
}

func (s *Service) deleteKey(ctx context.Context, id string, now time.Time) error {
	var account string
	var aliases []string
	err := s.update(ctx, "DeleteKey", func(tx store.Tx) error {
		aliases = aliases[:0]
		var rec keyrepo.KeyRecord
		if err := getJSON(tx, keyrepo.KeyKey(id), &rec); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return tx.Delete(keyrepo.PendingDeletionKey(id))
			}
			return err
		}
		if rec.State != keyrepo.StatePendingDeletion || rec.DeletionDate == nil || now.Before(*rec.DeletionDate) {
			return nil // cancelled in the meantime
		}
		account = rec.Account
		var doomed [][]byte
		collect := func(k, _ []byte) (bool, error) { doomed = append(doomed, append([]byte(nil), k...)); return true, nil }
		if err := tx.Scan(keyrepo.VersionPrefix(id), nil, collect); err != nil {
			return err
		}
		n := len(doomed)
		if err := tx.Scan(keyrepo.KeyAliasPrefix(id), nil, collect); err != nil {
			return err
		}
		for _, k := range doomed[n:] {
			name := string(k[len(keyrepo.KeyAliasPrefix(id)):])
			aliases = append(aliases, name)
			doomed = append(doomed, keyrepo.AliasKey(account, name))
		}
		err := tx.Scan(keyrepo.GrantPrefix(id), nil, func(k, v []byte) (bool, error) {
			var g keyrepo.GrantRecord
			if err := keyrepo.UnmarshalRecord(v, &g); err != nil {
				return false, err
			}
			doomed = append(doomed, append([]byte(nil), k...))
			if g.Retiring != "" {
				doomed = append(doomed, keyrepo.RetirableKey(g.Retiring, id, g.ID))
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		doomed = append(doomed, keyrepo.RotationKey(id), keyrepo.ImportExpiryKey(id))
		doomed = append(doomed, keyrepo.KeyKey(id), keyrepo.AcctKeyKey(account, id), keyrepo.PendingDeletionKey(id))
		for _, k := range doomed {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	s.repo.Invalidate(id, account, aliases...)
	if err == nil && account != "" {
		s.log.Info("key deleted after its waiting period", "keyId", id, "account", account, "aliases", len(aliases))
	}
	return err
}
