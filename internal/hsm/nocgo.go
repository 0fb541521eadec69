//go:build !cgo

package hsm

// Key is an AES-256 key inside a token; without cgo there is none.
type Key struct{}

// Open fails with ErrNoCgo.
func Open(module string, u URI, pin string) (*Key, error) { return nil, ErrNoCgo }

// Create fails with ErrNoCgo.
func Create(module string, u URI, pin string) error { return ErrNoCgo }

// Seal fails with ErrNoCgo.
func (k *Key) Seal(aad, plaintext []byte) ([]byte, error) { return nil, ErrNoCgo }

// Open fails with ErrNoCgo.
func (k *Key) Open(aad, sealed []byte) ([]byte, error) { return nil, ErrNoCgo }

// Close does nothing.
func (k *Key) Close() error { return nil }

// MayLeave reports false: built without cgo, no Key is ever opened.
func (k *Key) MayLeave() bool { return false }
