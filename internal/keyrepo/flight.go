package keyrepo

import (
	"context"
	"errors"
	"sync"
	"time"
)

// A flight is one read of a key from the store that the callers who miss
// the cache at the same generation share, instead of each reading the key
// whole (up to 50,000 grants) at once: what happens to a hot key of a
// cluster node each time its entry's max age runs out, and to every key
// after a notification empties the cache.
//
// Only callers that saw the generation the read began at may join it.
// A caller that comes after a change was invalidated sees a later
// generation and starts a read of its own, so that no caller is answered
// from a snapshot older than a change answered before it began.
//
// Nor may a caller be answered from a read that began more than the max
// age before it and before the call itself (a store slower than the max
// age): a change made meanwhile by another process, its notification
// lost, would be honoured later than the max age promises. It reads
// again instead, and that read begins after the call did.
type flight struct {
	done  chan struct{} // closed when start, k and err are set
	start time.Time     // when the read began, as the cache stamps it
	k     *Key
	err   error
}

type flightRef struct {
	key keyRef
	gen uint64
}

// flights are the reads under way: of keys, by key and generation, and
// of keys and aliases in the background.
type flights struct {
	mu      sync.Mutex
	m       map[flightRef]*flight
	keys    map[keyRef]bool // keys read in the background, at any generation
	aliases map[aliasRef]bool
}

// errFlightAborted is what the callers sharing a read get if it ended
// without a result (its reader panicked).
var errFlightAborted = errors.New("keyrepo: the shared read of the key ended without a result")

// join returns the read of ref at gen under way, or a new one that the
// caller must make (lead).
func (fs *flights) join(ref flightRef) (f *flight, lead bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f, ok := fs.m[ref]; ok {
		return f, false
	}
	if fs.m == nil {
		fs.m = make(map[flightRef]*flight)
	}
	f = &flight{done: make(chan struct{}), err: errFlightAborted}
	fs.m[ref] = f
	return f, true
}

// joinRefresh returns a new read of ref for a read in the background,
// unless one of ref's key is under way: a read in the background at an
// earlier generation (which will not land), or a caller's at ref's.
func (fs *flights) joinRefresh(ref flightRef) (f *flight, lead bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, ok := fs.m[ref]; ok || fs.keys[ref.key] {
		return nil, false
	}
	if fs.m == nil {
		fs.m = make(map[flightRef]*flight)
	}
	if fs.keys == nil {
		fs.keys = make(map[keyRef]bool)
	}
	f = &flight{done: make(chan struct{}), err: errFlightAborted}
	fs.m[ref] = f
	fs.keys[ref.key] = true
	return f, true
}

// endRefresh records that the read in the background of key ended.
func (fs *flights) endRefresh(key keyRef) {
	fs.mu.Lock()
	delete(fs.keys, key)
	fs.mu.Unlock()
}

func (fs *flights) land(ref flightRef, f *flight) {
	fs.mu.Lock()
	delete(fs.m, ref)
	fs.mu.Unlock()
	close(f.done)
}

// fly makes the read f of ref, and caches what it read if no change was
// invalidated since ref's generation.
func (r *Repo) fly(ctx context.Context, ref flightRef, f *flight) {
	defer r.flights.land(ref, f)
	start := r.cache.stamp()
	f.start = start
	k, err := r.read(ctx, ref.key.region, ref.key.id, false)
	if err == nil {
		r.cache.fillKey(ref.gen, start, k)
	}
	f.k, f.err = k, err
}

// loadShared reads the key ref for a caller that missed the cache, or
// waits for the read another caller began at the same generation.
func (r *Repo) loadShared(ctx context.Context, key keyRef) (*Key, error) {
	began := r.cache.stamp()
	for {
		ref := flightRef{key, r.cache.generation()}
		f, lead := r.flights.join(ref)
		if lead {
			// A read that landed since this caller missed the cache, or
			// since the read it waited for failed it, filled the entry
			// before it landed: callers waiting for a read whose caller
			// went away do not each read the key whole.
			if k := r.cache.cached(key); k != nil {
				f.start, f.k, f.err = r.cache.stamp(), k, nil
				r.flights.land(ref, f)
				return r.withTokenGrants(ctx, k), nil
			}
			r.fly(ctx, ref, f)
			return f.k, f.err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.start.Before(began) && !r.cache.fresh(f.start) {
			continue // a read older than this call and than the max age
		}
		if f.err != nil && ctx.Err() == nil && (errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
			continue // the reader's call ended, not this one: read again
		}
		if f.err != nil {
			return nil, f.err
		}
		// The read may have begun before a grant this call holds the
		// token of was made.
		return r.withTokenGrants(ctx, f.k), nil
	}
}

// refreshAlias reads the cached target of alias ref again in the
// background, unless a read of it is under way, as refresh does for keys.
// An alias found deleted is dropped.
func (r *Repo) refreshAlias(ref aliasRef) {
	r.flights.mu.Lock()
	if r.flights.aliases[ref] {
		r.flights.mu.Unlock()
		return
	}
	if r.flights.aliases == nil {
		r.flights.aliases = make(map[aliasRef]bool)
	}
	r.flights.aliases[ref] = true
	r.flights.mu.Unlock()
	go func() {
		defer func() {
			if p := recover(); p != nil {
				r.log.Error("panic reading an alias again in the background", "alias", ref.name, "panic", p)
			}
			r.flights.mu.Lock()
			delete(r.flights.aliases, ref)
			r.flights.mu.Unlock()
			if r.refreshed != nil {
				r.refreshed()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), r.cache.maxAge)
		defer cancel()
		r.readAlias(ctx, ref) // an error leaves the entry to its age
	}()
}

// refresh reads the cached key ref again in the background, unless a
// read of it is under way, so that the callers of a key in use keep
// being answered from the cache while its entry's age runs out. One read
// of a key in the background at a time: a change to any key advances the
// generation, and in a cluster changes come every few seconds (the last
// uses every node writes), so a read per generation would have each call
// after one start another read of the key whole while the last is under
// way, none of which lands.
func (r *Repo) refresh(key keyRef) {
	ref := flightRef{key, r.cache.generation()}
	f, lead := r.flights.joinRefresh(ref)
	if !lead {
		return
	}
	go func() {
		// A call's read that panics fails that call; this one has no
		// call to fail, and must not end the process.
		defer func() {
			if p := recover(); p != nil {
				r.log.Error("panic reading a key again in the background", "keyId", key.id, "panic", p)
			}
			r.flights.endRefresh(key)
			if r.refreshed != nil {
				r.refreshed()
			}
		}()
		// No longer than an entry is trusted: a read that takes longer
		// is of no use to the entry it was to replace.
		ctx, cancel := context.WithTimeout(context.Background(), r.cache.maxAge)
		defer cancel()
		r.fly(ctx, ref, f)
	}()
}
