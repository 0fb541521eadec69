package identity_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/identity"
)

// TestCredentialCacheBytesBound: the cached credentials take at most the
// cache's budget together, as estimated, however few entries that is: a
// principal with large inline policies counts for more, a fill that would
// pass the budget empties the cache first, and a credential larger than
// the whole budget is not cached.
func TestCredentialCacheBytesBound(t *testing.T) {
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
