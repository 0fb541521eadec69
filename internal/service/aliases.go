package service

import (
	"context"
	"errors"
	"hash/fnv"
	"strings"
	"sync"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/store"
)

const maxAliasesPerKey = 50

// checkAliasName validates an alias name as AWS does (reference §4.3),
// and for CreateAlias and UpdateAlias (target not nil) the TargetKeyId
// beside it: AWS's request validation reports the violations of both.
func checkAliasName(ctx context.Context, name string, target *string) error {
	v := newViolations(ctx)
	if v.requiredGiven("aliasName", name) {
		v.patterned("aliasName", name, 1, 256, aliasNamePattern, aliasNamePattern.String())
	}
	if target != nil {
		v.keyID("targetKeyId", *target)
	}
	if err := v.err(); err != nil {
		return err
	}
	if !strings.HasPrefix(name, "alias/") {
		return newErr(fault.Validation, `Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html`)
	}
	if len(name) == len("alias/") || strings.Contains(name, ":") {
		return newErr(fault.Validation, "%s contains invalid characters for an alias", name)
	}
	if strings.HasPrefix(name, "alias/aws/") {
		return &fault.Error{Code: fault.NotAuthorized}
	}
	return nil
}

// aliasTarget resolves CreateAlias/UpdateAlias's TargetKeyId, which must
// name a key by id or ARN, not an alias.
func (s *Service) aliasTarget(ctx context.Context, caller Caller, target string) (*keyrepo.Key, error) {
	v := newViolations(ctx)
	v.keyID("targetKeyId", target)
	if err := v.err(); err != nil {
		return nil, err
	}
	if strings.HasPrefix(target, "alias/") || strings.Contains(target, ":alias/") {
		return nil, newErr(fault.Validation, "Aliases must refer to keys. Not aliases")
	}
	return s.resolve(ctx, caller, target, keyrepo.IDOrARN)
}

// aliasTargetUsable refuses a target pending deletion. It is called once
// the caller is authorized on the target: before, the state would tell a
// caller without permission what it is.
func aliasTargetUsable(k *keyrepo.Key) error {
	if k.Rec.State.PendingDeletion() {
		return k.Rec.State.Err(k.ARN)
	}
	return nil
}

// authorizeAliasChange checks a CreateAlias or UpdateAlias (action) of
// in, and authorizes caller for it on the alias and on the key it is to
// point at, which it returns.
func (s *Service) authorizeAliasChange(ctx context.Context, caller *Caller, action string, in *kmsapi.AliasInput) (*keyrepo.Key, error) {
	if err := checkAliasName(ctx, in.AliasName, &in.TargetKeyID); err != nil {
		return nil, err
	}
	k, err := s.aliasTarget(ctx, *caller, in.TargetKeyID)
	if err != nil {
		return nil, err
	}
	if err := s.authz.Account(caller, action, keyrepo.AliasARN(s.regionOf(*caller), caller.AccountID, in.AliasName), nil); err != nil {
		return nil, err
	}
	if err := s.authz.Key(ctx, caller, action, k, nil); err != nil {
		return nil, err
	}
	return k, aliasTargetUsable(k)
}

