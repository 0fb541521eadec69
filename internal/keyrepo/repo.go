// Package keyrepo is the key repository: the records of keys, their
// material versions, aliases and grants in the store (records.go), the
// cache that keeps keys unsealed in memory so that the hot path does no
// storage access once a key is warm (cache.go; the reads that callers
// missing it share, and those of keys in use before their age runs out,
// in flight.go), and the resolution of key identifiers — ids, key ARNs,
// alias names and alias ARNs — to keys (resolve.go). It decides nothing
// about who may use a key: that is internal/authz's, and what an operation
// does with it is the service's.
//
// Key material is sealed under the root key with the record's own name as
// additional data; the repository is the one place of the server that
// seals and opens it (internal/rekey rewraps it, with every other sealed
// value, when the root key is rotated). The cache is per process: when several processes share a store, each
// learns of the others' changes through Changed, and CacheMaxAge bounds
// staleness should a notification be lost.
package keyrepo

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// Config holds a Repo's dependencies.
type Config struct {
	Store   store.Store
	RootKey *keys.RootKey
	Region  string           // the default region: of records stored before keys had regions
	Now     func() time.Time // defaults to time.Now
	Logger  *slog.Logger     // defaults to slog.Default()
	// CacheSize bounds the number of keys held unsealed (default 10000).
	CacheSize int
	// CacheBytes bounds the memory the keys held unsealed take, as
	// estimated from above (size.go), all together (DefaultCacheBytes if
	// not positive).
	CacheBytes int64
	// CacheMaxAge, if positive, is how long a cached key or alias is used
	// before it is read again.
	CacheMaxAge time.Duration
	// ChangeStore, if set, is the store Changed reads the changed records
	// from: the same records as Store's, through connections no call
	// holds, so that calls waiting on the database (for a record another
	// client keeps locked) do not hold up the news of changes, which
	// Changed takes one at a time. Default: Store.
	ChangeStore store.Store
}

// DefaultCacheBytes is how much memory the cached keys take together by
// default, as estimated from above (size.go): room for the 10,000 keys of
// CacheSize with policies of up to 3 KiB and a few grants each, while
// keys near AWS's limits (a 32 KiB policy, 50,000 grants) share it a few
// dozen at a time.
const DefaultCacheBytes = 1 << 30

// Repo is the key repository. It is safe for concurrent use.
type Repo struct {
	store store.Store
	// changeStore is Config.ChangeStore, or store.
	changeStore store.Store
	root        *keys.RootKey
	region      string
	now         func() time.Time
	log         *slog.Logger
	cache       *cache
	// flights are the reads of keys under way that callers share.
	flights flights
	// refreshed, if set, is called after each read of a key in the
	// background (a test's).
	refreshed func()
}

// New returns a Repo.
func New(cfg Config) (*Repo, error) {
	if cfg.Store == nil || cfg.RootKey == nil || cfg.Region == "" {
		return nil, errors.New("keyrepo: Store, RootKey and Region are required")
	}
	r := &Repo{store: cfg.Store, changeStore: cfg.ChangeStore, root: cfg.RootKey, region: cfg.Region, now: cfg.Now, log: cfg.Logger}
	if r.changeStore == nil {
		r.changeStore = r.store
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	size := cfg.CacheSize
	if size <= 0 {
		size = 10000
	}
	bytes := cfg.CacheBytes
	if bytes <= 0 {
		bytes = DefaultCacheBytes
	}
	r.cache = newCache(size, bytes, cfg.CacheMaxAge, r.now)
	return r, nil
}

// Region is the default region: the one records stored before keys had
// regions were moved to.
func (r *Repo) Region() string { return r.region }

// KeyARN is the ARN of key id of account in region.
func KeyARN(region, account, id string) string {
	return "arn:aws:kms:" + region + ":" + account + ":key/" + id
}

// AliasARN is the ARN of alias name (alias/...) of account in region.
func AliasARN(region, account, name string) string {
	return "arn:aws:kms:" + region + ":" + account + ":" + name
}

// Invalidate drops a key (keyID, "" for none) in region and aliases of an
// account in region from the cache; every change to them calls it once
// committed.
func (r *Repo) Invalidate(region, keyID, account string, aliasNames ...string) {
	refs := make([]aliasRef, len(aliasNames))
	for i, n := range aliasNames {
		refs[i] = aliasRef{account, region, n}
	}
	r.cache.invalidate(keyRef{region, keyID}, refs...)
}

// GrantAdded tells the repository that g was committed: a cached key gains
// it instead of being read again with all its grants. Call it after the
// commit. The grant is read from the store, not taken from g: from its
// commit on its id is in ListGrants, and another call may have revoked or
// retired it before this one runs; a grant patched in from memory would
// then be back in the cached key for good. A cached key whose grant
// cannot be read is dropped, to be read again whole.
func (r *Repo) GrantAdded(g *GrantRecord) {
	r.patchFromStore(r.store, keyRef{g.Region, g.KeyID}, &keyChange{grants: []string{g.ID}})
}

// GrantRemoved tells the repository that a key's grant was deleted.
func (r *Repo) GrantRemoved(region, keyID, grantID string) {
	r.cache.patchGrants(keyRef{region, keyID}, []string{grantID}, nil)
}

// Expired reports whether a key's deletion date has passed: it is gone for
// every purpose even before the sweeper removes its records.
func (r *Repo) Expired(rec *KeyRecord) bool {
	return rec.State == StatePendingDeletion && rec.DeletionDate != nil && !r.now().Before(*rec.DeletionDate)
}

// MaterialExpired reports whether a key's imported material has passed its
// ValidTo: it is unusable from that instant, before the background job
// deletes it.
func (r *Repo) MaterialExpired(rec *KeyRecord) bool {
	return rec.ValidTo != nil && !r.now().Before(*rec.ValidTo)
}

// StateOf is a key's state as operations see it now: an enabled or
// disabled key whose imported material has expired is PendingImport.
func (r *Repo) StateOf(rec *KeyRecord) State {
	if r.MaterialExpired(rec) && (rec.State == StateEnabled || rec.State == StateDisabled) {
		return StatePendingImport
	}
	return rec.State
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
