package keyrepo

import "context"

type uncachedKey struct{}

// WithoutCache returns ctx marking a request whose keys are to be read
// from the store, not from the cache: one that changes a key, its policy,
// grants or aliases, and so must be authorized against what is stored
// now. In a cluster a node's cache may lag a change made on another node
// by up to its maximum age when notifications are lost.
func WithoutCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, uncachedKey{}, true)
}

// Uncached reports whether ctx was marked by WithoutCache.
func Uncached(ctx context.Context) bool {
	return ctx.Value(uncachedKey{}) != nil
}
