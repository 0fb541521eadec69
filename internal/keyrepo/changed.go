package keyrepo

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/openkms/kms/internal/store"
)

// Other processes sharing the store announce the records they changed
// (Changed). A changed key or version record drops the cached key: the
// next request reads it again with all its grants. A changed grant record
// instead patches the cached key from that one record, read after the
// change was announced: a key may hold 50,000 grants, and a service that
// makes and retires grants at a steady rate would otherwise have every
// other process read all of them again on each change.

// peerReadTimeout bounds the read of changed grant records; a read that
// fails or takes longer drops the key instead.
const peerReadTimeout = 5 * time.Second

// Changed tells the repository that other processes sharing its store changed
// the records named (store keys); nil means anything may have changed. It
// drops the cache entries those records feed, so that the next request
// reads them again, except that a cached key whose grant records alone
// changed has those grants read again and patched in.
//
// Records named must be committed, and Changed must be called in commit
// order (as pgstore.Store.Watch does): a grant is read as it is when
// Changed runs, which must be at least as new as the change named.
func (r *Repo) Changed(records [][]byte) {
	if records == nil {
		r.cache.flush()
		return
	}
	dropped := make(map[keyRef]bool)
	grants := make(map[keyRef][]string) // the changed grant ids of each key
	for _, name := range records {
		kind, rest, _ := strings.Cut(string(name), "/")
		switch kind {
		case "key", "keyver", "grant": // <kind>/<region>/<key-id>[/...]
			region, rest, _ := strings.Cut(rest, "/")
			id, sub, _ := strings.Cut(rest, "/")
			ref := keyRef{region, id}
			if kind == "grant" && sub != "" && !strings.Contains(sub, "/") {
				grants[ref] = append(grants[ref], sub)
				continue
			}
			r.cache.invalidate(ref)
			dropped[ref] = true
		case "alias": // alias/<account>/<region>/<alias-name>
			account, rest, _ := strings.Cut(rest, "/")
			region, name, _ := strings.Cut(rest, "/")
			r.cache.invalidate(keyRef{}, aliasRef{account, region, name})
		}
	}
	for ref, ids := range grants {
		if !dropped[ref] {
			r.patchFromStore(ref, ids)
		}
	}
}

// patchFromStore reads the grants ids of a cached key and patches them
// into it: one present replaces or joins the key's grants, one gone
// leaves them. A key not cached is not read; one whose grants cannot be
// read is dropped.
func (r *Repo) patchFromStore(ref keyRef, ids []string) {
	was := r.cache.beginPatch(ref)
	if was == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), peerReadTimeout)
	defer cancel()
	present, err := r.readGrants(ctx, ref, ids)
	if err != nil {
		r.log.Warn("reading changed grants; the key will be read again", "keyId", ref.id, "region", ref.region, "err", err)
		r.cache.invalidate(ref)
		return
	}
	r.cache.patchFrom(ref, was, func(gs []*GrantRecord) []*GrantRecord { return replaceGrants(gs, ids, present) })
}

// replaceGrants removes from gs the grants with ids and adds present,
// keeping gs in the order a load reads them (by id), so that a patched
// key holds what a key read again would.
func replaceGrants(gs []*GrantRecord, ids []string, present []*GrantRecord) []*GrantRecord {
	gs = slices.DeleteFunc(gs, func(g *GrantRecord) bool { return slices.Contains(ids, g.ID) })
	for _, g := range present {
		i, _ := slices.BinarySearchFunc(gs, g.ID, func(o *GrantRecord, id string) int { return strings.Compare(o.ID, id) })
		gs = slices.Insert(gs, i, g)
	}
	return gs
}

// readGrants reads the grants ids of a key, in one transaction; those gone
// are left out.
func (r *Repo) readGrants(ctx context.Context, ref keyRef, ids []string) ([]*GrantRecord, error) {
	var present []*GrantRecord
	err := r.store.View(ctx, func(tx store.Tx) error {
		present = present[:0]
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
