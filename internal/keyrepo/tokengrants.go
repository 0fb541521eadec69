package keyrepo

import (
	"context"
	"slices"
	"strings"
)

// A grant made on another node is known here once its change is announced
// (Changed), typically milliseconds later. A call that carries the grant's
// token may not wait for that, as on AWS KMS: a key from the cache that
// lacks a grant its call names by token has that grant read from the store.

type tokenGrantsKey struct{}

// TokenGrant is a grant a call names by grant token: the id of its key
// and its own.
type TokenGrant struct{ KeyID, GrantID string }

// WithTokenGrants returns ctx naming the grants of its call's grant
// tokens: a key loaded from the cache for the call includes them as they
// are stored now, even before their change is announced.
func WithTokenGrants(ctx context.Context, grants []TokenGrant) context.Context {
	if len(grants) == 0 {
		return ctx
	}
	return context.WithValue(ctx, tokenGrantsKey{}, grants)
}

// withTokenGrants returns k, from the cache, with the grants ctx names by
// token that it lacks read from the store, for this call only: the cached
// key gains them when their change is announced. A grant that cannot be
// read is left out: the call is judged by the grants cached, as one
// without the token.
func (r *Repo) withTokenGrants(ctx context.Context, k *Key) *Key {
	named, _ := ctx.Value(tokenGrantsKey{}).([]TokenGrant)
	var ids []string
	for _, t := range named {
		if t.KeyID == k.Rec.ID && !k.hasGrant(t.GrantID) && !slices.Contains(ids, t.GrantID) {
			ids = append(ids, t.GrantID)
		}
	}
	if len(ids) == 0 {
		return k
	}
	present, err := readGrants(ctx, r.store, keyRef{k.Rec.Region, k.Rec.ID}, ids)
	if err != nil {
		r.log.Warn("reading the grants of a call's grant tokens", "keyId", k.Rec.ID, "region", k.Rec.Region, "err", err)
		return k
	}
	if len(present) == 0 {
		return k
	}
	out := *k
	out.replaceGrants(nil, present)
	return &out
}

// hasGrant reports whether k holds grant id. The grants of a key from the
// cache are in id order (Key.replaceGrants).
func (k *Key) hasGrant(id string) bool {
	_, found := slices.BinarySearchFunc(k.Grants, id, func(g *GrantRecord, id string) int { return strings.Compare(g.ID, id) })
	return found
}
