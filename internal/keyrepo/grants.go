package keyrepo

import (
	"errors"
	"strconv"

	"github.com/openkms/kms/internal/store"
)

// The grants of a key are written and removed only through PutGrant and
// DeleteGrant, which keep two derived records beside them: the key's grant
// count (GrantCountKey) and the index of its named grants (GrantNameKey),
// so that CreateGrant checks the limit and finds a grant of the same name
// without reading every grant of the key. A key whose grants were stored
// before these records existed has no count; GrantCount builds both from
// its grants once, inside the transaction that needs them.

// GrantCount returns how many grants the key has, building its count and
// name index first if it has none.
func GrantCount(tx store.Tx, region, keyID string) (int, error) {
	b, err := tx.Get(GrantCountKey(region, keyID))
	if err == nil {
		n, err := strconv.Atoi(string(b))
		if err != nil || n < 0 {
			return 0, errors.New("corrupt record " + string(GrantCountKey(region, keyID)))
		}
		return n, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	var named []*GrantRecord
	n := 0
	err = tx.Scan(GrantPrefix(region, keyID), nil, func(_, v []byte) (bool, error) {
		n++
		g := new(GrantRecord)
		if err := UnmarshalRecord(v, g); err != nil {
			return false, err
		}
		if g.Name != "" {
			named = append(named, g)
		}
		return true, nil
	})
	if err != nil {
		return 0, err
	}
	for _, g := range named {
		if err := tx.Put(GrantNameKey(region, keyID, g.Account, g.Name, g.ID), nil); err != nil {
			return 0, err
		}
	}
	return n, putCount(tx, region, keyID, n)
}

func putCount(tx store.Tx, region, keyID string, n int) error {
	return tx.Put(GrantCountKey(region, keyID), strconv.AppendInt(nil, int64(n), 10))
}

// NamedGrants calls fn with each grant of the key that account made with
// name, until fn returns false. The key's count must exist (GrantCount).
func NamedGrants(tx store.Tx, region, keyID, account, name string, fn func(*GrantRecord) bool) error {
	prefix := GrantNamePrefix(region, keyID, account, name)
	return tx.Scan(prefix, nil, func(k, _ []byte) (bool, error) {
		var g GrantRecord
		switch err := store.GetJSON(tx, GrantKey(region, keyID, string(k[len(prefix):])), &g); {
		case errors.Is(err, store.ErrNotFound):
			return true, nil // left by a count that was dropped and built again
		case err != nil:
			return false, err
		}
		return fn(&g), nil
	})
}

// PutGrant stores a new grant with its index records.
func PutGrant(tx store.Tx, g *GrantRecord) error {
	n, err := GrantCount(tx, g.Region, g.KeyID)
	if err != nil {
		return err
	}
	if err := store.PutJSON(tx, GrantKey(g.Region, g.KeyID, g.ID), g); err != nil {
		return err
	}
	if g.Name != "" {
		if err := tx.Put(GrantNameKey(g.Region, g.KeyID, g.Account, g.Name, g.ID), nil); err != nil {
			return err
		}
	}
	if g.Retiring != "" {
		if err := tx.Put(RetirableKey(g.Retiring, g.Region, g.KeyID, g.ID), nil); err != nil {
			return err
		}
	}
	return putCount(tx, g.Region, g.KeyID, n+1)
}

// DeleteGrant removes grant g of the key keyID in region, with its index
// records.
func DeleteGrant(tx store.Tx, region, keyID string, g *GrantRecord) error {
	if g.Retiring != "" {
		if err := tx.Delete(RetirableKey(g.Retiring, region, keyID, g.ID)); err != nil {
			return err
		}
	}
	if g.Name != "" {
		if err := tx.Delete(GrantNameKey(region, keyID, g.Account, g.Name, g.ID)); err != nil {
			return err
		}
	}
	if err := tx.Delete(GrantKey(region, keyID, g.ID)); err != nil {
		return err
	}
	b, err := tx.Get(GrantCountKey(region, keyID))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // not counted yet: GrantCount counts what remains
	case err != nil:
		return err
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 1 {
		// A count that cannot be right is dropped, to be counted again.
		return tx.Delete(GrantCountKey(region, keyID))
	}
	return putCount(tx, region, keyID, n-1)
}
