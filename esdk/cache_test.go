package esdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openkms/kms/internal/testsupport"
)

// countingKeyring wraps a memKeyring, counting calls; safe for concurrent
// use.
type countingKeyring struct {
	mu       sync.Mutex
	inner    *memKeyring
	gen, dec int
}

func (k *countingKeyring) GenerateDataKey(ctx context.Context, suite Suite, ec map[string]string) ([]byte, []EncryptedDataKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.gen++
	return k.inner.GenerateDataKey(ctx, suite, ec)
}

func (k *countingKeyring) DecryptDataKey(ctx context.Context, suite Suite, edks []EncryptedDataKey, ec map[string]string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dec++
	return k.inner.DecryptDataKey(ctx, suite, edks, ec)
}

func (k *countingKeyring) counts() (gen, dec int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.gen, k.dec
}

func newTestCache(limits CacheLimits) (*CachingKeyring, *countingKeyring, *testsupport.Clock) {
	inner := &countingKeyring{inner: newMemKeyring(2)}
	clock := testsupport.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	c := NewCachingKeyring(inner, limits)
	c.now = clock.Now
	return c, inner, clock
}

// gen asks c for a data key for a message of n bytes (unknown if n <= 0).
func gen(t testing.TB, c *CachingKeyring, suite Suite, ec map[string]string, n int64) []byte {
	t.Helper()
	key, edks, err := c.GenerateDataKey(withMaxPlaintextLength(context.Background(), n), suite, ec)
	if err != nil {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	if len(key) != SuiteCommitKey.DataKeyLength() || len(edks) != 2 {
		t.Fatalf("GenerateDataKey: %d-byte key, %d EDKs", len(key), len(edks))
	}
	return key
}

func TestCachingMaxMessages(t *testing.T) {
	c, inner, _ := newTestCache(CacheLimits{MaxAge: time.Hour, MaxMessages: 5})
	ec := map[string]string{"tenant": "a"}
	var keys [][]byte
	for range 12 {
		keys = append(keys, gen(t, c, SuiteCommitKey, ec, 10))
	}
	for i := range keys {
		if same := bytes.Equal(keys[i], keys[i/5*5]); !same {
			t.Errorf("message %d: not the data key of message %d", i, i/5*5)
		}
		if i%5 == 0 && i > 0 && bytes.Equal(keys[i], keys[i-1]) {
			t.Errorf("message %d reuses the data key of message %d beyond MaxMessages", i, i-1)
		}
	}
	if g, _ := inner.counts(); g != 3 {
		t.Errorf("inner GenerateDataKey called %d times, want 3", g)
	}
	// MaxMessages 1 never reuses, so never caches.
	c1, inner1, _ := newTestCache(CacheLimits{MaxAge: time.Hour, MaxMessages: 1})
	for range 3 {
		gen(t, c1, SuiteCommitKey, ec, 10)
	}
	if g, _ := inner1.counts(); g != 3 || c1.Len() != 0 {
		t.Errorf("MaxMessages 1: %d inner calls, %d entries; want 3, 0", g, c1.Len())
	}
}

func TestCachingMaxAge(t *testing.T) {
	c, inner, clock := newTestCache(CacheLimits{MaxAge: time.Minute})
	k1 := gen(t, c, SuiteCommitKey, nil, 1)
	clock.Advance(time.Minute - time.Nanosecond)
	if k := gen(t, c, SuiteCommitKey, nil, 1); !bytes.Equal(k, k1) {
		t.Error("entry younger than MaxAge not used")
	}
	clock.Advance(time.Nanosecond)
	k2 := gen(t, c, SuiteCommitKey, nil, 1)
	if bytes.Equal(k2, k1) {
		t.Error("entry MaxAge old used")
	}
	if g, _ := inner.counts(); g != 2 {
		t.Errorf("inner GenerateDataKey called %d times, want 2", g)
	}

	// Decrypt entries expire too, and expired entries go on any call.
	edks := mustEDKs(t, c, k2)
	if _, err := c.DecryptDataKey(context.Background(), SuiteCommitKey, edks, nil); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Second)
	if _, err := c.DecryptDataKey(context.Background(), SuiteCommitKey, edks, nil); err != nil {
		t.Fatal(err)
	}
	if _, d := inner.counts(); d != 1 {
		t.Errorf("inner DecryptDataKey called %d times before MaxAge, want 1", d)
	}
	if c.Len() != 2 {
		t.Errorf("%d entries, want 2", c.Len())
	}
	clock.Advance(time.Minute)
	gen(t, c, SuiteCommitKey, map[string]string{"other": "context"}, 1)
	if c.Len() != 1 {
		t.Errorf("%d entries after both expired and one was added, want 1", c.Len())
	}
	if _, err := c.DecryptDataKey(context.Background(), SuiteCommitKey, edks, nil); err != nil {
		t.Fatal(err)
	}
	if _, d := inner.counts(); d != 2 {
		t.Errorf("inner DecryptDataKey called %d times after MaxAge, want 2", d)
	}
}

