package testsupport

import (
	"context"
	"sync/atomic"

	"github.com/openkms/kms/internal/store"
)

// HoldStore is a store that holds, while armed, the next read transaction
// it is given, once its reads are done: it sends on Held, and waits for
// Release to be closed. A test lands a change in that moment, between a
// read of the store and what the code under test does with what it read.
type HoldStore struct {
	store.Store
	armed   atomic.Bool
	Held    chan struct{}
	Release chan struct{}
}

// NewHoldStore returns st holding nothing until Arm.
func NewHoldStore(st store.Store) *HoldStore {
	return &HoldStore{Store: st, Held: make(chan struct{}), Release: make(chan struct{})}
}

// Arm has h hold the next read transaction.
func (h *HoldStore) Arm() { h.armed.Store(true) }

// View runs fn in a read transaction of the store, and then, if armed,
// holds.
func (h *HoldStore) View(ctx context.Context, fn func(store.Tx) error) error {
	err := h.Store.View(ctx, fn)
	if h.armed.CompareAndSwap(true, false) {
		h.Held <- struct{}{}
		<-h.Release
	}
	return err
}