// CreateAlias gives a key a new alias name.
func (s *Service) CreateAlias(ctx context.Context, caller Caller, in *kmsapi.AliasInput) (*struct{}, error) {
	k, err := s.authorizeAliasChange(ctx, &caller, "kms:CreateAlias", in)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	err = s.update(ctx, "CreateAlias", func(tx store.Tx) error {
		var old keyrepo.AliasRecord
		if err := getJSON(tx, keyrepo.AliasKey(caller.AccountID, s.regionOf(caller), in.AliasName), &old); err == nil {
			gone, err := s.pastDeletionInTx(tx, s.regionOf(caller), old.KeyID)
			if err != nil {
				return err
			}
			if !gone {
				return newErr(fault.AlreadyExists, "An alias with the name %s already exists", keyrepo.AliasARN(s.regionOf(caller), caller.AccountID, in.AliasName))
			}
			// The alias went with its key: the sweeper, which deletes
			// the aliases the key's index names, must not take the
			// new one.
			if err := tx.Delete(keyrepo.KeyAliasKey(s.regionOf(caller), old.KeyID, in.AliasName)); err != nil {
				return err
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := s.reauthorizeAccount(ctx, tx, &caller, keyrepo.AliasARN(s.regionOf(caller), caller.AccountID, in.AliasName), nil, "kms:CreateAlias"); err != nil {
			return err
		}
		if err := s.checkTargetInTx(ctx, tx, &caller, "kms:CreateAlias", k); err != nil {
			return err
		}
		if err := s.checkAliasLimit(tx, k); err != nil {
			return err
		}
		rec := keyrepo.AliasRecord{V: keyrepo.RecordVersion, Name: in.AliasName, KeyID: k.Rec.ID, Created: now, Updated: now}
		if err := putJSON(tx, keyrepo.AliasKey(caller.AccountID, s.regionOf(caller), in.AliasName), &rec); err != nil {
			return err
		}
		return tx.Put(keyrepo.KeyAliasKey(k.Rec.Region, k.Rec.ID, in.AliasName), nil)
	})
	s.repo.Invalidate(s.regionOf(caller), "", caller.AccountID, in.AliasName)
	return nil, err
}

// errAliasNotFound is AWS's NotFound for an alias name of region.
func errAliasNotFound(region, account, name string) error {
	return newErr(fault.NotFound, "Alias %s is not found.", keyrepo.AliasARN(region, account, name))
}

// checkTargetInTx re-reads an alias target inside the transaction, so that a
// key scheduled for deletion meanwhile is refused, and the caller is
// judged again for action on it (reauthorize).
func (s *Service) checkTargetInTx(ctx context.Context, tx store.Tx, caller *Caller, action string, k *keyrepo.Key) error {
	var rec keyrepo.KeyRecord
	if err := getJSON(tx, keyrepo.KeyKey(k.Rec.Region, k.Rec.ID), &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return keyrepo.ErrKeyDoesNotExist(k.ARN)
		}
		return err
	}
	if err := s.reauthorize(ctx, tx, caller, action, k, &rec, nil); err != nil {
		return err
	}
	if rec.State.PendingDeletion() {
		return rec.State.Err(k.ARN)
	}
	return nil
}

// checkAliasLimit refuses a new alias for a key that has the most it may.
func (s *Service) checkAliasLimit(tx store.Tx, k *keyrepo.Key) error {
	n := 0
	if err := tx.Scan(keyrepo.KeyAliasPrefix(k.Rec.Region, k.Rec.ID), nil, func(_, _ []byte) (bool, error) { n++; return true, nil }); err != nil {
		return err
	}
	if n >= maxAliasesPerKey {
		return newErr(fault.LimitExceeded, "The key %s already has the maximum of %d aliases.", k.ARN, maxAliasesPerKey)
	}
	return nil
}

// errAliasMoved is returned by a change of an alias whose target changed
// after the caller was authorized against it, again and again
// (aliasAttempts).
var errAliasMoved = newErr(fault.Internal, "The alias changed while the request was processed. Try the request again.")

// aliasAttempts bounds how often changeAlias authorizes a change of an
// alias again after the alias moved in between. Changes of one alias on
// one node take turns (aliasLock), so only another node's can move it
// in between; each attempt lost is such a change committed, so calls
// that race for one alias all go through, as on AWS, unless that many
// others overtake one.
const aliasAttempts = 8

// aliasLock is the lock that the changes of alias name of account in
// region on this node take turns under: one of a few, shared by the
// aliases whose names hash alike.
func (s *Service) aliasLock(account, region, name string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(account + "/" + region + "/" + name))
	return &s.aliasLocks[h.Sum32()%uint32(len(s.aliasLocks))]
}

// changeAlias authorizes caller for action on the key alias name points
// at now (authorizeAliasTarget), then runs change in a transaction with
// the id of that key, which change must find the alias still pointing at
// or fail with errAliasMoved. An alias moved in between is authorized
// again on its new key, and the change tried again: the call is judged as
// if it came after the move. The cache drops the alias after each try.
func (s *Service) changeAlias(ctx context.Context, caller *Caller, op, name, newTarget string, change func(tx store.Tx, oldID string) error) error {
	action := "kms:" + op
	l := s.aliasLock(caller.AccountID, s.regionOf(*caller), name)
	l.Lock()
	defer l.Unlock()
	for attempt := 1; ; attempt++ {
		oldID, old, err := s.authorizeAliasTarget(ctx, caller, action, name, newTarget)
		if err != nil {
			return err
		}
		err = s.update(ctx, op, func(tx store.Tx) error {
			// Judged again as the transaction reads the caller and the
			// key the alias leaves (reauthorize).
			if err := s.reauthorizeAccount(ctx, tx, caller, keyrepo.AliasARN(s.regionOf(*caller), caller.AccountID, name), nil, action); err != nil {
				return err
			}
			if old != nil {
				var rec keyrepo.KeyRecord
				switch err := getJSON(tx, keyrepo.KeyKey(old.Rec.Region, old.Rec.ID), &rec); {
				case errors.Is(err, store.ErrNotFound):
				case err != nil:
					return err
				default:
					if err := s.reauthorize(ctx, tx, caller, action, old, &rec, nil); err != nil {
						return err
					}
				}
			}
			return change(tx, oldID)
		})
		s.repo.Invalidate(s.regionOf(*caller), "", caller.AccountID, name)
		if err != errAliasMoved || attempt == aliasAttempts {
			return err
		}
	}
}

