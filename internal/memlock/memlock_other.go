//go:build !linux

package memlock

// Lock returns ErrUnsupported: this package locks memory on Linux only.
func Lock() error { return ErrUnsupported }

// Bounded reports no bound: nothing is locked.
func Bounded() (limit uint64, bounded bool) { return 0, false }
