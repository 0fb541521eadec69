package identity

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
