package pgstore

import "time"

// LeaseKey is the advisory lock key of the lease called name.
func LeaseKey(name string) int64 { return leaseKey(name) }

// AfterRewrite makes s's Compact run fn between the rewrite and its check
// for the snapshots the rewrite kept rows for.
func AfterRewrite(s *Store, fn func()) { s.afterRewrite = fn }

// SetClock makes s read the time of its retry budget from now.
func SetClock(s *Store, now func() time.Time) { s.now = now }
