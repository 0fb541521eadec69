package boltstore

import (
	"slices"
	"sync"
	"sync/atomic"
)

// tracker records the keys that Updates put or delete while Compact
// copies the store without holding its gate: the copy is a snapshot,
// and what changed after it is applied to the copy from the live file.
// While no Compact runs, an Update pays one atomic load for it.
type tracker struct {
	on    atomic.Bool
	mu    sync.Mutex
	keys  map[string]struct{} // written since tracking began or since take
	bytes int                 // of the keys and values written meanwhile, counted each time
}

// start begins tracking with an empty set. The Updates already in their
// transaction may not be tracked: Compact waits for them (barrier)
// before it takes its snapshot.
func (t *tracker) start() {
	t.mu.Lock()
	t.keys, t.bytes = map[string]struct{}{}, 0
	t.mu.Unlock()
	t.on.Store(true)
}

// stop ends tracking and forgets the set.
func (t *tracker) stop() {
	t.on.Store(false)
	t.mu.Lock()
	t.keys, t.bytes = nil, 0
	t.mu.Unlock()
}

// tracking reports whether an Update beginning its transaction now must
// record its keys (with add).
func (t *tracker) tracking() bool { return t.on.Load() }

// add records that key was put (with a value of n bytes) or deleted.
func (t *tracker) add(key []byte, n int) {
	t.mu.Lock()
	if t.keys != nil {
		t.keys[string(key)] = struct{}{}
		t.bytes += len(key) + n
	}
	t.mu.Unlock()
}

// size returns how many keys were recorded, and the bytes written to
// them, since tracking began or since the last take.
func (t *tracker) size() (keys, bytes int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys), t.bytes
}

// take returns the keys recorded, sorted, and goes on tracking with an
// empty set.
func (t *tracker) take() []string {
	t.mu.Lock()
	keys := t.keys
	t.keys, t.bytes = map[string]struct{}{}, 0
	t.mu.Unlock()
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
