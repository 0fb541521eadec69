package keyrepo

// OnRefreshed has r call fn after each read of a key in the background.
func OnRefreshed(r *Repo, fn func()) { r.refreshed = fn }

// CachedBytes counts the keys r's cache holds and their estimated sizes,
// and returns the bytes the cache accounts for.
func CachedBytes(r *Repo) (keys int, bytes, accounted int64) {
	r.cache.mu.RLock()
	defer r.cache.mu.RUnlock()
	for _, e := range r.cache.keys {
		keys++
		bytes += e.k.memSize()
	}
	return keys, bytes, r.cache.bytes
}

// MemSize is k's estimated size in memory.
func MemSize(k *Key) int64 { return k.memSize() }
