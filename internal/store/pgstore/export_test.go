package pgstore

// LeaseKey is the advisory lock key of the lease called name.
func LeaseKey(name string) int64 { return leaseKey(name) }
