package keyrepo

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openkms/kms/internal/changelog"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/store"
)

// Key is a key as the hot path uses it: an immutable snapshot of its
// record with every version of its material unsealed. A change to the key
// replaces the snapshot; it is never modified in place, so callers must
// not modify it either.
type Key struct {
	Rec      KeyRecord
	ARN      string
	Versions map[uint32]*Version
	Current  *Version       // nil: no material (an EXTERNAL key before import)
	Policy   *policy.Policy // the parsed key policy; nil allows nothing
	// Grants are all the key's grants, in a key from the cache; nil in a
	// key read WithoutCache, which reads only the grants a call asks for
	// (GranteeGrants) instead of every one of possibly 50,000.
	Grants []*GrantRecord

	byGrantee  map[string][]*GrantRecord                   // Grants by grantee ARN
	readGrants func(arns []string) ([]*GrantRecord, error) // set in a key read WithoutCache
	aliases    func() ([]string, error)                    // set in a key AsRecorded made
}

// AliasNames returns the names of the key's aliases, read in the
// transaction of a change to it, for a key AsRecorded made (ok), or the
// error of that read; a caller reads those of other keys from the store
// itself.
func (k *Key) AliasNames() (names []string, ok bool, err error) {
	if k.aliases == nil {
		return nil, false, nil
	}
	names, err = k.aliases()
	return names, true, err
}

// GranteeGrants returns the key's grants whose grantee is named by one of
// arns (a caller's ARN and its session's role; empty ones are skipped).
// Whether such a grant names that caller (its unique id) is for the caller
// to check: GrantRecord.IsGrantee.
func (k *Key) GranteeGrants(arns ...string) ([]*GrantRecord, error) {
	arns = slices.DeleteFunc(slices.Clone(arns), func(a string) bool { return a == "" })
	switch {
	case len(arns) == 0:
		return nil, nil
	case k.readGrants != nil:
		return k.readGrants(arns)
	case k.byGrantee == nil: // a key put together by hand: a stand-in, a test's
		var out []*GrantRecord
		for _, g := range k.Grants {
			if slices.Contains(arns, g.Grantee) {
				out = append(out, g)
			}
		}
		return out, nil
	}
	var out []*GrantRecord
	for _, a := range arns {
		out = append(out, k.byGrantee[a]...)
	}
	return out, nil
}

// indexGrants sets k's grants and their index by grantee.
func (k *Key) indexGrants(grants []*GrantRecord) {
	k.Grants = grants
	k.byGrantee = make(map[string][]*GrantRecord)
	for _, g := range grants {
		k.byGrantee[g.Grantee] = append(k.byGrantee[g.Grantee], g)
	}
}

// MaterialID is the id of the key's current material, or "".
func (k *Key) MaterialID() string {
	if k.Current == nil {
		return ""
	}
	return k.Current.MaterialID
}

// Version is one version of a key's material, in the form its spec uses:
// exactly one of Sym, Asym and MAC is set.
type Version struct {
	Sym        *keys.Symmetric
	Asym       *keys.Asymmetric
	MAC        *keys.HMAC
	MaterialID string
}

// cache holds live keys and alias targets. Entries are filled on a miss and
// dropped by every change that affects them. A fill races with a change:
// a reader may load the old state, then the writer commits and invalidates,
// then the reader inserts what it loaded. The change logs close that
// window: a fill is kept only if no change to its key (its record,
// versions or grants) or alias, and no flush, was invalidated since the
// read began. A change to another key or alias does not refuse it: on a
// cluster some key changes every few milliseconds (a grant, a tag, the
// last uses every node writes), and a read of a hot key with thousands of
// grants would seldom land.
//
// When the store is shared with other processes, their changes arrive as
// notifications (Repo.Changed); maxAge, if set, bounds how long an entry
// is trusted should a notification be lost.
//
// The cache holds at most max keys and max aliases, and the keys it holds
// take at most maxBytes as estimated (Key.memSize): a key holds its parsed
// policy and every grant it has, up to 50,000, and max keys that each had
// AWS's largest would take far more memory than the server has. Making
// room for a key, or for the grants a patch adds, evicts other keys, the
// largest first.
type cache struct {
	hits, misses atomic.Uint64 // of key lookups

	mu       sync.RWMutex
	keyLog   *changelog.Log[keyRef] // the changes to keys, and flushes
	aliasLog *changelog.Log[aliasRef]
	max      int
	maxAge   time.Duration // 0: entries live until invalidated
	// maxBytes bounds bytes, the estimated size of the keys held.
	maxBytes, bytes int64
	now             func() time.Time
	keys            map[keyRef]keyEntry
	aliases         map[aliasRef]aliasEntry
}

