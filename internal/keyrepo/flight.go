package keyrepo

import (
	"context"
	"errors"
	"sync"
	"time"
)

// A flight is one read of a key from the store that the callers who miss
// the cache share, instead of each reading the key whole (up to 50,000
// grants) at once: what happens to a hot key of a cluster node each time
// its entry's max age runs out, and to every key after a notification
// empties the cache.
//
// A caller may join a read only if no change to that key, and no flush,
// was invalidated since the read began. A caller that comes after such a
// change starts a read of its own, so that no caller is answered from a
// snapshot older than a change answered before it began. Changes to other
// keys do not part callers: on a cluster some key changes every few
// milliseconds.
//
// Nor may a caller be answered from a read that began more than the max
// age before it and before the call itself (a store slower than the max
// age): a change made meanwhile by another process, its notification
// lost, would be honoured later than the max age promises. It reads
// again instead, and that read begins after the call did.
type flight struct {
	gen   uint64        // the generation of the changes to keys the read began at
	done  chan struct{} // closed when start, k and err are set
	start time.Time     // when the read began, as the cache stamps it
	k     *Key
	err   error
}

// flights are the reads under way: of keys, the newest of each, and of
// keys and aliases in the background.
type flights struct {
	mu      sync.Mutex
	m       map[keyRef]*flight
	keys    map[keyRef]bool // keys read in the background, whether or not overtaken by a change
	aliases map[aliasRef]bool
}

// errFlightAborted is what the callers sharing a read get if it ended
// without a result (its reader panicked).
var errFlightAborted = errors.New("keyrepo: the shared read of the key ended without a result")

// current returns the read of key under way that no change to key
// overtook (c says), or nil. fs.mu is held.
func (fs *flights) current(key keyRef, c *cache) *flight {
	if f := fs.m[key]; f != nil && !c.keyChangedSince(key, f.gen) {
		return f
	}
	return nil
}

// start records a new read of key, at the generation c is at now, as the
// one to join. fs.mu is held.
func (fs *flights) start(key keyRef, c *cache) *flight {
	if fs.m == nil {
		fs.m = make(map[keyRef]*flight)
	}
	f := &flight{gen: c.keyGeneration(), done: make(chan struct{}), err: errFlightAborted}
	fs.m[key] = f
	return f
}

// join returns the read of key under way that no change to key overtook,
// or a new one that the caller must make (lead).
func (fs *flights) join(key keyRef, c *cache) (f *flight, lead bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.current(key, c); f != nil {
		return f, false
	}
	return fs.start(key, c), true
}

// joinRefresh returns a new read of key for a read in the background,
// unless one of key is under way: a read in the background, even one a
// change overtook (which will not land), or a caller's that none did.
func (fs *flights) joinRefresh(key keyRef, c *cache) (f *flight, lead bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.keys[key] || fs.current(key, c) != nil {
		return nil, false
	}
	if fs.keys == nil {
		fs.keys = make(map[keyRef]bool)
	}
	fs.keys[key] = true
	return fs.start(key, c), true
}

// endRefresh records that the read in the background of key ended.
func (fs *flights) endRefresh(key keyRef) {
	fs.mu.Lock()
	delete(fs.keys, key)
	fs.mu.Unlock()
}

// land ends the read f of key: it is no longer joined (a newer read of
// key that a change made start stays), and its callers are told.
func (fs *flights) land(key keyRef, f *flight) {
	fs.mu.Lock()
	if fs.m[key] == f {
		delete(fs.m, key)
	}
	fs.mu.Unlock()
	close(f.done)
}

// fly makes the read f of key, and caches what it read if no change to
// key was invalidated since f's generation.
func (r *Repo) fly(ctx context.Context, key keyRef, f *flight) {
	defer r.flights.land(key, f)
	start := r.cache.stamp()
	f.start = start
	k, err := r.read(ctx, key.region, key.id, false)
	if err == nil {
		r.cache.fillKey(f.gen, start, k)
	}
	f.k, f.err = k, err
}

// loadShared reads the key ref for a caller that missed the cache, or
// waits for the read of it under way that no change to it overtook.
func (r *Repo) loadShared(ctx context.Context, key keyRef) (*Key, error) {
	began := r.cache.stamp()
	for {
		f, lead := r.flights.join(key, r.cache)
		if lead {
			// A read that landed since this caller missed the cache, or
			// since the read it waited for failed it, filled the entry
			// before it landed: callers waiting for a read whose caller
			// went away do not each read the key whole.
			if k := r.cache.cached(key); k != nil {
				f.start, f.k, f.err = r.cache.stamp(), k, nil
				r.flights.land(key, f)
				return r.withTokenGrants(ctx, k), nil
			}
			r.fly(ctx, key, f)
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
// of a key in the background at a time: one that a change to the key
// overtook will not land, and a key that changes often would otherwise
// have each call after a change start another read of it whole while the
// last is under way.
func (r *Repo) refresh(key keyRef) {
	f, lead := r.flights.joinRefresh(key, r.cache)
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
		r.fly(ctx, key, f)
	}()
}
