package keyrepo

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/openkms/kms/internal/store"
)

// Other processes sharing the store announce the records they changed
// (Changed). A changed version record drops the cached key: the next
// request reads it again with all its grants. A changed grant record
// instead patches the cached key from that one record, read after the
// change was announced: a key may hold 50,000 grants, and a service that
// makes and retires grants at a steady rate would otherwise have every
// other process read all of them again on each change. So does a key
// record whose last use alone changed, as every process that used the key
// writes it every few seconds (service.FlushKeyUsage); any other change
// to the key record drops the key.

// peerReadTimeout bounds the read of changed records; a read that fails
// or takes longer drops the key instead.
const peerReadTimeout = 5 * time.Second

// keyChange is what one announcement changed of a key.
type keyChange struct {
	drop   bool     // a version, or a record not understood
	record bool     // the key record
	grants []string // the ids of grants
}

// Changed tells the repository that other processes sharing its store changed
// the records named (store keys); nil means anything may have changed. It
// drops the cache entries those records feed, so that the next request
// reads them again, except that a cached key whose grant records, or the
// last use in its key record, alone changed has those records read again
// and patched in.
//
// Records named must be committed, and Changed must be called in commit
// order (as pgstore.Store.Watch does): a record is read as it is when
// Changed runs, which must be at least as new as the change named.
func (r *Repo) Changed(records [][]byte) {
	if records == nil {
		r.cache.flush()
		return
	}
	changes := make(map[keyRef]*keyChange)
	for _, name := range records {
		kind, rest, _ := strings.Cut(string(name), "/")
		switch kind {
		case "key", "keyver", "grant": // <kind>/<region>/<key-id>[/...]
			region, rest, _ := strings.Cut(rest, "/")
			id, sub, hasSub := strings.Cut(rest, "/")
			ref := keyRef{region, id}
			c := changes[ref]
			if c == nil {
				c = new(keyChange)
				changes[ref] = c
			}
			switch {
			case kind == "key" && !hasSub:
				c.record = true
			case kind == "grant" && sub != "" && !strings.Contains(sub, "/"):
				c.grants = append(c.grants, sub)
			default:
				c.drop = true
			}
		case "alias": // alias/<account>/<region>/<alias-name>
			account, rest, _ := strings.Cut(rest, "/")
			region, name, _ := strings.Cut(rest, "/")
			r.cache.invalidate(keyRef{}, aliasRef{account, region, name})
		}
	}
	for ref, c := range changes {
		if c.drop {
			r.cache.invalidate(ref)
		} else {
			r.patchFromStore(r.changeStore, ref, c)
		}
	}
}

// patchFromStore reads the records c names of a cached key from st and
// patches them into it: a grant present replaces or joins the key's grants, one
// gone leaves them; a key record replaces the cached one if only its last
// use differs. A key not cached is not read; one whose records cannot be
// read, or whose record changed otherwise or is gone, is dropped.
func (r *Repo) patchFromStore(st store.Store, ref keyRef, c *keyChange) {
	was := r.cache.beginPatch(ref)
	if was == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), peerReadTimeout)
	defer cancel()
	var rec KeyRecord
	present, err := readGrants(ctx, st, ref, c.grants, func(tx store.Tx) error {
		if !c.record {
			return nil
		}
		return store.GetJSON(tx, KeyKey(ref.region, ref.id), &rec)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		r.cache.invalidate(ref)
		return
	case err != nil:
		r.log.Warn("reading changed records; the key will be read again", "keyId", ref.id, "region", ref.region, "err", err)
		r.cache.invalidate(ref)
		return
	case c.record && !sameButUsage(&was.Rec, &rec):
		r.cache.invalidate(ref)
		return
	}
	r.cache.patchFrom(ref, was, func(k *Key) *Key {
		if c.record {
			k.Rec = rec
		}
		if len(c.grants) > 0 {
			k.replaceGrants(c.grants, present)
		}
		return k
	})
}

// sameButUsage reports whether two records of a key differ in their last
// use at most: a key read again with b would be the key read with a but
// for its record.
func sameButUsage(a, b *KeyRecord) bool {
	x := *b
	x.LastUsage, x.UsageTrackedSince = a.LastUsage, a.UsageTrackedSince
	return reflect.DeepEqual(*a, x)
}

// replaceGrants sets the grants of k, a copy of a key whose grants and
// index it must leave as they are, to its grants without those with ids
// and with present, in the order a load reads them (by id) and with the
// same index by grantee, so that a patched key holds what a key read
// again would. Only the grantees concerned have their index entry made
// again: a key may hold 50,000 grants.
func (k *Key) replaceGrants(ids []string, present []*GrantRecord) {
	gone := func(g *GrantRecord) bool { return slices.Contains(ids, g.ID) }
	var touched []string
	gs := slices.Clone(k.Grants)
	gs = slices.DeleteFunc(gs, func(g *GrantRecord) bool {
		if gone(g) {
			touched = append(touched, g.Grantee)
			return true
		}
		return false
	})
	for _, g := range present {
		i, _ := slices.BinarySearchFunc(gs, g.ID, func(o *GrantRecord, id string) int { return strings.Compare(o.ID, id) })
		gs = slices.Insert(gs, i, g)
		touched = append(touched, g.Grantee)
	}
	k.Grants = gs
	if k.byGrantee == nil {
		return // a key put together by hand
	}
	index := maps.Clone(k.byGrantee)
	for _, a := range touched {
		list := slices.DeleteFunc(slices.Clone(index[a]), gone)
		for _, g := range present {
			if g.Grantee == a && !slices.Contains(list, g) {
				list = append(list, g)
			}
		}
		slices.SortFunc(list, func(x, y *GrantRecord) int { return strings.Compare(x.ID, y.ID) })
		if len(list) == 0 {
			delete(index, a)
		} else {
			index[a] = list
		}
	}
	k.byGrantee = index
}

// readGrants reads the grants ids of a key from st, in one transaction
// with the reads of also; those gone are left out.
func readGrants(ctx context.Context, st store.Store, ref keyRef, ids []string, also ...func(store.Tx) error) ([]*GrantRecord, error) {
	var present []*GrantRecord
	err := st.View(ctx, func(tx store.Tx) error {
		present = present[:0]
		for _, read := range also {
			if err := read(tx); err != nil {
				return err
			}
		}
		for _, id := range ids {
			g := new(GrantRecord)
			switch err := store.GetJSON(tx, GrantKey(ref.region, ref.id, id), g); {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				return err
			default:
				present = append(present, g)
			}
		}
		return nil
	})
	return present, err
}
