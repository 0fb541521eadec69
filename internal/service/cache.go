package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/store"
)

// liveKey is a key as the hot path uses it: an immutable snapshot of its
// record with every version of its material unsealed. A change to the key
// replaces the snapshot; it is never modified in place.
type liveKey struct {
	rec      keyRecord
	arn      string
	versions map[uint32]*liveVersion
	current  *liveVersion
	policy   *policy.Policy // the parsed key policy
	grants   []*grantRecord
}

// liveVersion is one version of a key's material, in the form its spec
// uses: exactly one of sym, asym and mac is set.
type liveVersion struct {
	sym        *keys.Symmetric
	asym       *keys.Asymmetric
	mac        *keys.HMAC
	materialID string
}

// cache holds live keys and alias targets. Entries are filled on a miss and
// dropped by every change that affects them. A fill races with a change:
// a reader may load the old state, then the writer commits and invalidates,
// then the reader inserts what it loaded. The generation counter closes that
// window: a fill is kept only if no invalidation happened since it began.
//
// When the store is shared with other processes, their changes arrive as
// notifications (Service.Changed); maxAge, if set, bounds how long an entry
// is trusted should a notification be lost.
type cache struct {
	hits, misses atomic.Uint64 // of key lookups

	mu      sync.RWMutex
	gen     uint64
	max     int
	maxAge  time.Duration // 0: entries live until invalidated
	now     func() time.Time
	keys    map[string]keyEntry
	aliases map[string]aliasEntry // account + "/" + alias name
}

type keyEntry struct {
	k      *liveKey
	filled time.Time
}

type aliasEntry struct {
	id     string
	filled time.Time
}

func newCache(max int, maxAge time.Duration, now func() time.Time) *cache {
	return &cache{max: max, maxAge: maxAge, now: now, keys: make(map[string]keyEntry), aliases: make(map[string]aliasEntry)}
}

func (c *cache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// fresh reports whether an entry filled at t may still be used.
func (c *cache) fresh(t time.Time) bool {
	return c.maxAge == 0 || c.now().Sub(t) < c.maxAge
}

func (c *cache) key(id string) *liveKey {
	c.mu.RLock()
	e, ok := c.keys[id]
	c.mu.RUnlock()
	if !ok || !c.fresh(e.filled) {
		c.misses.Add(1)
		return nil
	}
	c.hits.Add(1)
	return e.k
}

func (c *cache) alias(account, name string) (string, bool) {
	c.mu.RLock()
	e, ok := c.aliases[account+"/"+name]
	c.mu.RUnlock()
	if !ok || !c.fresh(e.filled) {
		return "", false
	}
	return e.id, true
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
// read at start.
func (c *cache) fillKey(gen uint64, start time.Time, k *liveKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.keys) >= c.max {
		for id := range c.keys { // evict an arbitrary entry
			delete(c.keys, id)
			break
		}
	}
	c.keys[k.rec.ID] = keyEntry{k, start}
}

func (c *cache) fillAlias(gen uint64, start time.Time, account, name, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.aliases) >= c.max {
		for a := range c.aliases {
			delete(c.aliases, a)
			break
		}
	}
	c.aliases[account+"/"+name] = aliasEntry{id, start}
}

// invalidate drops a key and any aliases of an account (pass "" for none).
func (c *cache) invalidate(keyID string, account string, aliasNames ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if keyID != "" {
		delete(c.keys, keyID)
	}
	for _, n := range aliasNames {
		delete(c.aliases, account+"/"+n)
	}
}

// flush drops every entry.
func (c *cache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.keys)
	clear(c.aliases)
}

// Changed tells the service that other processes sharing its store changed
// the records named (store keys); nil means anything may have changed. It
// drops the cache entries those records feed, so that the next request
// reads them again.
func (s *Service) Changed(records [][]byte) {
	if records == nil {
		s.cache.flush()
		return
	}
	for _, r := range records {
		rec := string(r)
		kind, rest, _ := strings.Cut(rec, "/")
		switch kind {
		case "key", "keyver", "grant":
			id, _, _ := strings.Cut(rest, "/")
			s.cache.invalidate(id, "")
		case "alias":
			account, name, _ := strings.Cut(rest, "/")
			s.cache.invalidate("", account, name)
		}
	}
}

