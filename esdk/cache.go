package esdk

import (
	"container/list"
	"context"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"
)

const (
	// MaxCacheMessages is the largest CacheLimits.MaxMessages, and its
	// default: 2^32 messages, as in the AWS Encryption SDKs.
	MaxCacheMessages = 1 << 32
	// MaxCacheBytes is the largest CacheLimits.MaxBytes, and its default:
	// 2^63 - 1 bytes, as in the AWS Encryption SDKs.
	MaxCacheBytes = 1<<63 - 1
	// DefaultCacheCapacity is the CacheLimits.Capacity used when it is
	// zero.
	DefaultCacheCapacity = 1000
)

// CacheLimits are the security thresholds of a CachingKeyring, those of
// the AWS Encryption SDK's caching cryptographic materials manager.
type CacheLimits struct {
	// MaxAge is how long an entry may be used after it is added to the
	// cache. It is required: NewCachingKeyring panics unless it is
	// positive.
	MaxAge time.Duration
	// MaxMessages is how many messages one cached data key may encrypt,
	// the first included: 1 to MaxCacheMessages, MaxCacheMessages if zero.
	MaxMessages uint64
	// MaxBytes is how many bytes of plaintext one cached data key may
	// encrypt, counted as the EncryptOptions.MaxPlaintextLength of each
	// message: up to MaxCacheBytes, MaxCacheBytes if zero.
	MaxBytes uint64
	// Capacity is how many entries, for encryption and decryption
	// together, the cache holds; the least recently used go first.
	// DefaultCacheCapacity if zero.
	Capacity int
}

// CachingKeyring is a Keyring that reuses the data keys of another, the
// keyring counterpart of the AWS Encryption SDK's caching cryptographic
// materials manager. It saves a call to the inner keyring (to KMS, say)
// for each of many small messages, at the price of encrypting several
// messages under one data key and of keeping plaintext data keys in
// memory. Use the smallest limits that meet your needs.
//
// GenerateDataKey returns a cached data key, with the encrypted data keys
// it came with, for the same suite and encryption context, while the entry
// is younger than MaxAge and has encrypted fewer than MaxMessages messages
// and, with this message, no more than MaxBytes bytes. A data key is never
// used beyond these limits: an entry that would exceed one is evicted and
// a new data key is generated. The first message of a data key counts
// towards its limits; a message that alone reaches MaxBytes gets a data key
// that is not cached. It bypasses the cache, as the AWS SDKs do, when
//   - the length of the plaintext is unknown: NewEncrypter passes
//     EncryptOptions.MaxPlaintextLength to the keyring, and the encrypter
//     fails rather than write more, so that bytes can be counted. A
//     streaming caller can give an upper bound; it is what is counted.
//   - the suite is signed (SuiteCommitKeyECDSAP384): every signed message
//     has its own signing key, whose public key is in the encryption
//     context, so no two messages share a cache entry. (The AWS SDKs
//     cache the signing key with the data key; this package does not.)
//
// DecryptDataKey returns a cached data key for the same suite, encrypted
// data keys (in any order) and encryption context, while the entry is
// younger than MaxAge. Such a key is still checked against the message's
// key commitment and header tag. A cached key outlives a change in the
// inner keyring's permissions (a KMS key disabled, a grant revoked) by up
// to MaxAge.
//
// Entries are keyed by a SHA-512 hash of the suite, the encryption context
// (serialized as in the header) and, for decryption, the sorted hashes of
// the encrypted data keys, after Appendix A of the specification's
// framework/caching-cmm.md. Each CachingKeyring has its own cache, which
// is therefore its own partition: two keyrings never share entries. Only
// failures are not cached: the inner keyring's errors are returned as they
// are, and so is a data key of another length than the suite's.
//
// Evicted entries (expired, used up, least recently used beyond Capacity,
// or replaced) have their plaintext data key zeroed; callers get copies.
// Expired entries are evicted on the next call, or by Purge: the keyring
// starts no goroutine.
//
// A CachingKeyring is safe for concurrent use. It calls the inner keyring
// without holding a lock, from the calling goroutines, so an inner keyring
// shared that way must be safe for concurrent use too. Concurrent misses
// for the same entry each call the inner keyring; the last one's data key
// is the one kept.
type CachingKeyring struct {
	inner       Keyring
	maxAge      time.Duration
	maxMessages uint64
	maxBytes    uint64
	capacity    int
	now         func() time.Time // time.Now; tests replace it

	mu      sync.Mutex
	entries map[cacheID]*cacheEntry
	lru     list.List // of *cacheEntry, most recently used first
	byAge   list.List // of *cacheEntry, oldest first: every entry has the same MaxAge
}

var _ Keyring = (*CachingKeyring)(nil)

type cacheID struct {
	decrypt bool
	sum     [sha512.Size]byte
}

type cacheEntry struct {
	id       cacheID
	dataKey  []byte
	edks     []EncryptedDataKey // encryption entries only
	added    time.Time
	messages uint64 // encryption entries: messages encrypted
	bytes    uint64 // encryption entries: plaintext bytes encrypted
	lruElem  *list.Element
	ageElem  *list.Element
}

