package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
)

// Two services on one store stand for two nodes of a cluster. Without a
// change notification, the second trusts its cached key for CacheMaxAge;
// with one (Changed), it sees the change at once.
func TestSharedStoreStaleness(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other, err := service.New(service.Config{Store: e.st, RootKey: e.root, Region: "us-east-1", Now: e.clock.Now, CacheMaxAge: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	encrypt := func(id string) error {
		_, err := other.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("x")})
		return err
	}
	for _, tc := range []struct {
		name   string
		notify func(id string)
	}{
		{"max age", func(string) { e.clock.Advance(5 * time.Second) }},
		{"notification of the key", func(id string) { other.Changed([][]byte{[]byte("key/us-east-1/" + id)}) }},
		{"notification of everything", func(string) { other.Changed(nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := e.createKey(t)
			if err := encrypt(id); err != nil { // warm
				t.Fatal(err)
			}
			if _, err := e.svc.DisableKey(ctx, root, &kmsapi.KeyIDInput{KeyID: id}); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(4 * time.Second)
			if err := encrypt(id); err != nil {
				t.Fatalf("within the cache age and without a notification the cached key is used: %v", err)
			}
			tc.notify(id)
			if err := encrypt(id); !fault.Is(err, fault.Disabled) {
				t.Fatalf("after %s: %v, want the key disabled", tc.name, err)
			}
		})
	}
}

// Changed maps store records to the cache entries they feed: an alias
// record drops the alias.
func TestChangedAliasRecord(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other, err := service.New(service.Config{Store: e.st, RootKey: e.root, Region: "us-east-1", Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := e.createKey(t), e.createKey(t)
	if _, err := e.svc.CreateAlias(ctx, root, &kmsapi.AliasInput{AliasName: "alias/moving", TargetKeyID: k1}); err != nil {
		t.Fatal(err)
	}
	target := func() string {
		out, err := other.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: "alias/moving", Plaintext: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		return out.KeyID
	}
	if got := target(); got != "arn:aws:kms:us-east-1:111122223333:key/"+k1 {
		t.Fatalf("alias names %s", got)
	}
	if _, err := e.svc.UpdateAlias(ctx, root, &kmsapi.AliasInput{AliasName: "alias/moving", TargetKeyID: k2}); err != nil {
		t.Fatal(err)
	}
	if got := target(); got != "arn:aws:kms:us-east-1:111122223333:key/"+k1 {
		t.Fatalf("without a notification (and no max age) the cached alias is used, got %s", got)
	}
	other.Changed([][]byte{[]byte("alias/111122223333/us-east-1/alias/moving")})
	if got := target(); got != "arn:aws:kms:us-east-1:111122223333:key/"+k2 {
		t.Fatalf("after the alias record changed, alias names %s, want %s", got, k2)
	}
}

// A grant made through one service is used through another before the
// other is told of it, by a call that carries its grant token, as on AWS
// KMS; without the token it is used once the change is announced. A
// grant retired and announced is refused, token or not.
func TestGrantTokenBeforeTheChangeIsAnnounced(t *testing.T) {
	f := newFixture(t)
	peer := f.newService(service.Config{CacheMaxAge: time.Hour})
	id := f.createKey(kmsapi.CreateKeyInput{})
	arn := keyARN(acctA, id)
	grantee, reader := iamUser(t, acctA, "grantee"), iamUser(t, acctA, "reader")
	encrypt := func(tokens ...string) error {
		_, err := peer.Encrypt(f.ctx, grantee, &kmsapi.EncryptInput{KeyID: arn, Plaintext: []byte("p"), GrantTokens: tokens})
		return err
	}
	wantErr(t, encrypt(), fault.AccessDenied, deniedMsg(grantee, "kms:Encrypt", arn, noIdentityPolicy("kms:Encrypt"))) // the peer holds the key

	g := f.grant(rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: grantee.ARN, Operations: []string{"Encrypt"}})
	if err := encrypt(); !fault.Is(err, fault.AccessDenied) {
		t.Fatalf("the peer used a grant it was not told of, without its token: %v", err)
	}
	elsewhere := f.grant(rootA, kmsapi.CreateGrantInput{KeyID: f.createKey(kmsapi.CreateKeyInput{}), GranteePrincipal: grantee.ARN, Operations: []string{"Encrypt"}})
	if err := encrypt(elsewhere.GrantToken); !fault.Is(err, fault.AccessDenied) {
		t.Fatalf("the token of a grant of another key allowed the call: %v", err)
	}
	if err := encrypt(g.GrantToken); err != nil {
		t.Fatalf("with its grant token: %v", err)
	}
	peer.Changed([][]byte{[]byte("grant/" + region + "/" + id + "/" + g.GrantID)})
	if err := encrypt(); err != nil {
		t.Fatalf("without its token once announced: %v", err)
	}

	// Decrypt finds its key in the ciphertext, not by name.
	ct, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")})
	if err != nil {
		t.Fatal(err)
	}
	r := f.grant(rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: reader.ARN, Operations: []string{"Decrypt"}})
	if _, err := peer.Decrypt(f.ctx, reader, &kmsapi.DecryptInput{CiphertextBlob: ct.CiphertextBlob, GrantTokens: []string{r.GrantToken}}); err != nil {
		t.Fatalf("Decrypt with its grant token: %v", err)
	}

	f.must2(f.svc.RevokeGrant(f.ctx, rootA, &kmsapi.RevokeGrantInput{KeyID: id, GrantID: g.GrantID}))
	peer.Changed([][]byte{[]byte("grant/" + region + "/" + id + "/" + g.GrantID)})
	if err := encrypt(g.GrantToken); !fault.Is(err, fault.AccessDenied) {
		t.Fatalf("a revoked grant used with its token: %v", err)
	}
}

// The key uses a service writes every few seconds do not make another
// service read the key again with all its grants.
func TestFlushedUsageKeepsPeersWarm(t *testing.T) {
	f := newFixture(t)
	peer := f.newService(service.Config{})
	id := f.createKey(kmsapi.CreateKeyInput{})
	for range 3 {
		f.grant(rootA, kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: "arn:aws:iam::" + acctA + ":user/app", Operations: []string{"Encrypt"}})
	}
	encrypt := func(s *service.Service) {
		t.Helper()
		if _, err := s.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")}); err != nil {
			t.Fatal(err)
		}
	}
	encrypt(peer)
	encrypt(f.svc)
	if err := f.svc.FlushKeyUsage(f.ctx); err != nil {
		t.Fatal(err)
	}
	peer.Changed([][]byte{[]byte("key/" + region + "/" + id)})
	encrypt(peer)
	if hits, misses := peer.KeyCacheStats(); misses != 1 || hits != 1 {
		t.Fatalf("the peer's key cache: %d hits, %d misses; want 1, 1: a flushed use read the key again", hits, misses)
	}
	out, err := peer.GetKeyLastUsage(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
	if err != nil {
		t.Fatal(err)
	}
	if out.KeyLastUsage == nil {
		t.Fatal("the peer reports no use of the key")
	}
}

