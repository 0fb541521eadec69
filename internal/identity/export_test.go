package identity

// OnRefreshed has d call fn after each read of a credential in the
// background.
func OnRefreshed(d *Directory, fn func()) { d.refreshed = fn }