type keyEntry struct {
	k      *Key
	filled time.Time
	size   int64 // k.memSize(), once the entry is held
}

type aliasEntry struct {
	id     string
	filled time.Time
}

func newCache(max int, maxBytes int64, maxAge time.Duration, now func() time.Time) *cache {
	return &cache{max: max, maxBytes: maxBytes, maxAge: maxAge, now: now, keys: make(map[keyRef]keyEntry), aliases: make(map[aliasRef]aliasEntry),
		keyLog: changelog.New[keyRef](0), aliasLog: changelog.New[aliasRef](0)}
}

// keyGeneration is the generation of the changes to keys that a read of
// a key notes before it begins, for fillKey and keyChangedSince.
func (c *cache) keyGeneration() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.keyLog.Now()
}

// keyChangedSince reports whether a change to key ref, or a flush, was
// invalidated after generation gen (from keyGeneration): whether a read
// of ref that began at gen may be older than a change answered since.
func (c *cache) keyChangedSince(ref keyRef, gen uint64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.keyLog.ChangedSince(ref, gen)
}

// aliasGeneration is keyGeneration for a read of an alias.
func (c *cache) aliasGeneration() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.aliasLog.Now()
}

// refreshAge is how old a cached entry is when a read of it in the
// background is due: three quarters of its max age.
func refreshAge(maxAge time.Duration) time.Duration { return maxAge - maxAge/4 }

// fresh reports whether an entry filled at t may still be used.
func (c *cache) fresh(t time.Time) bool {
	return c.maxAge == 0 || c.now().Sub(t) < c.maxAge
}

// freshness reports whether an entry filled at t may still be used, and
// whether a read of it in the background is due, reading the clock once
// for both, and not at all when entries never expire.
func (c *cache) freshness(t time.Time) (fresh, due bool) {
	if c.maxAge == 0 {
		return true, false
	}
	age := c.now().Sub(t)
	return age < c.maxAge, age >= refreshAge(c.maxAge)
}

// keyRef names a key in the cache, aliasRef an alias: structs, so that a
// lookup on the hot path builds no string.
type keyRef struct{ region, id string }
type aliasRef struct{ account, region, name string }

