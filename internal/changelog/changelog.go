// Package changelog tells a cache whether what a read of one of its
// entries found may be stale: whether a change to that entry, or a flush
// of the whole cache, came after the read began.
//
// A cache counts its changes: each advances a generation. A read notes the
// generation as it begins (Now); a change records the generation it made
// for the entry it concerns (Changed), and a flush one for every entry
// (Flushed). What the read found may be cached if no change to its entry
// and no flush came after it began (ChangedSince). A change to another
// entry does not refuse it: on a busy cluster, where some key changes
// every few milliseconds, a read of a hot key that takes tens of them
// would otherwise seldom land.
//
// The generations of changed entries are kept for the last Capacity
// changes only, oldest dropped first, so that memory stays bounded
// however many entries change over time. A read that began before the
// newest change dropped is refused whatever its entry: that change may
// have been to it.
//
// A Log is not safe for concurrent use: its cache guards it with its own
// lock.
package changelog

// DefaultCapacity is the number of changes a Log remembers by default:
// enough that a read is refused for want of memory only when thousands of
// changes come while it is under way.
const DefaultCapacity = 4096

// Log is the record of a cache's changes by entry, of entries named by K.
// Its zero value is not usable: make one with New.
type Log[K comparable] struct {
	gen      uint64       // the last generation made
	flushed  uint64       // the generation of the last flush
	dropped  uint64       // the newest generation forgotten to bound memory
	last     map[K]uint64 // each entry's last change that is remembered
	ring     []change[K]  // the changes remembered; once full, oldest at head
	head     int
	capacity int
}

type change[K comparable] struct {
	key K
	gen uint64
}

// New returns a Log that remembers the last capacity changes
// (DefaultCapacity if capacity is not positive).
func New[K comparable](capacity int) *Log[K] {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Log[K]{last: make(map[K]uint64), capacity: capacity}
}

// Now is the current generation: a read notes it before it begins, and
// passes it to ChangedSince once it ends.
func (l *Log[K]) Now() uint64 { return l.gen }

// Changed records a change to key, made (committed) before Changed is
// called, and returns its generation.
func (l *Log[K]) Changed(key K) uint64 {
	l.gen++
	c := change[K]{key, l.gen}
	if len(l.ring) < l.capacity {
		l.ring = append(l.ring, c)
	} else {
		old := l.ring[l.head]
		if l.last[old.key] == old.gen {
			delete(l.last, old.key)
		}
		l.dropped = old.gen
		l.ring[l.head] = c
		l.head = (l.head + 1) % len(l.ring)
	}
	l.last[key] = l.gen
	return l.gen
}

// Flushed records a change to every entry, and forgets the changes to
// each: a read that began before it is refused whatever its entry.
func (l *Log[K]) Flushed() {
	l.gen++
	l.flushed = l.gen
	clear(l.last)
	clear(l.ring) // let go of the keys
	l.ring, l.head = l.ring[:0], 0
}

// ChangedSince reports whether key may have changed after generation gen
// (from Now): a change to it, a flush, or a change forgotten since that
// might have been to it.
func (l *Log[K]) ChangedSince(key K, gen uint64) bool {
	if l.flushed > gen {
		return true
	}
	if g, ok := l.last[key]; ok {
		return g > gen
	}
	return l.dropped > gen
}
