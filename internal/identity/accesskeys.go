package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/openkms/kms/internal/fault"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

const (
	statusActive      = "Active"
	statusInactive    = "Inactive"
	maxKeysPerUser    = 2
	accessKeyIDLength = 16 // after the four-letter prefix: 20 characters, as AWS's
)

// AccessKey is an access key id and its secret.
type AccessKey struct {
	ID     string
	Secret string
}

// AccessKeyInfo describes an access key without its secret.
type AccessKeyInfo struct {
	UserName string
	ID       string
	Status   string
	Created  time.Time
}

func newSecret() string {
	b := make([]byte, 30)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// BootstrapRoot returns an access key of account's root, initialising the
// account on its first call (InitAccount).
func BootstrapRoot(ctx context.Context, st store.Store, root *keys.RootKey, account string) (AccessKey, error) {
	ak, _, err := InitAccount(ctx, st, root, account)
	return ak, err
}

// ErrNoRootKey is InitAccount's error for an initialised account whose
// root has no active access key left.
var ErrNoRootKey = errors.New("the account root has no active access key")

// InitAccount initialises account once: its first call makes the root's
// first access key and records that the account exists, in one
// transaction, and returns the key with created true. Once an account is
// initialised no call makes a key again, so that a root that deleted its
// first key does not get another (nor a third) at the next start: it
// returns the first key while it exists, else the root's oldest active
// one, with created false, or ErrNoRootKey if there is none.
//
// An account stored before the record existed is initialised if it has
// any IAM record (its root's first key, other root keys, users, roles):
// the record is written for it then.
func InitAccount(ctx context.Context, st store.Store, root *keys.RootKey, account string) (AccessKey, bool, error) {
	var out AccessKey
	created, noKey := false, false
	err := st.Update(ctx, func(tx store.Tx) error {
		out, created, noKey = AccessKey{}, false, false
		_, err := tx.Get(accountKey(account))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		initialised := err == nil
		if !initialised {
			if initialised, err = storedAccount(tx, account); err != nil {
				return err
			}
			if initialised {
				if err := putJSON(tx, accountKey(account), &accountRecord{V: 1, Created: time.Now().UTC()}); err != nil {
					return err
				}
			}
		}
		if initialised {
			rec, err := rootCredentialRecord(tx, account)
			if errors.Is(err, ErrNoRootKey) {
				noKey = true // and keep the account record of an older store
				return nil
			}
			if err != nil {
				return err
			}
			secret, err := root.Open(accessKeyKey(rec.ID), rec.Sealed)
			if err != nil {
				return errors.New("the stored access key secret does not open under this root key")
			}
			out = AccessKey{ID: rec.ID, Secret: string(secret)}
			return nil
		}
		now := time.Now().UTC()
		out, created = AccessKey{ID: randomID("AKIA", accessKeyIDLength), Secret: newSecret()}, true
		rec := accessKeyRecord{V: 1, ID: out.ID, Account: account, ARN: RootARN(account), Status: statusActive,
			Created: now, Sealed: root.Seal(accessKeyKey(out.ID), []byte(out.Secret))}
		if err := putJSON(tx, accessKeyKey(out.ID), &rec); err != nil {
			return err
		}
		if err := tx.Put(append(rootKeysPrefix(account), out.ID...), nil); err != nil {
			return err
		}
		if err := tx.Put(rootKeyKey(account), []byte(out.ID)); err != nil {
			return err
		}
		return putJSON(tx, accountKey(account), &accountRecord{V: 1, Created: now})
	})
	if err == nil && noKey {
		err = ErrNoRootKey
	}
	if err != nil {
		return AccessKey{}, false, err
	}
	return out, created, nil
}

// storedAccount reports whether account has IAM records from before the
// account record existed.
func storedAccount(tx store.Tx, account string) (bool, error) {
	if _, err := tx.Get(rootKeyKey(account)); err == nil {
		return true, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	for _, prefix := range [][]byte{rootKeysPrefix(account), userPrefix(account), rolePrefix(account)} {
		if n, err := count(tx, prefix); err != nil || n > 0 {
			return n > 0, err
		}
	}
	found := false
	err := scanJSON(tx, []byte("iam/accesskey/"), func(rec *accessKeyRecord) error {
		found = found || rec.Account == account
		return nil
	})
	return found, err
}

// rootCredentialRecord is the access key of account's root that stands
// for it: its first key while it exists, else its oldest active one.
func rootCredentialRecord(tx store.Tx, account string) (*accessKeyRecord, error) {
	ids, err := rootKeyIDs(tx, account)
	if err != nil {
		return nil, err
	}
	first, _ := tx.Get(rootKeyKey(account))
	var best *accessKeyRecord
	for _, id := range ids {
		var rec accessKeyRecord
		if err := getJSON(tx, accessKeyKey(id), &rec); err != nil {
			return nil, fmt.Errorf("access key %s of the account root: %w", id, err)
		}
		if status(rec.Status) != statusActive {
			continue
		}
		if id == string(first) {
			return &rec, nil
		}
		if best == nil || rec.Created.Before(best.Created) || (rec.Created.Equal(best.Created) && rec.ID < best.ID) {
			best = &rec
		}
	}
	if best == nil {
		return nil, ErrNoRootKey
	}
	return best, nil
}

// CreateAccessKey makes a new access key for a user (at most two each), or
// with an empty name for the caller itself. The secret is returned once and
// stored only sealed.
func (d *Directory) CreateAccessKey(ctx context.Context, caller *Principal, userName string) (*AccessKeyInfo, string, error) {
	userName, err := keyOwner(caller, userName)
	if err != nil {
		return nil, "", err
	}
	info := &AccessKeyInfo{UserName: userName, ID: randomID("AKIA", accessKeyIDLength), Status: statusActive, Created: d.now().UTC().Truncate(time.Second)}
	secret := newSecret()
	rec := accessKeyRecord{V: 1, ID: info.ID, Account: caller.Account, UserName: userName, Status: statusActive,
		Created: info.Created, Sealed: d.root.Seal(accessKeyKey(info.ID), []byte(secret))}
	err = d.updateAs(ctx, caller, func(tx store.Tx, caller *Principal) error {
		resource := RootARN(caller.Account)
		if userName == "" {
			if err := d.authorize(ctx, caller, "iam:CreateAccessKey", resource); err != nil {
				return err
			}
			ids, err := rootKeyIDs(tx, caller.Account)
			if err != nil {
				return err
			}
			if len(ids) >= maxKeysPerUser {
				return errf(fault.LimitExceeded, "Cannot exceed quota for AccessKeysPerUser: %d", maxKeysPerUser)
			}
			if err := tx.Put(append(rootKeysPrefix(caller.Account), info.ID...), nil); err != nil {
				return err
			}
		} else {
			o, err := d.named(ctx, tx, caller, "User", userName, "iam:CreateAccessKey")
			if err != nil {
				return err
			}
			resource, info.UserName, rec.UserName = o.arn, o.name, o.name
			n, err := count(tx, userKeysPrefix(caller.Account, userName))
			if err != nil {
				return err
			}
			if n >= maxKeysPerUser {
				return errf(fault.LimitExceeded, "Cannot exceed quota for AccessKeysPerUser: %d", maxKeysPerUser)
			}
			if err := tx.Put(append(userKeysPrefix(caller.Account, userName), info.ID...), nil); err != nil {
				return err
			}
		}
		rec.ARN = resource
		return putJSON(tx, accessKeyKey(info.ID), &rec)
	})
	if err != nil {
		return nil, "", err
	}
	return info, secret, nil
}

// ListAccessKeys lists a page of a user's access keys (or the caller's
// own), if the caller may iam:ListAccessKeys on their owner, itself
// included: in the order of their ids, at most max (> 0), after marker
// (a next of an earlier page; "" from the first). next is the marker of
// the page after, "" after the last.
func (d *Directory) ListAccessKeys(ctx context.Context, caller *Principal, userName, marker string, max int) (page []*AccessKeyInfo, next string, err error) {
	userName, err = keyOwner(caller, userName)
	if err != nil {
		return nil, "", err
	}
	var out []*AccessKeyInfo
	err = d.view(ctx, func(tx store.Tx) error {
		out = out[:0]
		if userName == "" {
			if err := d.authorize(ctx, caller, "iam:ListAccessKeys", RootARN(caller.Account)); err != nil {
				return err
			}
			ids, err := rootKeyIDs(tx, caller.Account)
			if err != nil {
				return err
			}
			for _, id := range ids {
				var rec accessKeyRecord
				if err := getJSON(tx, accessKeyKey(id), &rec); err != nil {
					return err
				}
				out = append(out, &AccessKeyInfo{ID: rec.ID, Status: status(rec.Status), Created: rec.Created})
			}
			return nil
		}
		// One's own keys need iam:ListAccessKeys too, as on AWS.
		o, err := d.named(ctx, tx, caller, "User", userName, "iam:ListAccessKeys")
		if err != nil {
			return err
		}
		prefix := userKeysPrefix(caller.Account, userName)
		return tx.Scan(prefix, nil, func(k, _ []byte) (bool, error) {
			var rec accessKeyRecord
			if err := getJSON(tx, accessKeyKey(string(k[len(prefix):])), &rec); err != nil {
				return false, err
			}
			out = append(out, &AccessKeyInfo{UserName: o.name, ID: rec.ID, Status: status(rec.Status), Created: rec.Created})
			return true, nil
		})
	})
	if err != nil {
		return nil, "", err
	}
	// A user has at most two keys (the root of an older store three):
	// the page is cut from them all.
	slices.SortFunc(out, func(a, b *AccessKeyInfo) int { return strings.Compare(a.ID, b.ID) })
	for len(out) > 0 && marker != "" && out[0].ID <= marker {
		out = out[1:]
	}
	if len(out) > max {
		out = out[:max]
		next = out[max-1].ID
	}
	return out, next, nil
}

// keyOwner is the user whose access keys a call is about: userName,
// checked, or for a call without one the calling user itself, or "" (the
// root's keys) for the root. A role session has no keys of its own, and
// must not reach the root's.
func keyOwner(caller *Principal, userName string) (string, error) {
	if userName != "" {
		return userName, checkName("userName", userName, maxExistingUserName)
	}
	switch caller.Type {
	case TypeRoot:
		return "", nil
	case TypeIAMUser:
		return caller.Username, nil
	}
	return "", errf(fault.Validation, "Must specify userName when calling with non-User credentials")
}

var accessKeyIDPattern = regexp.MustCompile(`^\w+$`)

// checkAccessKeyID refuses an access key id as IAM does: present, 16 to
// 128 characters of [\w].
func checkAccessKeyID(id string) error {
	const prefix = "1 validation error detected: Value '%s' at 'accessKeyId' failed to satisfy constraint: "
	switch {
	case id == "":
		return errf(fault.Validation, "1 validation error detected: Value null at 'accessKeyId' failed to satisfy constraint: Member must not be null")
	case len(id) < 16:
		return errf(fault.Validation, prefix+"Member must have length greater than or equal to 16", id)
	case len(id) > 128:
		return errf(fault.Validation, prefix+"Member must have length less than or equal to 128", id)
	case !accessKeyIDPattern.MatchString(id):
		return errf(fault.Validation, prefix+"Member must satisfy regular expression pattern: [\\w]+", id)
	}
	return nil
}

func status(s string) string {
	if s == "" {
		return statusActive
	}
	return s
}

// DeleteAccessKey deletes an access key; requests signed with it fail from
// the next one on. Its sealed secret is marked erased (store.NoteErased),
// for the server to clear from the store's files.
func (d *Directory) DeleteAccessKey(ctx context.Context, caller *Principal, userName, id string) error {
	return d.changeAccessKey(ctx, caller, userName, id, "iam:DeleteAccessKey", func(tx store.Tx, rec *accessKeyRecord) error {
		if rec.UserName != "" {
			if err := tx.Delete(append(userKeysPrefix(caller.Account, rec.UserName), id...)); err != nil {
				return err
			}
		} else {
			if err := tx.Delete(append(rootKeysPrefix(caller.Account), id...)); err != nil {
				return err
			}
			if cur, err := tx.Get(rootKeyKey(caller.Account)); err == nil && string(cur) == id {
				if err := tx.Delete(rootKeyKey(caller.Account)); err != nil {
					return err
				}
			}
		}
		if err := tx.Delete(accessKeyKey(id)); err != nil {
			return err
		}
		// Its sealed secret stays in the store's files until a compaction.
		return store.NoteErased(tx)
	})
}

// UpdateAccessKey makes an access key Active or Inactive. A request signed
// with an inactive key is refused as one with an unknown key, and so is a
// console session signed in with it, from the next request on; making it
// Active again restores both. The key's secret does not change.
func (d *Directory) UpdateAccessKey(ctx context.Context, caller *Principal, userName, id, newStatus string) error {
	switch newStatus {
	case statusActive, statusInactive:
	case "":
		return errf(fault.Validation, "1 validation error detected: Value null at 'status' failed to satisfy constraint: Member must not be null")
	default:
		return errf(fault.Validation, "1 validation error detected: Value '%s' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]", newStatus)
	}
	return d.changeAccessKey(ctx, caller, userName, id, "iam:UpdateAccessKey", func(tx store.Tx, rec *accessKeyRecord) error {
		if status(rec.Status) == newStatus {
			return nil
		}
		rec.Status = newStatus
		return putJSON(tx, accessKeyKey(id), rec)
	})
}

// changeAccessKey runs change on access key id of userName (the caller's
// own keys without one) in one transaction, once caller may perform
// action on the key's owner, and drops the key's cached credential after.
// The decision is on the owner as it is now, not as it was when the key
// was made (its path may differ).
func (d *Directory) changeAccessKey(ctx context.Context, caller *Principal, userName, id, action string, change func(store.Tx, *accessKeyRecord) error) error {
	if err := checkAccessKeyID(id); err != nil {
		return err
	}
	userName, err := keyOwner(caller, userName)
	if err != nil {
		return err
	}
	err = d.updateAs(ctx, caller, func(tx store.Tx, caller *Principal) error {
		// The caller must be allowed on the key's owner before it learns
		// anything of the key, or of the owner.
		if userName == "" {
			if err := d.authorize(ctx, caller, action, RootARN(caller.Account)); err != nil {
				return err
			}
		} else if _, err := d.named(ctx, tx, caller, "User", userName, action); err != nil {
			return err
		}
		rec, err := ownedAccessKey(tx, caller.Account, userName, id)
		if err != nil {
			return err
		}
		return change(tx, rec)
	})
	d.changed(accessKeyOf(id))
	return err
}

// ownedAccessKey reads access key id of userName ("" for the root) in
// account. A key of another user or account is not found, as one that does
// not exist: the caller learns nothing of others' key ids.
func ownedAccessKey(tx store.Tx, account, userName, id string) (*accessKeyRecord, error) {
	var rec accessKeyRecord
	err := getJSON(tx, accessKeyKey(id), &rec)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (rec.Account != account || lower(rec.UserName) != lower(userName))) {
		return nil, errf(fault.NoSuchEntity, "The Access Key with id %s cannot be found.", id)
	}
	if err != nil {
		return nil, err
	}
	return &rec, nil
}

// rootKeyIDs lists the access keys of an account's root: the index, and
// the bootstrap key of data written before the index existed.
func rootKeyIDs(tx store.Tx, account string) ([]string, error) {
	prefix := rootKeysPrefix(account)
	var ids []string
	err := tx.Scan(prefix, nil, func(k, _ []byte) (bool, error) {
		ids = append(ids, string(k[len(prefix):]))
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	if boot, err := tx.Get(rootKeyKey(account)); err == nil && !slices.Contains(ids, string(boot)) {
		ids = append(ids, string(boot))
	}
	return ids, nil
}