// mustEDKs returns the EDKs of the cached encryption entry whose data key
// is key.
func mustEDKs(t *testing.T, c *CachingKeyring, key []byte) []EncryptedDataKey {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if !e.id.decrypt && bytes.Equal(e.dataKey, key) {
			return cloneEDKs(e.edks)
		}
	}
	t.Fatal("no cache entry for the key")
	return nil
}

func TestCachingKeyedBySuiteAndContext(t *testing.T) {
	c, inner, _ := newTestCache(CacheLimits{MaxAge: time.Hour})
	type req struct {
		suite Suite
		ec    map[string]string
	}
	reqs := []req{
		{SuiteCommitKey, nil},
		{SuiteHKDFSHA256, nil},
		{SuiteCommitKey, map[string]string{"a": "b"}},
		{SuiteCommitKey, map[string]string{"a": "c"}},
		{SuiteCommitKey, map[string]string{"a": "b", "c": ""}},
		{SuiteCommitKey, map[string]string{"ab": ""}},
		{SuiteCommitKey, map[string]string{"a": "", "b": ""}},
	}
	first := make([][]byte, len(reqs))
	for round := range 3 {
		for i, r := range reqs {
			k := gen(t, c, r.suite, r.ec, 1)
			if round == 0 {
				for j := range i {
					if bytes.Equal(k, first[j]) {
						t.Errorf("requests %d and %d share a data key", i, j)
					}
				}
				first[i] = k
			} else if !bytes.Equal(k, first[i]) {
				t.Errorf("round %d, request %d: entry not reused", round, i)
			}
		}
	}
	if g, _ := inner.counts(); g != len(reqs) {
		t.Errorf("inner GenerateDataKey called %d times, want %d", g, len(reqs))
	}
	// An empty context is the same entry as a nil one.
	if k := gen(t, c, SuiteCommitKey, map[string]string{}, 1); !bytes.Equal(k, first[0]) {
		t.Error("empty and nil contexts differ")
	}
}

func TestCachingMaxBytes(t *testing.T) {
	c, inner, _ := newTestCache(CacheLimits{MaxAge: time.Hour, MaxBytes: 100})
	k1 := gen(t, c, SuiteCommitKey, nil, 40)
	if k := gen(t, c, SuiteCommitKey, nil, 40); !bytes.Equal(k, k1) { // 80
		t.Error("second message under MaxBytes got a new key")
	}
	k2 := gen(t, c, SuiteCommitKey, nil, 30) // 110 > 100: new key, 30
	if bytes.Equal(k2, k1) {
		t.Error("data key used beyond MaxBytes")
	}
	if k := gen(t, c, SuiteCommitKey, nil, 70); !bytes.Equal(k, k2) { // exactly 100
		t.Error("message reaching MaxBytes exactly got a new key")
	}
	if c.Len() != 0 {
		t.Errorf("used-up entry kept: %d entries", c.Len())
	}
	if k := gen(t, c, SuiteCommitKey, nil, 1); bytes.Equal(k, k2) {
		t.Error("data key used beyond MaxBytes")
	}
	if g, _ := inner.counts(); g != 3 {
		t.Errorf("inner GenerateDataKey called %d times, want 3", g)
	}
	// A message that alone reaches MaxBytes gets an uncached key.
	c.Purge()
	for _, n := range []int64{100, 150} {
		gen(t, c, SuiteCommitKey, nil, n)
		if c.Len() != 0 {
			t.Errorf("%d-byte message cached with MaxBytes 100", n)
		}
	}
}