// key returns the cached key ref, or nil, and whether it is past
// three quarters of its max age, when a read of it in the background is
// due (Repo.refresh): late enough that a key in steady use is read about
// once per max age, early enough for a read of thousands of grants to
// land before the age runs out.
func (c *cache) key(ref keyRef) (k *Key, due bool) {
	c.mu.RLock()
	e, ok := c.keys[ref]
	c.mu.RUnlock()
	fresh, due := c.freshness(e.filled)
	if !ok || !fresh {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	return e.k, due
}

// cached returns the cached key ref, or nil, as key does but without
// counting a hit or a miss: for a caller that counted its miss already.
func (c *cache) cached(ref keyRef) *Key {
	c.mu.RLock()
	e, ok := c.keys[ref]
	c.mu.RUnlock()
	if !ok || !c.fresh(e.filled) {
		return nil
	}
	return e.k
}

// alias returns the cached target of alias ref, whether there is one,
// and whether a read of it in the background is due, as key does.
func (c *cache) alias(ref aliasRef) (id string, ok, due bool) {
	c.mu.RLock()
	e, ok := c.aliases[ref]
	c.mu.RUnlock()
	fresh, due := c.freshness(e.filled)
	if !ok || !fresh {
		return "", false, false
	}
	return e.id, true, due
}

// dropAlias drops alias ref, found gone by a read that began at
// generation gen, unless a change to it came since.
func (c *cache) dropAlias(gen uint64, ref aliasRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.aliasLog.ChangedSince(ref, gen) {
		delete(c.aliases, ref)
	}
}

// stamp is the fill time of an entry whose load began at generation gen;
// the zero time when no entry expires.
func (c *cache) stamp() time.Time {
	if c.maxAge == 0 {
		return time.Time{}
	}
	return c.now()
}

// fillKey caches k, loaded from a snapshot taken after generation gen was
// read (keyGeneration) at start, unless a change to k or a flush was
// invalidated since.
func (c *cache) fillKey(gen uint64, start time.Time, k *Key) {
	ref := keyRef{k.Rec.Region, k.Rec.ID}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keyLog.ChangedSince(ref, gen) {
		return
	}
	c.setKey(ref, keyEntry{k: k, filled: start})
}

// setKey holds e as the entry of key ref, evicting other keys until it
// fits within max keys and maxBytes: for bytes, the largest first (see
// evictLargest); for the count, arbitrary ones. A key larger than
// maxBytes alone is not held. c.mu is held.
func (c *cache) setKey(ref keyRef, e keyEntry) {
	e.size = e.k.memSize()
	c.deleteKey(ref)
	if e.size > c.maxBytes {
		return
	}
	if c.bytes+e.size > c.maxBytes {
		c.evictLargest(c.bytes + e.size - c.maxBytes)
	}
	for id := range c.keys { // evict arbitrary entries
		if len(c.keys) < c.max {
			break
		}
		c.deleteKey(id)
	}
	c.keys[ref] = e
	c.bytes += e.size
}

// evictLargest evicts the largest keys held until need bytes are freed,
// so that the room a key with many grants takes comes from the other
// large keys first, and the many small keys of a usual working set stay
// (an arbitrary choice would mostly evict those, being most of the
// entries). It sorts the keys held: the bound is passed only by the fill
// of a large key, which costs far more to read. c.mu is held.
func (c *cache) evictLargest(need int64) {
	type sized struct {
		ref  keyRef
		size int64
	}
	all := make([]sized, 0, len(c.keys))
	for ref, e := range c.keys {
		all = append(all, sized{ref, e.size})
	}
	slices.SortFunc(all, func(a, b sized) int { return cmp.Compare(b.size, a.size) })
	for _, e := range all {
		if need <= 0 {
			return
		}
		need -= e.size
		c.deleteKey(e.ref)
	}
}

// deleteKey drops the entry of key ref, if any. c.mu is held.
func (c *cache) deleteKey(ref keyRef) {
	if e, ok := c.keys[ref]; ok {
		delete(c.keys, ref)
		c.bytes -= e.size
	}
}

// fillAlias caches the target id of alias ref, read after generation gen
// was read (aliasGeneration) at start, unless a change to the alias or a
// flush was invalidated since.
func (c *cache) fillAlias(gen uint64, start time.Time, ref aliasRef, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aliasLog.ChangedSince(ref, gen) {
		return
	}
	if len(c.aliases) >= c.max {
		for a := range c.aliases {
			delete(c.aliases, a)
			break
		}
	}
	c.aliases[ref] = aliasEntry{id, start}
}

// invalidate drops a key (none if its id is empty) and aliases, and
// refuses the fills of the reads of each that began before.
func (c *cache) invalidate(key keyRef, aliasRefs ...aliasRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if key.id != "" {
		c.keyLog.Changed(key)
		c.deleteKey(key)
	}
	for _, a := range aliasRefs {
		c.aliasLog.Changed(a)
		delete(c.aliases, a)
	}
}

// patchGrants removes the grants ids from a cached key (none if it is not
// cached) and adds present, keeping the rest of the entry: its material
// stays warm. Like invalidate it records a change to the key, so that a
// fill that read the grants before the change does not land.
func (c *cache) patchGrants(ref keyRef, ids []string, present []*GrantRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keyLog.Changed(ref)
	if e, ok := c.keys[ref]; ok {
		c.setKey(ref, e.patched(func(k *Key) *Key {
			k.replaceGrants(ids, present)
			return k
		}))
	}
}

// patched is e with what patch makes of a copy of its key, filled when
// e was.
func (e keyEntry) patched(patch func(*Key) *Key) keyEntry {
	k := *e.k
	return keyEntry{k: patch(&k), filled: e.filled}
}

// beginPatch starts a patch of a cached key from records
// read after the change: like invalidate it records a change to the key,
// so that a fill that read the grants before the change does not land,
// but it keeps the entry. It returns the cached key (even one past its age),
// for patchFrom; nil when the key is not cached, and there is nothing to
// patch.
func (c *cache) beginPatch(ref keyRef) *Key {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keyLog.Changed(ref)
	if e, ok := c.keys[ref]; ok {
		return e.k
	}
	return nil
}

// patchFrom replaces a cached key by what patch makes of a copy of it,
// keeping the entry's age, if the entry is still was (from beginPatch):
// then what was read since beginPatch is at least as new as every record
// it was made of. Another fill or patch of the key in between might have
// been newer than what was read, so the key is dropped instead, as it is
// when it was dropped meanwhile. It reports whether it patched.
func (c *cache) patchFrom(ref keyRef, was *Key, patch func(*Key) *Key) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keyLog.Changed(ref)
	e, ok := c.keys[ref]
	if !ok || e.k != was {
		c.deleteKey(ref)
		return false
	}
	c.setKey(ref, e.patched(patch))
	return true
}

