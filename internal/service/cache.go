package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

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
type cache struct {
	mu      sync.RWMutex
	gen     uint64
	max     int
	keys    map[string]*liveKey
	aliases map[string]string // account + "/" + alias name -> key id
}

func newCache(max int) *cache {
	return &cache{max: max, keys: make(map[string]*liveKey), aliases: make(map[string]string)}
}

func (c *cache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

func (c *cache) key(id string) *liveKey {
	c.mu.RLock()
	k := c.keys[id]
	c.mu.RUnlock()
	return k
}

func (c *cache) alias(account, name string) (string, bool) {
	c.mu.RLock()
	id, ok := c.aliases[account+"/"+name]
	c.mu.RUnlock()
	return id, ok
}

func (c *cache) fillKey(gen uint64, k *liveKey) {
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
	c.keys[k.rec.ID] = k
}

func (c *cache) fillAlias(gen uint64, account, name, id string) {
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
	c.aliases[account+"/"+name] = id
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

// loadKey returns the live key with id, from the cache or the store.
// A key that does not exist is store.ErrNotFound.
func (s *Service) loadKey(ctx context.Context, id string) (*liveKey, error) {
	if k := s.cache.key(id); k != nil {
		return k, nil
	}
	gen := s.cache.generation()
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
	s.cache.fillKey(gen, k)
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
		case rec.KeySpec == symmetricDefault:
			lv.sym, err = keys.NewSymmetric(id, vr.Version, material)
		case isHMAC(rec.KeySpec):
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
	gen := s.cache.generation()
	var rec aliasRecord
	if err := s.store.View(ctx, func(tx store.Tx) error { return getJSON(tx, aliasKey(account, name), &rec) }); err != nil {
		return "", err
	}
	s.cache.fillAlias(gen, account, name, rec.KeyID)
	return rec.KeyID, nil
}

func unmarshalRecord(b []byte, v any) error {
	if err := jsonUnmarshal(b, v); err != nil {
		return errors.New("corrupt record: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}