func TestCachingBypass(t *testing.T) {
	c, inner, _ := newTestCache(CacheLimits{MaxAge: time.Hour})
	// Unknown length: not cached.
	for range 3 {
		gen(t, c, SuiteCommitKey, nil, 0)
	}
	if g, _ := inner.counts(); g != 3 || c.Len() != 0 {
		t.Errorf("unknown length: %d inner calls, %d entries; want 3, 0", g, c.Len())
	}
	var buf bytes.Buffer
	for range 3 {
		w, err := NewEncrypter(context.Background(), &buf, c, EncryptOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	if g, _ := inner.counts(); g != 6 || c.Len() != 0 {
		t.Errorf("NewEncrypter without MaxPlaintextLength: %d inner calls, %d entries; want 6, 0", g, c.Len())
	}
	// Signed suite: not cached, even with a length.
	for range 3 {
		encrypt(t, c, EncryptOptions{Suite: SuiteCommitKeyECDSAP384, MaxPlaintextLength: 5}, []byte("hello"))
	}
	if g, _ := inner.counts(); g != 9 || c.Len() != 0 {
		t.Errorf("signed suite: %d inner calls, %d entries; want 9, 0", g, c.Len())
	}
	// An outer bound does not leak into a NewEncrypter call without one.
	ctx := withMaxPlaintextLength(context.Background(), 10)
	if _, ok := maxPlaintextLength(withMaxPlaintextLength(ctx, 0)); ok {
		t.Error("MaxPlaintextLength 0 did not hide the outer bound")
	}
	// Failures are not cached.
	f := NewCachingKeyring(failingKeyring{}, CacheLimits{MaxAge: time.Hour})
	if _, _, err := f.GenerateDataKey(ctx, SuiteCommitKey, nil); !errors.Is(err, errKeyringDown) {
		t.Errorf("GenerateDataKey: %v", err)
	}
	if _, err := f.DecryptDataKey(ctx, SuiteCommitKey, []EncryptedDataKey{{"p", "i", []byte{1}}}, nil); !errors.Is(err, errKeyringDown) {
		t.Errorf("DecryptDataKey: %v", err)
	}
	if f.Len() != 0 {
		t.Errorf("failure cached: %d entries", f.Len())
	}
}

func TestCachingCapacity(t *testing.T) {
	c, inner, _ := newTestCache(CacheLimits{MaxAge: time.Hour, Capacity: 2})
	ecs := []map[string]string{{"n": "0"}, {"n": "1"}, {"n": "2"}}
	k0 := gen(t, c, SuiteCommitKey, ecs[0], 1)
	gen(t, c, SuiteCommitKey, ecs[1], 1)
	c.mu.Lock()
	var cached0 []byte // the cache's own copy of k0
	for _, e := range c.entries {
		if bytes.Equal(e.dataKey, k0) {
			cached0 = e.dataKey
		}
	}
	c.mu.Unlock()
	gen(t, c, SuiteCommitKey, ecs[2], 1) // evicts 0, the least recently used
	if c.Len() != 2 {
		t.Errorf("%d entries, want 2", c.Len())
	}
	if !bytes.Equal(cached0, make([]byte, SuiteCommitKey.DataKeyLength())) {
		t.Error("evicted data key not zeroed")
	}
	if bytes.Equal(k0, make([]byte, SuiteCommitKey.DataKeyLength())) {
		t.Error("eviction zeroed the caller's copy")
	}
	gen(t, c, SuiteCommitKey, ecs[1], 1) // hit; 2 is now least recently used
	gen(t, c, SuiteCommitKey, ecs[0], 1) // miss; evicts 2
	gen(t, c, SuiteCommitKey, ecs[1], 1) // hit
	if g, _ := inner.counts(); g != 4 {
		t.Errorf("inner GenerateDataKey called %d times, want 4", g)
	}
	gen(t, c, SuiteCommitKey, ecs[2], 1) // miss
	if g, _ := inner.counts(); g != 5 {
		t.Errorf("inner GenerateDataKey called %d times, want 5", g)
	}
	// Purge zeroes the rest.
	var held [][]byte
	c.mu.Lock()
	for _, e := range c.entries {
		held = append(held, e.dataKey)
	}
	c.mu.Unlock()
	c.Purge()
	for _, k := range held {
		if !bytes.Equal(k, make([]byte, SuiteCommitKey.DataKeyLength())) {
			t.Error("purged data key not zeroed")
		}
	}
	if c.Len() != 0 {
		t.Errorf("%d entries after Purge", c.Len())
	}
}

// TestCachingEncryptDecrypt encrypts through the cache and decrypts both
// with the inner keyring and through a caching keyring.
func TestCachingEncryptDecrypt(t *testing.T) {
	c, inner, _ := newTestCache(CacheLimits{MaxAge: time.Hour, MaxMessages: 4})
	ec := map[string]string{"purpose": "cache test"}
	var msgs, pts [][]byte
	for i := range 10 {
		pt := testPlaintext(100 + i)
		pts = append(pts, pt)
		msgs = append(msgs, encrypt(t, c, EncryptOptions{EncryptionContext: ec, MaxPlaintextLength: int64(len(pt)), FrameLength: 64}, pt))
	}
	if g, _ := inner.counts(); g != 3 {
		t.Errorf("inner GenerateDataKey called %d times for 10 messages, want 3", g)
	}
	dc, dinner, _ := newTestCache(CacheLimits{MaxAge: time.Hour})
	dinner.inner = inner.inner // same wrapping keys
	var ids [][]byte
	for i, msg := range msgs {
		got, h, err := decrypt(inner.inner, DecryptOptions{}, msg)
		if err != nil || !bytes.Equal(got, pts[i]) {
			t.Fatalf("message %d, inner keyring: %v", i, err)
		}
		for _, id := range ids {
			if bytes.Equal(id, h.MessageID) {
				t.Errorf("message %d repeats a message ID", i)
			}
		}
		ids = append(ids, h.MessageID)
		for range 2 {
			got, _, err = decrypt(dc, DecryptOptions{}, msg)
			if err != nil || !bytes.Equal(got, pts[i]) {
				t.Fatalf("message %d, caching keyring: %v", i, err)
			}
		}
	}
	// Messages 0-3, 4-7 and 8-9 share their encrypted data keys: three
	// decrypt entries, three inner calls.
	if _, d := dinner.counts(); d != 3 {
		t.Errorf("inner DecryptDataKey called %d times for 3 data keys, want 3", d)
	}
	if dc.Len() != 3 {
		t.Errorf("%d decrypt entries, want 3", dc.Len())
	}
}

func TestCachingDecryptKey(t *testing.T) {
	c, inner, _ := newTestCache(CacheLimits{MaxAge: time.Hour})
	ctx := context.Background()
	ec := map[string]string{"a": "b"}
	key, edks, err := inner.inner.GenerateDataKey(ctx, SuiteCommitKey, ec)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, suite Suite, edks []EncryptedDataKey, ec map[string]string, wantCalls int) {
		t.Helper()
		got, err := c.DecryptDataKey(ctx, suite, edks, ec)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("%s: %v", name, err)
		}
		if _, d := inner.counts(); d != wantCalls {
			t.Errorf("%s: %d inner calls, want %d", name, d, wantCalls)
		}
	}
	check("first", SuiteCommitKey, edks, ec, 1)
	check("again", SuiteCommitKey, edks, ec, 1)
	check("EDKs reordered", SuiteCommitKey, []EncryptedDataKey{edks[1], edks[0]}, ec, 1)
	check("one EDK", SuiteCommitKey, edks[:1], ec, 2)
	check("other suite", SuiteHKDFSHA256, edks, ec, 3)
	if _, err := c.DecryptDataKey(ctx, SuiteCommitKey, edks, map[string]string{"a": "c"}); !errors.Is(err, ErrNoDataKey) {
		t.Errorf("other context: %v, want ErrNoDataKey", err)
	}
	// The cached key is a copy: changing the returned one changes nothing.
	got, _ := c.DecryptDataKey(ctx, SuiteCommitKey, edks, ec)
	clear(got)
	check("after caller cleared its copy", SuiteCommitKey, edks, ec, 4)
	// Encrypted data keys that differ in any field are different entries.
	mod := cloneEDKs(edks)
	mod[0].ProviderInfo += "x"
	if _, err := c.DecryptDataKey(ctx, SuiteCommitKey, mod, ec); err != nil {
		t.Errorf("modified first EDK: %v", err) // the second still decrypts
	}
	if _, d := inner.counts(); d != 5 {
		t.Errorf("modified EDK: %d inner calls, want 5", d)
	}
}

