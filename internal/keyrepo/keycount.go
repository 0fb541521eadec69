package keyrepo

import (
	"errors"
	"strconv"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/store"
)

// DefaultKeyQuota is how many keys an account may have in a region, as on
// AWS (reference §7.2, "Resource quotas"): keys in every state count,
// those pending deletion too, until they are deleted.
const DefaultKeyQuota = 100_000

// KeyCount is how many keys account has in region, from its count record;
// a store written before the record counts the account's index records
// once, and writes the count.
func KeyCount(tx store.Tx, account, region string) (int, error) {
	b, err := tx.Get(KeyCountKey(account, region))
	if err == nil {
		n, err := strconv.Atoi(string(b))
		if err != nil || n < 0 {
			return 0, errors.New("corrupt record " + string(KeyCountKey(account, region)))
		}
		return n, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	n := 0
	err = tx.Scan(AcctKeyPrefix(account, region), nil, func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	return n, putKeyCount(tx, account, region, n)
}

// AddAccountKey indexes a new key of account in region and counts it, or
// refuses it with LimitExceededException when the account already has
// quota keys there. Of the keys counted, gone are gone already (past their
// deletion date, and not yet counted out): they do not count against the
// quota.
func AddAccountKey(tx store.Tx, account, region, id string, quota, gone int) error {
	n, err := KeyCount(tx, account, region)
	if err != nil {
		return err
	}
	if n-gone >= quota {
		return fault.Newf(fault.LimitExceeded, "The account %s already has the maximum of %d KMS keys in the Region %s.", account, quota, region)
	}
	if err := tx.Put(AcctKeyKey(account, region, id), nil); err != nil {
		return err
	}
	return putKeyCount(tx, account, region, n+1)
}

// RemoveAccountKey removes the index record of a key of account in region
// that is being deleted, and counts it out.
func RemoveAccountKey(tx store.Tx, account, region, id string) error {
	if _, err := tx.Get(AcctKeyKey(account, region, id)); errors.Is(err, store.ErrNotFound) {
		return nil // not indexed, so not counted
	} else if err != nil {
		return err
	}
	n, err := KeyCount(tx, account, region)
	if err != nil {
		return err
	}
	if err := tx.Delete(AcctKeyKey(account, region, id)); err != nil {
		return err
	}
	return putKeyCount(tx, account, region, max(n-1, 0))
}

func putKeyCount(tx store.Tx, account, region string, n int) error {
	return tx.Put(KeyCountKey(account, region), strconv.AppendInt(nil, int64(n), 10))
}