// loadKey returns the live key with id, from the cache or the store.
// A key that does not exist is store.ErrNotFound.
func (s *Service) loadKey(ctx context.Context, id string) (*liveKey, error) {
	if k := s.cache.key(id); k != nil {
		return k, nil
	}
	gen, start := s.cache.generation(), s.cache.stamp()
	var rec keyRecord
	var vers []versionRecord
	var grants []*grantRecord
	err := s.store.View(ctx, func(tx store.Tx) error {
		vers, grants = vers[:0], grants[:0]
		if err := getJSON(tx, keyKey(id), &rec); err != nil {
			return err
		}
		err := tx.Scan(versionPrefix(id), nil, func(_, v []byte) (bool, error) {
			var vr versionRecord
			if err := unmarshalRecord(v, &vr); err != nil {
				return false, err
			}
			vers = append(vers, vr)
			return true, nil
		})
		if err != nil {
			return err
		}
		return tx.Scan(grantPrefix(id), nil, func(_, v []byte) (bool, error) {
			g := new(grantRecord)
			if err := unmarshalRecord(v, g); err != nil {
				return false, err
			}
			grants = append(grants, g)
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	k, err := s.unseal(rec, vers)
	if err != nil {
		return nil, err
	}
	k.grants = grants
	s.cache.fillKey(gen, start, k)
	return k, nil
}

func (s *Service) unseal(rec keyRecord, vers []versionRecord) (*liveKey, error) {
	id, ok := keys.ParseID(rec.ID)
	if !ok {
		return nil, errors.New("key record with a malformed id " + rec.ID)
	}
	k := &liveKey{rec: rec, arn: s.keyARN(rec.Account, rec.ID), versions: make(map[uint32]*liveVersion, len(vers))}
	for _, vr := range vers {
		if vr.Sealed == nil {
			continue // imported material that was deleted or expired
		}
		material, err := s.root.Open(materialAAD(rec.ID, vr.Version), vr.Sealed)
		if err != nil {
			return nil, errors.New("key material of " + rec.ID + " does not open under the root key")
		}
		lv := &liveVersion{materialID: vr.MaterialID}
		switch {
		case rec.KeySpec == keys.SymmetricDefault:
			lv.sym, err = keys.NewSymmetric(id, vr.Version, material)
		case keys.IsHMAC(rec.KeySpec):
			lv.mac, err = keys.NewHMAC(rec.KeySpec, material)
		default:
			lv.asym, err = keys.ParseAsymmetric(rec.KeySpec, material)
		}
		clear(material)
		if err != nil {
			return nil, fmt.Errorf("key material of %s: %w", rec.ID, err)
		}
		k.versions[vr.Version] = lv
	}
	k.current = k.versions[rec.CurrentVersion]
	pol, err := policy.ParseResource(rec.Policy)
	if err != nil {
		// Policies are validated before they are stored; one that no
		// longer parses allows nothing rather than everything.
		s.log.Error("stored key policy does not parse", "keyId", rec.ID, "err", err)
	} else {
		k.policy = pol
	}
	return k, nil
}

// lookupAlias returns the id of the key an alias names, or store.ErrNotFound.
func (s *Service) lookupAlias(ctx context.Context, account, name string) (string, error) {
	if id, ok := s.cache.alias(account, name); ok {
		return id, nil
	}
	gen, start := s.cache.generation(), s.cache.stamp()
	var rec aliasRecord
	if err := s.store.View(ctx, func(tx store.Tx) error { return getJSON(tx, aliasKey(account, name), &rec) }); err != nil {
		return "", err
	}
	s.cache.fillAlias(gen, start, account, name, rec.KeyID)
	return rec.KeyID, nil
}

func unmarshalRecord(b []byte, v any) error {
	if err := jsonUnmarshal(b, v); err != nil {
		return errors.New("corrupt record: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

// KeyCacheStats returns how many key lookups the cache answered, and how
// many it did not (each of those read the store), since the service began.
func (s *Service) KeyCacheStats() (hits, misses uint64) {
	return s.cache.hits.Load(), s.cache.misses.Load()
}