// NewCachingKeyring returns a keyring that caches the data keys of inner
// within limits. It panics if limits.MaxAge is not positive, or if another
// limit is out of range: a caching keyring without an age limit is a
// mistake that must not go unnoticed.
func NewCachingKeyring(inner Keyring, limits CacheLimits) *CachingKeyring {
	if inner == nil {
		panic("esdk: NewCachingKeyring with a nil keyring")
	}
	if limits.MaxAge <= 0 {
		panic(fmt.Sprintf("esdk: CacheLimits.MaxAge is %v, must be positive", limits.MaxAge))
	}
	if limits.MaxMessages > MaxCacheMessages {
		panic(fmt.Sprintf("esdk: CacheLimits.MaxMessages is %d, at most %d", limits.MaxMessages, uint64(MaxCacheMessages)))
	}
	if limits.MaxBytes > MaxCacheBytes {
		panic(fmt.Sprintf("esdk: CacheLimits.MaxBytes is %d, at most %d", limits.MaxBytes, uint64(MaxCacheBytes)))
	}
	if limits.Capacity < 0 {
		panic(fmt.Sprintf("esdk: CacheLimits.Capacity is %d, must not be negative", limits.Capacity))
	}
	c := &CachingKeyring{
		inner:       inner,
		maxAge:      limits.MaxAge,
		maxMessages: limits.MaxMessages,
		maxBytes:    limits.MaxBytes,
		capacity:    limits.Capacity,
		now:         time.Now,
		entries:     make(map[cacheID]*cacheEntry),
	}
	if c.maxMessages == 0 {
		c.maxMessages = MaxCacheMessages
	}
	if c.maxBytes == 0 {
		c.maxBytes = MaxCacheBytes
	}
	if c.capacity == 0 {
		c.capacity = DefaultCacheCapacity
	}
	return c
}

// GenerateDataKey implements Keyring.
func (c *CachingKeyring) GenerateDataKey(ctx context.Context, suite Suite, ec map[string]string) ([]byte, []EncryptedDataKey, error) {
	n, known := maxPlaintextLength(ctx)
	info, ok := suite.info()
	if !known || !ok || info.sig != nil {
		return c.inner.GenerateDataKey(ctx, suite, ec)
	}
	id, ok := encryptCacheID(suite, ec)
	if !ok {
		return c.inner.GenerateDataKey(ctx, suite, ec)
	}

	c.mu.Lock()
	c.expire()
	if e := c.entries[id]; e != nil {
		if e.messages < c.maxMessages && n <= c.maxBytes-e.bytes {
			e.messages++
			e.bytes += n
			key, edks := slices.Clone(e.dataKey), cloneEDKs(e.edks)
			if e.messages >= c.maxMessages || e.bytes >= c.maxBytes {
				c.remove(e) // used up: nothing more could be encrypted with it
			} else {
				c.lru.MoveToFront(e.lruElem)
			}
			c.mu.Unlock()
			return key, edks, nil
		}
		c.remove(e)
	}
	c.mu.Unlock()

	key, edks, err := c.inner.GenerateDataKey(ctx, suite, ec)
	if err != nil {
		return nil, nil, err
	}
	if len(key) == suite.DataKeyLength() && len(edks) > 0 && c.maxMessages > 1 && n < c.maxBytes {
		c.put(&cacheEntry{
			id:       id,
			dataKey:  slices.Clone(key),
			edks:     cloneEDKs(edks),
			messages: 1,
			bytes:    n,
		})
	}
	return key, edks, nil
}

// DecryptDataKey implements Keyring.
func (c *CachingKeyring) DecryptDataKey(ctx context.Context, suite Suite, edks []EncryptedDataKey, ec map[string]string) ([]byte, error) {
	id, ok := decryptCacheID(suite, edks, ec)
	if !ok {
		return c.inner.DecryptDataKey(ctx, suite, edks, ec)
	}
	c.mu.Lock()
	c.expire()
	if e := c.entries[id]; e != nil {
		key := slices.Clone(e.dataKey)
		c.lru.MoveToFront(e.lruElem)
		c.mu.Unlock()
		return key, nil
	}
	c.mu.Unlock()

	key, err := c.inner.DecryptDataKey(ctx, suite, edks, ec)
	if err != nil {
		return nil, err
	}
	if len(key) == suite.DataKeyLength() {
		c.put(&cacheEntry{id: id, dataKey: slices.Clone(key)})
	}
	return key, nil
}

// Purge evicts every entry, zeroing its data key.
func (c *CachingKeyring) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.lru.Len() > 0 {
		c.remove(c.lru.Front().Value.(*cacheEntry))
	}
}