func TestMaxPlaintextLength(t *testing.T) {
	kr := newMemKeyring(1)
	var buf bytes.Buffer
	w, err := NewEncrypter(context.Background(), &buf, kr, EncryptOptions{MaxPlaintextLength: 10})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write(make([]byte, 6)); n != 6 || err != nil {
		t.Fatalf("Write 6: %d, %v", n, err)
	}
	if n, err := w.Write(make([]byte, 5)); n != 0 || !errors.Is(err, ErrPlaintextTooLong) {
		t.Fatalf("Write past the bound: %d, %v", n, err)
	}
	if err := w.Close(); !errors.Is(err, ErrPlaintextTooLong) {
		t.Fatalf("Close after: %v", err)
	}
	// Up to the bound, and less, is fine.
	for _, n := range []int{0, 9, 10} {
		pt := testPlaintext(n)
		msg := encrypt(t, kr, EncryptOptions{MaxPlaintextLength: 10, FrameLength: 3}, pt)
		if got, _, err := decrypt(kr, DecryptOptions{}, msg); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
}

// TestCachingConcurrent checks under -race that concurrent use never takes
// a data key past its limits, and that messages round-trip.
func TestCachingConcurrent(t *testing.T) {
	const maxMessages, maxBytes = 7, 1000
	c, inner, clock := newTestCache(CacheLimits{MaxAge: time.Minute, MaxMessages: maxMessages, MaxBytes: maxBytes, Capacity: 8})
	type usage struct{ messages, bytes int }
	var mu sync.Mutex
	used := make(map[string]*usage)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 100 {
				ec := map[string]string{"n": fmt.Sprint((g + i) % 5)}
				n := int64(1 + (g*31+i*17)%300)
				key, _, err := c.GenerateDataKey(withMaxPlaintextLength(context.Background(), n), SuiteCommitKey, ec)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				u := used[string(key)]
				if u == nil {
					u = new(usage)
					used[string(key)] = u
				}
				u.messages++
				u.bytes += int(n)
				mu.Unlock()
				switch i % 25 {
				case 3:
					clock.Advance(10 * time.Second)
				case 11:
					if g == 0 {
						c.Purge()
					}
				case 17:
					// Its own context, so that the keys counted above
					// encrypt nothing else.
					if err := cachedRoundTrip(c, map[string]string{"rt": "1"}, testPlaintext(int(n))); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	for _, u := range used {
		if u.messages > maxMessages || u.bytes > maxBytes {
			t.Fatalf("a data key encrypted %d messages, %d bytes; limits %d, %d", u.messages, u.bytes, maxMessages, maxBytes)
		}
	}
	g, _ := inner.counts()
	if g >= 1600 {
		t.Errorf("no cache hits: %d inner calls", g)
	}
	if c.Len() > 8 {
		t.Errorf("%d entries, capacity 8", c.Len())
	}
	t.Logf("%d messages (and %d round trips), %d inner GenerateDataKey calls", 16*100, 16*4, g)
}

func cachedRoundTrip(c *CachingKeyring, ec map[string]string, pt []byte) error {
	var buf bytes.Buffer
	w, err := NewEncrypter(context.Background(), &buf, c, EncryptOptions{EncryptionContext: ec, MaxPlaintextLength: int64(len(pt)), Concurrency: 1})
	if err != nil {
		return err
	}
	if _, err := w.Write(pt); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	got, _, err := decrypt(c, DecryptOptions{Concurrency: 1}, buf.Bytes())
	if err != nil {
		return err
	}
	if !bytes.Equal(got, pt) {
		return errors.New("round trip: plaintext differs")
	}
	return nil
}

func TestNewCachingKeyringLimits(t *testing.T) {
	kr := newMemKeyring(1)
	for _, tc := range []struct {
		name string
		kr   Keyring
		l    CacheLimits
	}{
		{"nil keyring", nil, CacheLimits{MaxAge: time.Second}},
		{"no MaxAge", kr, CacheLimits{}},
		{"negative MaxAge", kr, CacheLimits{MaxAge: -time.Second}},
		{"MaxMessages", kr, CacheLimits{MaxAge: time.Second, MaxMessages: MaxCacheMessages + 1}},
		{"MaxBytes", kr, CacheLimits{MaxAge: time.Second, MaxBytes: MaxCacheBytes + 1}},
		{"Capacity", kr, CacheLimits{MaxAge: time.Second, Capacity: -1}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			NewCachingKeyring(tc.kr, tc.l)
		}()
	}
	c := NewCachingKeyring(kr, CacheLimits{MaxAge: time.Second})
	if c.maxMessages != MaxCacheMessages || c.maxBytes != MaxCacheBytes || c.capacity != DefaultCacheCapacity {
		t.Errorf("defaults: %d messages, %d bytes, capacity %d", c.maxMessages, c.maxBytes, c.capacity)
	}
	c = NewCachingKeyring(kr, CacheLimits{MaxAge: time.Second, MaxMessages: MaxCacheMessages, MaxBytes: MaxCacheBytes})
	if !slices.Equal([]uint64{c.maxMessages, c.maxBytes}, []uint64{MaxCacheMessages, MaxCacheBytes}) {
		t.Error("hard limits not accepted")
	}
}
