package identity

import "context"

type uncachedKey struct{}

// WithoutCache returns ctx marking a request whose caller is to be read from
// the store, not from the credential cache: one that changes IAM, keys or
// grants. In a cluster a node's cache may lag a change made on another
// node by up to its maximum age when notifications are lost; a caller
// whose access was just revoked must not use that lag to make a change
// that outlives it (a new access key, a policy, a grant, a session).
func WithoutCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, uncachedKey{}, true)
}

func uncached(ctx context.Context) bool {
	return ctx.Value(uncachedKey{}) != nil
}