// changeStore records the names of the records each Update changed.
type changeStore struct {
	store.Store
	changes [][]string
}

type changeTx struct {
	store.Tx
	changed *[]string
}

func (s *changeStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	var changed []string
	err := s.Store.Update(ctx, func(tx store.Tx) error {
		changed = changed[:0]
		return fn(changeTx{tx, &changed})
	})
	if err == nil {
		s.changes = append(s.changes, changed)
	}
	return err
}

func (t changeTx) Put(k, v []byte) error {
	*t.changed = append(*t.changed, string(k))
	return t.Tx.Put(k, v)
}

func (t changeTx) Delete(k []byte) error {
	*t.changed = append(*t.changed, string(k))
	return t.Tx.Delete(k)
}

// The uses of many keys are written in transactions whose change
// notification on PostgreSQL can name every record they changed (at most
// about 7,000 bytes of names, hex-encoded, one a line), rather than tell
// every node that anything may have changed, which would empty all their
// caches every few seconds.
func TestFlushedUsageIsAnnouncedByName(t *testing.T) {
	f := newFixture(t)
	cs := &changeStore{Store: f.st}
	svc, err := service.New(service.Config{Store: cs, RootKey: f.rk, Region: region, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		out, err := svc.CreateKey(f.ctx, rootA, &kmsapi.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: out.KeyMetadata.KeyID, Plaintext: []byte("p")}); err != nil {
			t.Fatal(err)
		}
	}
	cs.changes = nil
	if err := svc.FlushKeyUsage(f.ctx); err != nil {
		t.Fatal(err)
	}
	written := 0
	// The longest region a key may be in has 32 characters.
	longest := strings.Repeat("x", 32)
	for _, names := range cs.changes {
		size := 0
		for _, n := range names {
			size += 2*len(strings.Replace(n, region, longest, 1)) + 1
		}
		if size > 7000 {
			t.Errorf("a flush transaction changed %d records, %d bytes of names hex-encoded in the longest region", len(names), size)
		}
		written += len(names)
	}
	if written != 100 {
		t.Fatalf("the flush wrote %d key records, want 100", written)
	}
}