// Len returns the number of entries in the cache, expired ones included
// until they are evicted.
func (c *CachingKeyring) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// put adds e, replacing an entry with the same ID, and evicts the least
// recently used entries beyond the capacity.
func (c *CachingKeyring) put(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.entries[e.id]; old != nil {
		c.remove(old)
	}
	e.added = c.now()
	c.entries[e.id] = e
	e.lruElem = c.lru.PushFront(e)
	e.ageElem = c.byAge.PushBack(e)
	for c.lru.Len() > c.capacity {
		c.remove(c.lru.Back().Value.(*cacheEntry))
	}
}

// expire evicts the entries at least MaxAge old. Entries are added in
// time order and share one MaxAge, so they expire in the order of byAge.
// c.mu is held.
func (c *CachingKeyring) expire() {
	now := c.now()
	for c.byAge.Len() > 0 {
		e := c.byAge.Front().Value.(*cacheEntry)
		if now.Sub(e.added) < c.maxAge {
			return
		}
		c.remove(e)
	}
}

// remove evicts e and zeroes its data key. c.mu is held.
func (c *CachingKeyring) remove(e *cacheEntry) {
	delete(c.entries, e.id)
	c.lru.Remove(e.lruElem)
	c.byAge.Remove(e.ageElem)
	clear(e.dataKey)
	e.dataKey, e.edks = nil, nil
}

func cloneEDKs(edks []EncryptedDataKey) []EncryptedDataKey {
	out := make([]EncryptedDataKey, len(edks))
	for i, edk := range edks {
		out[i] = EncryptedDataKey{edk.ProviderID, edk.ProviderInfo, slices.Clone(edk.Ciphertext)}
	}
	return out
}

// encryptCacheID is SHA-512(0x01 | suite | SHA-512(serialized context)),
// the specification's formula for an encryption entry with a suite, less
// the partition. ok is false for a context that does not serialize.
func encryptCacheID(suite Suite, ec map[string]string) (cacheID, bool) {
	ecBytes, err := serializeContext(ec, nil)
	if err != nil {
		return cacheID{}, false
	}
	ecSum := sha512.Sum512(ecBytes)
	h := sha512.New()
	h.Write([]byte{0x01, byte(suite >> 8), byte(suite)})
	h.Write(ecSum[:])
	var id cacheID
	h.Sum(id.sum[:0])
	return id, true
}

// decryptCacheID is SHA-512(suite | sorted SHA-512 of each encrypted data
// key | 64 zero bytes | SHA-512(serialized context)), the specification's
// formula for a decryption entry, less the partition. Each encrypted data
// key is serialized with uint64 lengths, so that the hash is unambiguous
// whatever the field lengths. ok is false for a suite this package does
// not know or a context that does not serialize.
func decryptCacheID(suite Suite, edks []EncryptedDataKey, ec map[string]string) (cacheID, bool) {
	if _, ok := suite.info(); !ok {
		return cacheID{}, false
	}
	ecBytes, err := serializeContext(ec, nil)
	if err != nil {
		return cacheID{}, false
	}
	sums := make([][sha512.Size]byte, len(edks))
	var buf []byte
	for i, edk := range edks {
		buf = binary.BigEndian.AppendUint64(buf[:0], uint64(len(edk.ProviderID)))
		buf = append(buf, edk.ProviderID...)
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(edk.ProviderInfo)))
		buf = append(buf, edk.ProviderInfo...)
		buf = binary.BigEndian.AppendUint64(buf, uint64(len(edk.Ciphertext)))
		buf = append(buf, edk.Ciphertext...)
		sums[i] = sha512.Sum512(buf)
	}
	slices.SortFunc(sums, func(a, b [sha512.Size]byte) int { return slices.Compare(a[:], b[:]) })
	h := sha512.New()
	h.Write([]byte{byte(suite >> 8), byte(suite)})
	for _, s := range sums {
		h.Write(s[:])
	}
	h.Write(make([]byte, sha512.Size))
	ecSum := sha512.Sum512(ecBytes)
	h.Write(ecSum[:])
	id := cacheID{decrypt: true}
	h.Sum(id.sum[:0])
	return id, true
}

// maxPlaintextLengthKey is the context key under which NewEncrypter passes
// EncryptOptions.MaxPlaintextLength to the keyring.
type maxPlaintextLengthKey struct{}

// withMaxPlaintextLength returns ctx carrying n, the bound on the
// plaintext, for a keyring to find; n <= 0 means unknown, and hides any
// bound an outer call put in ctx.
func withMaxPlaintextLength(ctx context.Context, n int64) context.Context {
	if ctx == nil {
		if n <= 0 {
			return ctx
		}
		ctx = context.Background()
	}
	if n <= 0 && ctx.Value(maxPlaintextLengthKey{}) == nil {
		return ctx
	}
	return context.WithValue(ctx, maxPlaintextLengthKey{}, n)
}

// maxPlaintextLength returns the bound that withMaxPlaintextLength put in
// ctx, if one did.
func maxPlaintextLength(ctx context.Context) (uint64, bool) {
	if ctx == nil {
		return 0, false
	}
	n, ok := ctx.Value(maxPlaintextLengthKey{}).(int64)
	if !ok || n <= 0 {
		return 0, false
	}
	return uint64(n), true
}