// authorizeAliasTarget authorizes caller for action on the key an alias
// points at now, read from the store, and returns that key's id and the
// key (nil when there is none to authorize); "" when the alias does not
// exist, or points at the key newTarget (authorized already). The change's transaction must find the alias pointing at the
// same key, or fail with errAliasMoved: otherwise a concurrent UpdateAlias
// could move the alias to a key the caller was never authorized for.
func (s *Service) authorizeAliasTarget(ctx context.Context, caller *Caller, action, name, newTarget string) (string, *keyrepo.Key, error) {
	ctx = keyrepo.WithoutCache(ctx)
	id, err := s.repo.LookupAlias(ctx, caller.AccountID, s.regionOf(*caller), name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil, nil
	case err != nil:
		return "", nil, err
	case id == newTarget:
		return id, nil, nil
	}
	k, err := s.repo.Load(ctx, s.regionOf(*caller), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return id, nil, nil // an alias left pointing at no key: nothing to authorize
	case err != nil:
		return "", nil, err
	case s.repo.Expired(&k.Rec):
		return id, nil, nil // gone with its key: the change finds it so
	}
	return id, k, s.authz.Key(ctx, caller, action, k, nil)
}

// UpdateAlias points an existing alias at another key of the same type and
// usage.
func (s *Service) UpdateAlias(ctx context.Context, caller Caller, in *kmsapi.AliasInput) (*struct{}, error) {
	k, err := s.authorizeAliasChange(ctx, &caller, "kms:UpdateAlias", in)
	if err != nil {
		return nil, err
	}
	now := s.clock()
	err = s.changeAlias(ctx, &caller, "UpdateAlias", in.AliasName, k.Rec.ID, func(tx store.Tx, oldID string) error {
		var rec keyrepo.AliasRecord
		if err := getJSON(tx, keyrepo.AliasKey(caller.AccountID, s.regionOf(caller), in.AliasName), &rec); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errAliasNotFound(s.regionOf(caller), caller.AccountID, in.AliasName)
			}
			return err
		}
		if gone, err := s.pastDeletionInTx(tx, s.regionOf(caller), rec.KeyID); err != nil || gone {
			if gone {
				err = errAliasNotFound(s.regionOf(caller), caller.AccountID, in.AliasName)
			}
			return err
		}
		if rec.KeyID != oldID {
			return errAliasMoved
		}
		if err := s.checkTargetInTx(ctx, tx, &caller, "kms:UpdateAlias", k); err != nil {
			return err
		}
		if rec.KeyID != k.Rec.ID {
			if err := s.checkAliasLimit(tx, k); err != nil {
				return err
			}
		}
		var old keyrepo.KeyRecord
		if err := getJSON(tx, keyrepo.KeyKey(s.regionOf(caller), rec.KeyID), &old); err == nil {
			if old.KeyUsage != k.Rec.KeyUsage {
				return newErr(fault.Validation, "Alias %s cannot be changed from a CMK with key usage %s to a CMK with key usage %s. The key usage of the current CMK and the new CMK must be the same.", in.AliasName, old.KeyUsage, k.Rec.KeyUsage)
			}
			if old.KeySpec != k.Rec.KeySpec && (old.KeySpec == keys.SymmetricDefault || k.Rec.KeySpec == keys.SymmetricDefault) {
				return newErr(fault.Validation, "Alias %s cannot be changed from a CMK with key spec %s to a CMK with key spec %s. The key type (symmetric or asymmetric) of the current CMK and the new CMK must be the same.", in.AliasName, old.KeySpec, k.Rec.KeySpec)
			}
		}
		if err := tx.Delete(keyrepo.KeyAliasKey(s.regionOf(caller), rec.KeyID, in.AliasName)); err != nil {
			return err
		}
		rec.KeyID = k.Rec.ID
		rec.Updated = now
		if err := putJSON(tx, keyrepo.AliasKey(caller.AccountID, s.regionOf(caller), in.AliasName), &rec); err != nil {
			return err
		}
		return tx.Put(keyrepo.KeyAliasKey(k.Rec.Region, k.Rec.ID, in.AliasName), nil)
	})
	return nil, err
}

