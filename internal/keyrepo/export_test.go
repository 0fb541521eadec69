package keyrepo

// OnRefreshed has r call fn after each read of a key in the background.
func OnRefreshed(r *Repo, fn func()) { r.refreshed = fn }
