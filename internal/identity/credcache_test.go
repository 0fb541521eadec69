package identity_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/store"
)

// TestCredentialCacheBytesBound: the cached credentials take at most the
// cache's budget together, as estimated, however few entries that is: a
// principal with large inline policies counts for more, a fill that would
// pass the budget makes room from the largest, and a credential larger than
// the whole budget is not cached.
func TestCredentialCacheBytesBound(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	policy := func(statements int) string {
		return `{"Version":"2012-10-17","Statement":[` + strings.Repeat(`{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"},`, statements) +
			`{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}`
	}
	type key struct{ id, secret string }
	var users []key
	for i := range 6 {
		_, k, secret := f.user(fmt.Sprintf("u%d", i), map[string]string{"p": policy(30)})
		users = append(users, key{k.ID, secret})
	}
	_, bigKey, bigSecret := f.user("big", map[string]string{"p": policy(170)})
	auth := func(d *identity.Directory, k key) {
		t.Helper()
		req, body := f.request("sts", k.id, k.secret, "", f.clock.Now(), "Action=GetCallerIdentity&Version=2011-06-15")
		if _, _, err := d.Authenticate(f.ctx, req, body, "sts"); err != nil {
			t.Fatal(err)
		}
	}
	probe := identity.New(f.cfg)
	auth(probe, users[0])
	_, one, _ := identity.CachedCredentials(probe)
	if one < 30*50*24 {
		t.Fatalf("a credential with a policy of %d bytes is estimated at %d bytes: less than its parsed policy takes", len(policy(30)), one)
	}

	d := identity.New(f.cfg)
	budget := 3*one + one/2 // three such credentials, not four
	identity.SetCredentialCacheBytes(d, budget)
	check := func(what string) {
		t.Helper()
		n, bytes, accounted := identity.CachedCredentials(d)
		if bytes > budget || bytes != accounted {
			t.Fatalf("%s: %d credentials of %d bytes cached (accounted %d); want at most %d", what, n, bytes, accounted, budget)
		}
	}
	for i, k := range users {
		auth(d, k)
		check(fmt.Sprintf("after user %d", i+1))
	}
	auth(d, key{bigKey.ID, bigSecret})
	check("after a user whose policies alone take more than the budget")
	if n, _, _ := identity.CachedCredentials(d); n > 3 {
		t.Errorf("%d credentials cached within the room of 3", n)
	}
	d.Changed(nil)
	if n, bytes, accounted := identity.CachedCredentials(d); n != 0 || bytes != 0 || accounted != 0 {
		t.Errorf("after a flush: %d credentials, %d bytes, %d accounted", n, bytes, accounted)
	}
}

// A working set of credentials with small policies stays cached while
// credentials with large policies are read in turn, each taking a large
// part of the budget: room for a large one is made from the other large
// ones, not by emptying the cache.
func TestCredentialCacheKeepsSmallHotCredentials(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	policy := func(statements int) string {
		return `{"Version":"2012-10-17","Statement":[` + strings.Repeat(`{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"},`, statements) +
			`{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}`
	}
	type key struct{ id, secret string }
	var hot, large []key
	for i := range 5 {
		_, k, secret := f.user(fmt.Sprintf("hot%d", i), nil)
		hot = append(hot, key{k.ID, secret})
	}
	for i := range 3 {
		_, k, secret := f.user(fmt.Sprintf("large%d", i), map[string]string{"p": policy(150)})
		large = append(large, key{k.ID, secret})
	}
	auth := func(d *identity.Directory, k key) {
		t.Helper()
		req, body := f.request("sts", k.id, k.secret, "", f.clock.Now(), "Action=GetCallerIdentity&Version=2011-06-15")
		if _, _, err := d.Authenticate(f.ctx, req, body, "sts"); err != nil {
			t.Fatal(err)
		}
	}
	sizeOf := func(k key) int64 {
		probe := identity.New(f.cfg)
		auth(probe, k)
		_, n, _ := identity.CachedCredentials(probe)
		return n
	}
	small, big := sizeOf(hot[0]), sizeOf(large[0])
	d := identity.New(f.cfg)
	identity.SetCredentialCacheBytes(d, int64(len(hot))*small+2*big+small/2)
	for _, k := range hot {
		auth(d, k)
	}
	for round := range 3 {
		for _, k := range large {
			auth(d, k)
		}
		n, _, _ := identity.CachedCredentials(d)
		if n < len(hot) {
			t.Fatalf("round %d: %d credentials cached; the %d hot ones were evicted by the reads of large ones", round+1, n, len(hot))
		}
	}
	// The hot credentials are served without a store read.
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, k := range hot {
		auth(d, k)
	}
}