// DeleteAlias removes an alias; the key is untouched.
func (s *Service) DeleteAlias(ctx context.Context, caller Caller, in *kmsapi.DeleteAliasInput) (*struct{}, error) {
	if err := checkAliasName(ctx, in.AliasName, nil); err != nil {
		return nil, err
	}
	if err := s.authz.Account(&caller, "kms:DeleteAlias", keyrepo.AliasARN(s.regionOf(caller), caller.AccountID, in.AliasName), nil); err != nil {
		return nil, err
	}
	err := s.changeAlias(ctx, &caller, "DeleteAlias", in.AliasName, "", func(tx store.Tx, oldID string) error {
		var rec keyrepo.AliasRecord
		if err := getJSON(tx, keyrepo.AliasKey(caller.AccountID, s.regionOf(caller), in.AliasName), &rec); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return errAliasNotFound(s.regionOf(caller), caller.AccountID, in.AliasName)
			}
			return err
		}
		if gone, err := s.pastDeletionInTx(tx, s.regionOf(caller), rec.KeyID); err != nil || gone {
			if gone {
				err = errAliasNotFound(s.regionOf(caller), caller.AccountID, in.AliasName)
			}
			return err
		}
		if rec.KeyID != oldID {
			return errAliasMoved
		}
		if err := tx.Delete(keyrepo.KeyAliasKey(s.regionOf(caller), rec.KeyID, in.AliasName)); err != nil {
			return err
		}
		return tx.Delete(keyrepo.AliasKey(caller.AccountID, s.regionOf(caller), in.AliasName))
	})
	return nil, err
}

// ListAliases lists the caller's aliases by name, or only those of one key.
func (s *Service) ListAliases(ctx context.Context, caller Caller, in *kmsapi.ListAliasesInput) (*kmsapi.ListAliasesOutput, error) {
	v := newViolations(ctx)
	if in.KeyID != nil {
		v.strLen("keyId", *in.KeyID, 1, 2048)
	}
	v.paging(in.Limit, in.Marker)
	if err := v.err(); err != nil {
		return nil, err
	}
	marker, err := parseMarker(in.Marker)
	if err != nil {
		return nil, err
	}
	if err := s.authz.Account(&caller, "kms:ListAliases", "*", nil); err != nil {
		return nil, err
	}
	limit := pageLimit(in.Limit, 50, 100)
	var onlyKey string
	if in.KeyID != nil {
		k, err := s.resolve(ctx, caller, *in.KeyID, keyrepo.IDOrARN)
		if err != nil {
			return nil, err
		}
		onlyKey = k.Rec.ID
	}
	region := s.regionOf(caller)
	pages := newListing("ListAliases", caller.AccountID, region, onlyKey)
	after, err := marker.position(pages)
	if err != nil {
		return nil, err
	}
	out := &kmsapi.ListAliasesOutput{}
	err = s.view(ctx, "ListAliases", func(tx store.Tx) error {
		// One key's aliases are listed from its own index (at most 50
		// names, in the same order as the account's), not found among
		// every alias of the account.
		prefix := keyrepo.AliasPrefix(caller.AccountID, region)
		if onlyKey != "" {
			prefix = keyrepo.KeyAliasPrefix(region, onlyKey)
		}
		var err error
		out.Aliases, out.NextMarker, err = scanPage(tx, pages, prefix, after, limit, func(name string, val []byte) (kmsapi.AliasListEntry, bool, error) {
			if onlyKey != "" {
				v, err := tx.Get(keyrepo.AliasKey(caller.AccountID, region, name))
				if errors.Is(err, store.ErrNotFound) {
					return kmsapi.AliasListEntry{}, false, nil
				}
				if err != nil {
					return kmsapi.AliasListEntry{}, false, err
				}
				val = v
			}
			var rec keyrepo.AliasRecord
			if err := keyrepo.UnmarshalRecord(val, &rec); err != nil {
				return kmsapi.AliasListEntry{}, false, err
			}
			if onlyKey != "" && rec.KeyID != onlyKey {
				return kmsapi.AliasListEntry{}, false, nil
			}
			if gone, err := s.expiredInTx(tx, region, rec.KeyID); err != nil || gone {
				return kmsapi.AliasListEntry{}, false, err
			}
			return kmsapi.AliasListEntry{
				AliasName: rec.Name, AliasArn: keyrepo.AliasARN(region, caller.AccountID, rec.Name), TargetKeyID: rec.KeyID,
				CreationDate: kmsapi.Time(rec.Created), LastUpdatedDate: kmsapi.Time(rec.Updated),
			}, true, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	out.Truncated = out.NextMarker != ""
	return out, nil
}