// flush drops every entry, and refuses the fills of every read that
// began before.
func (c *cache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keyLog.Flushed()
	c.aliasLog.Flushed()
	clear(c.keys)
	c.bytes = 0
	clear(c.aliases)
}

// Load returns the live key with id in region, from the cache or the
// store. A key that does not exist is store.ErrNotFound.
//
// Callers that miss the cache together share one read of the store
// (flight.go), and a key in use past three quarters of its max age is
// read again in the background, so that a hot key is not read whole by
// every caller at once each time its age runs out.
func (r *Repo) Load(ctx context.Context, region, id string) (*Key, error) {
	if Uncached(ctx) {
		return r.read(ctx, region, id, true)
	}
	ref := keyRef{region, id}
	if k, due := r.cache.key(ref); k != nil {
		if due {
			r.refresh(ref)
		}
		return r.withTokenGrants(ctx, k), nil
	}
	return r.loadShared(ctx, ref)
}

// read reads the key with id in region from the store and unseals it. A
// key read uncached gets no grants: it reads the grants a call needs as
// it needs them, from the store as it is then.
func (r *Repo) read(ctx context.Context, region, id string, uncached bool) (*Key, error) {
	var rec KeyRecord
	var vers []VersionRecord
	var grants []*GrantRecord
	err := r.store.View(ctx, func(tx store.Tx) error {
		vers, grants = vers[:0], grants[:0]
		if err := store.GetJSON(tx, KeyKey(region, id), &rec); err != nil {
			return err
		}
		err := tx.Scan(VersionPrefix(region, id), nil, func(_, v []byte) (bool, error) {
			var vr VersionRecord
			if err := UnmarshalRecord(v, &vr); err != nil {
				return false, err
			}
			vers = append(vers, vr)
			return true, nil
		})
		if err != nil || uncached {
			return err
		}
		return tx.Scan(GrantPrefix(region, id), nil, func(_, v []byte) (bool, error) {
			g := new(GrantRecord)
			if err := UnmarshalRecord(v, g); err != nil {
				return false, err
			}
			grants = append(grants, g)
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	k, err := r.unseal(rec, vers)
	if err != nil {
		return nil, err
	}
	if uncached {
		k.readGrants = func(arns []string) ([]*GrantRecord, error) { return r.granteeGrants(ctx, region, id, arns) }
		return k, nil
	}
	k.indexGrants(grants)
	return k, nil
}

// granteeGrants reads the grants of a key whose grantee is one of arns.
// Only records that hold one of those names as JSON writes it are
// decoded; every grant record is written by encoding/json.
func (r *Repo) granteeGrants(ctx context.Context, region, id string, arns []string) ([]*GrantRecord, error) {
	var out []*GrantRecord
	err := r.store.View(ctx, func(tx store.Tx) error {
		var err error
		out, err = granteeGrantsIn(tx, region, id, arns)
		return err
	})
	return out, err
}

// granteeGrantsIn is granteeGrants read in tx.
func granteeGrantsIn(tx store.Tx, region, id string, arns []string) ([]*GrantRecord, error) {
	names := make([][]byte, len(arns))
	for i, a := range arns {
		names[i], _ = json.Marshal(a)
	}
	var out []*GrantRecord
	err := tx.Scan(GrantPrefix(region, id), nil, func(_, v []byte) (bool, error) {
		if !slices.ContainsFunc(names, func(n []byte) bool { return bytes.Contains(v, n) }) {
			return true, nil
		}
		g := new(GrantRecord)
		if err := UnmarshalRecord(v, g); err != nil {
			return false, err
		}
		if slices.Contains(arns, g.Grantee) {
			out = append(out, g)
		}
		return true, nil
	})
	return out, err
}

func (r *Repo) unseal(rec KeyRecord, vers []VersionRecord) (*Key, error) {
	id, ok := keys.ParseID(rec.ID)
	if !ok {
		return nil, errors.New("key record with a malformed id " + rec.ID)
	}
	k := &Key{Rec: rec, ARN: KeyARN(rec.Region, rec.Account, rec.ID), Versions: make(map[uint32]*Version, len(vers))}
	for _, vr := range vers {
		if vr.Sealed == nil || vr.PendingRotation {
			continue // imported material that was deleted or expired, or is not the key's yet
		}
		material, err := openMaterial(r.root, &rec, rec.Region, vr.Version, vr.Sealed)
		if err != nil {
			return nil, err
		}
		lv := &Version{MaterialID: vr.MaterialID}
		switch {
		case rec.KeySpec == keys.SymmetricDefault:
			lv.Sym, err = keys.NewSymmetric(id, vr.Version, material)
		case keys.IsHMAC(rec.KeySpec):
			lv.MAC, err = keys.NewHMAC(rec.KeySpec, material)
		default:
			lv.Asym, err = keys.ParseAsymmetric(rec.KeySpec, material)
		}
		clear(material)
		if err != nil {
			return nil, fmt.Errorf("key material of %s: %w", rec.ID, err)
		}
		k.Versions[vr.Version] = lv
	}
	k.Current = k.Versions[rec.CurrentVersion]
	k.Policy = r.parsePolicy(&rec)
	return k, nil
}

// parsePolicy is the policy of a key record, bound to the principals it
// names; nil, which allows nothing, if it does not parse.
func (r *Repo) parsePolicy(rec *KeyRecord) *policy.Policy {
	pol, err := policy.ParseStoredResource(rec.Policy)
	if err != nil {
		// Policies are validated before they are stored; one that no
		// longer parses allows nothing rather than everything.
		r.log.Error("stored key policy does not parse", "keyId", rec.ID, "err", err)
		return nil
	}
	if rec.PolicyPrincipalIDs != nil {
		pol.Bind(rec.PolicyPrincipalIDs)
	}
	return pol
}

// AsRecorded returns k as rec, a record of the same key that the
// transaction tx (one that changes the key) read, says it is now, to
// authorize the change against again: k with rec's record and policy,
// its grants and alias names read in tx, which must not wait for another
// transaction (on PostgreSQL, for another connection of a pool its own
// may have emptied). The material stays k's. It reports whether rec
// holds anything an authorization reads that k's record does not: the
// policy, the principals it is bound to, or the tags.
func (r *Repo) AsRecorded(tx store.Tx, k *Key, rec *KeyRecord) (*Key, bool) {
	out := *k
	out.Grants, out.byGrantee = nil, nil
	out.readGrants = func(arns []string) ([]*GrantRecord, error) { return granteeGrantsIn(tx, rec.Region, rec.ID, arns) }
	out.aliases = func() ([]string, error) {
		var names []string
		prefix := KeyAliasPrefix(rec.Region, rec.ID)
		err := tx.Scan(prefix, nil, func(k, _ []byte) (bool, error) {
			names = append(names, string(k[len(prefix):]))
			return true, nil
		})
		return names, err
	}
	if rec.Policy == k.Rec.Policy && maps.Equal(rec.PolicyPrincipalIDs, k.Rec.PolicyPrincipalIDs) && slices.Equal(rec.Tags, k.Rec.Tags) {
		return &out, false
	}
	out.Rec = *rec
	out.Policy = r.parsePolicy(rec)
	return &out, true
}

// LookupAlias returns the id of the key an alias of account in region
// names, or store.ErrNotFound.
func (r *Repo) LookupAlias(ctx context.Context, account, region, name string) (string, error) {
	ref := aliasRef{account, region, name}
	if id, ok, due := r.cache.alias(ref); ok && !Uncached(ctx) {
		if due {
			r.refreshAlias(ref)
		}
		return id, nil
	}
	return r.readAlias(ctx, ref)
}

// readAlias reads the target of alias ref from the store and caches it,
// if no change to the alias came since the read began.
func (r *Repo) readAlias(ctx context.Context, ref aliasRef) (string, error) {
	gen, start := r.cache.aliasGeneration(), r.cache.stamp()
	var rec AliasRecord
	err := r.store.View(ctx, func(tx store.Tx) error { return store.GetJSON(tx, AliasKey(ref.account, ref.region, ref.name), &rec) })
	if errors.Is(err, store.ErrNotFound) {
		r.cache.dropAlias(gen, ref)
	}
	if err != nil {
		return "", err
	}
	r.cache.fillAlias(gen, start, ref, rec.KeyID)
	return rec.KeyID, nil
}

// UnmarshalRecord decodes a stored record, naming a corrupt one as such.
func UnmarshalRecord(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return errors.New("corrupt record: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// CacheStats returns how many key lookups the cache answered, and how
// many it did not (each of those read the store), since the repository began.
func (r *Repo) CacheStats() (hits, misses uint64) {
	return r.cache.hits.Load(), r.cache.misses.Load()
}