// accessKeyReads counts the reads of access key records
// (iam/accesskey/ID) through it, by id.
type accessKeyReads struct {
	store.Store
	mu sync.Mutex
	n  map[string]int
}

func (s *accessKeyReads) View(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.View(ctx, func(tx store.Tx) error { return fn(accessKeyReadsTx{tx, s}) })
}

func (s *accessKeyReads) reads(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[id]
}

type accessKeyReadsTx struct {
	store.Tx
	s *accessKeyReads
}

func (t accessKeyReadsTx) Get(key []byte) ([]byte, error) {
	if id, ok := bytes.CutPrefix(key, []byte("iam/accesskey/")); ok {
		t.s.mu.Lock()
		t.s.n[string(id)]++
		t.s.mu.Unlock()
	}
	return t.Tx.Get(key)
}

// A full credential cache makes room for the next caller by evicting a
// few others, not by emptying itself: the callers of every account, past
// the bound by one caller of any account, would each pay a store read at
// their next request, and again each time the cache filled. Callers of
// many accounts are read past the bound while a few hot callers keep
// calling; the cache stays within its bound, stays nearly full, and the
// hot callers are seldom read again.
func TestCredentialCacheFullKeepsHotCallers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	reads := &accessKeyReads{Store: f.st, n: make(map[string]int)}
	cfg := f.cfg
	cfg.Store = reads
	d := identity.New(cfg)
	// A tenth of the real cache, filled and passed by two batches of
	// evictions as the real one would be.
	limit := identity.CredentialCacheLimit / 10
	identity.SetCacheLimit(d, limit)
	evictions := limit / 100
	callers, err := identity.PutRootAccessKeys(f.ctx, f.st, f.root, 500000000000, limit+2*evictions)
	if err != nil {
		t.Fatal(err)
	}
	hot, cold := callers[:20], callers[20:]
	auth := func(k identity.AccessKey) {
		t.Helper()
		req, body := f.request("sts", k.ID, k.Secret, "", f.clock.Now(), "Action=GetCallerIdentity&Version=2011-06-15")
		if _, _, err := d.Authenticate(f.ctx, req, body, "sts"); err != nil {
			t.Fatal(err)
		}
	}
	bounded := func(what string) int {
		t.Helper()
		n, size, accounted := identity.CachedCredentials(d)
		if n > limit || size != accounted {
			t.Fatalf("%s: %d credentials cached of %d bytes (accounted %d); want at most %d", what, n, size, accounted, limit)
		}
		return n
	}
	for _, k := range hot {
		auth(k)
	}
	for i, k := range cold {
		auth(k)
		if i%100 == 99 {
			for _, h := range hot {
				auth(h)
			}
			bounded(fmt.Sprintf("after %d callers", len(hot)+i+1))
		}
	}
	if n := bounded("at the end"); n < limit-evictions {
		t.Errorf("%d credentials cached after %d callers; want at least %d: a full cache evicts a few, it is not emptied",
			n, len(callers), limit-evictions)
	}
	again := 0
	for _, h := range hot {
		again += reads.reads(h.ID) - 1
	}
	// Each hot caller is evicted by a batch with a chance of about one in
	// a hundred: past the bound by two batches' worth of callers, a few
	// at most are read again. Emptied, the cache would have every one
	// read again.
	if again > len(hot)/2 {
		t.Errorf("the %d hot callers were read from the store %d times again while others filled the cache past its bound", len(hot), again)
	}
}
