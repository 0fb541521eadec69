package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// OnRefreshed has d call fn after each read of a credential in the
// background.
func OnRefreshed(d *Directory, fn func()) { d.refreshed = fn }

// UnknownKeysCached is how many access key ids d remembers as unknown or
// inactive, and their bytes.
func UnknownKeysCached(d *Directory) (ids, bytes int) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for k := range d.misses {
		ids++
		bytes += len(k)
	}
	return ids, bytes
}

// SetQuotas sets how many users and roles d lets an account have.
func SetQuotas(d *Directory, users, roles int) { d.userQuota, d.roleQuota = users, roles }

// SetCacheLimit sets how many entries each of d's caches of access keys
// holds (CredentialCacheLimit unless set), and how many a full cache of
// credentials evicts: a hundredth, as CredentialCacheEvictions is of
// CredentialCacheLimit. A test fills a small cache as it would the real
// one, in a hundredth of the calls.
func SetCacheLimit(d *Directory, n int) { d.cacheLimit, d.cacheEvictions = n, n/100 }

// SetCredentialCacheBytes sets the memory d's cached credentials may
// take together, as estimated.
func SetCredentialCacheBytes(d *Directory, n int64) { d.maxCredBytes = n }

// CachedCredentials counts the credentials d caches and their estimated
// sizes, and returns the bytes d accounts for.
func CachedCredentials(d *Directory) (n int, bytes, accounted int64) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, c := range d.creds {
		n++
		bytes += c.memSize()
	}
	return n, bytes, d.credBytes
}

// CredentialCacheLimit is how many credentials a Directory caches, and
// CredentialCacheEvictions how many a full cache evicts to make room.
const (
	CredentialCacheLimit     = cacheLimit
	CredentialCacheEvictions = cacheEvictions
)

// PutRootAccessKeys stores the root access keys of n accounts, from
// firstAccount on, in one transaction (the records InitAccount would
// write in n), for a test that needs many distinct callers; it returns
// them in order. The records are put in the order of their keys, which
// bbolt appends rather than inserts.
func PutRootAccessKeys(ctx context.Context, st store.Store, root *keys.RootKey, firstAccount, n int) ([]AccessKey, error) {
	out := make([]AccessKey, n)
	type record struct{ key, value []byte }
	var recs []record
	put := func(key []byte, v any) {
		b, _ := json.Marshal(v)
		recs = append(recs, record{key, b})
	}
	now := time.Now().UTC()
	for i := range out {
		account := fmt.Sprintf("%012d", firstAccount+i)
		ak := AccessKey{ID: randomID("AKIA", accessKeyIDLength), Secret: newSecret()}
		put(accessKeyKey(ak.ID), &accessKeyRecord{V: 1, ID: ak.ID, Account: account, ARN: RootARN(account), Status: statusActive,
			Created: now, Sealed: root.Seal(accessKeyKey(ak.ID), []byte(ak.Secret))})
		recs = append(recs, record{append(rootKeysPrefix(account), ak.ID...), nil}, record{rootKeyKey(account), []byte(ak.ID)})
		put(accountKey(account), &accountRecord{V: 1, Created: now})
		out[i] = ak
	}
	slices.SortFunc(recs, func(a, b record) int { return bytes.Compare(a.key, b.key) })
	err := st.Update(ctx, func(tx store.Tx) error {
		for _, r := range recs {
			if err := tx.Put(r.key, r.value); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}
