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
