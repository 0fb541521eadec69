package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/policy"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/testsupport"
)

var root = service.Caller{AccountID: "111122223333", ARN: "arn:aws:iam::111122223333:root", Root: true,
	Principal: policy.Principal{ARN: "arn:aws:iam::111122223333:root", Account: "111122223333", UserID: "111122223333"}}

// countingStore counts the transactions that reach the real store, and
// the records read in its read-only ones.
type countingStore struct {
	store.Store
	views, updates, viewReads atomic.Int64
}

func (c *countingStore) View(ctx context.Context, fn func(store.Tx) error) error {
	c.views.Add(1)
	return c.Store.View(ctx, func(tx store.Tx) error { return fn(countingTx{tx, &c.viewReads}) })
}

// countingTx counts the records a transaction reads.
type countingTx struct {
	store.Tx
	reads *atomic.Int64
}

func (t countingTx) Get(key []byte) ([]byte, error) {
	t.reads.Add(1)
	return t.Tx.Get(key)
}

func (t countingTx) Scan(prefix, after []byte, fn func(key, value []byte) (bool, error)) error {
	return t.Tx.Scan(prefix, after, func(k, v []byte) (bool, error) {
		t.reads.Add(1)
		return fn(k, v)
	})
}

func (c *countingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	c.updates.Add(1)
	return c.Store.Update(ctx, fn)
}

type env struct {
	svc   *service.Service
	st    *countingStore
	clock *testsupport.Clock
	path  string
	root  *keys.RootKey
}

func newEnv(t *testing.T) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kms.db")
	bs, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	k := make([]byte, 32)
	rand.Read(k)
	rk, _ := keys.NewRootKey(k)
	e := &env{st: &countingStore{Store: bs}, clock: testsupport.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), path: path, root: rk}
	e.svc, err = service.New(service.Config{Store: e.st, RootKey: rk, Region: "us-east-1", Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) createKey(t *testing.T) string {
	t.Helper()
	out, err := e.svc.CreateKey(context.Background(), root, &kmsapi.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	return out.KeyMetadata.KeyID
}

func i32(n int32) *int32 { return &n }

// The hot path touches no storage once the key is warm.
func TestWarmHotPathDoesNoStorageAccess(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.createKey(t)
	if _, err := e.svc.CreateAlias(ctx, root, &kmsapi.AliasInput{AliasName: "alias/hot", TargetKeyID: id}); err != nil {
		t.Fatal(err)
	}
	ec := map[string]string{"a": "b"}
	var blob []byte
	for _, ident := range []string{id, "alias/hot"} { // warm key and alias
		out, err := e.svc.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: ident, Plaintext: []byte("x"), EncryptionContext: ec})
		if err != nil {
			t.Fatal(err)
		}
		blob = out.CiphertextBlob
	}
	before := e.st.views.Load() + e.st.updates.Load()
	for range 50 {
		if _, err := e.svc.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: "alias/hot", Plaintext: []byte("x"), EncryptionContext: ec}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Decrypt(ctx, root, &kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.GenerateDataKey(ctx, root, &kmsapi.GenerateDataKeyInput{KeyID: id, KeySpec: "AES_256"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.st.views.Load() + e.st.updates.Load() - before; n != 0 {
		t.Fatalf("warm Encrypt/Decrypt/GenerateDataKey made %d storage transactions, want 0", n)
	}
}

// Every change to a key is seen by the very next request, although the hot
// path reads from the cache.
func TestChangesInvalidateTheCache(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.createKey(t)
	other := e.createKey(t)
	encrypt := func(ident string) error {
		_, err := e.svc.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: ident, Plaintext: []byte("x")})
		return err
	}
	if err := encrypt(id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DisableKey(ctx, root, &kmsapi.KeyIDInput{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	if err := encrypt(id); !fault.Is(err, fault.Disabled) {
		t.Fatalf("Encrypt right after DisableKey: %v, want DisabledException", err)
	}
	if _, err := e.svc.EnableKey(ctx, root, &kmsapi.KeyIDInput{KeyID: id}); err != nil {
		t.Fatal(err)
	}
	if err := encrypt(id); err != nil {
		t.Fatalf("Encrypt right after EnableKey: %v", err)
	}
	if _, err := e.svc.ScheduleKeyDeletion(ctx, root, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: i32(7)}); err != nil {
		t.Fatal(err)
	}
	if err := encrypt(id); !fault.Is(err, fault.InvalidState) {
		t.Fatalf("Encrypt right after ScheduleKeyDeletion: %v, want KMSInvalidStateException", err)
	}

	// An alias moved to another key is followed at once.
	if _, err := e.svc.CreateAlias(ctx, root, &kmsapi.AliasInput{AliasName: "alias/moving", TargetKeyID: other}); err != nil {
		t.Fatal(err)
	}
	out, err := e.svc.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: "alias/moving", Plaintext: []byte("x")})
	if err != nil || !bytes.HasSuffix([]byte(out.KeyID), []byte(other)) {
		t.Fatalf("Encrypt via alias: %v %v", out, err)
	}
	third := e.createKey(t)
	if _, err := e.svc.UpdateAlias(ctx, root, &kmsapi.AliasInput{AliasName: "alias/moving", TargetKeyID: third}); err != nil {
		t.Fatal(err)
	}
	out, err = e.svc.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: "alias/moving", Plaintext: []byte("x")})
	if err != nil || !bytes.HasSuffix([]byte(out.KeyID), []byte(third)) {
		t.Fatalf("Encrypt via updated alias went to %v (%v), want %s", out, err, third)
	}
	if _, err := e.svc.DeleteAlias(ctx, root, &kmsapi.DeleteAliasInput{AliasName: "alias/moving"}); err != nil {
		t.Fatal(err)
	}
	if err := encrypt("alias/moving"); !fault.Is(err, fault.NotFound) {
		t.Fatalf("Encrypt via deleted alias: %v, want NotFoundException", err)
	}
}

// A reader that loads a key while a writer changes it must not put the old
// state back into the cache after the writer's invalidation.
func TestConcurrentDisableIsNeverLostInCache(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for round := range 20 {
		id := e.createKey(t)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					e.svc.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("x")})
				}
			}()
		}
		if _, err := e.svc.DisableKey(ctx, root, &kmsapi.KeyIDInput{KeyID: id}); err != nil {
			t.Fatal(err)
		}
		close(stop)
		wg.Wait()
		_, err := e.svc.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("x")})
		if !fault.Is(err, fault.Disabled) {
			t.Fatalf("round %d: Encrypt after a concurrent DisableKey returned %v", round, err)
		}
	}
}

// Keys past their deletion date are gone at once and deleted by the sweeper,
// with their aliases; cancelled or future deletions are left alone.
func TestDeleteExpiredKeys(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	doomed, kept, cancelled := e.createKey(t), e.createKey(t), e.createKey(t)
	e.svc.CreateAlias(ctx, root, &kmsapi.AliasInput{AliasName: "alias/doomed", TargetKeyID: doomed})
	e.svc.CreateAlias(ctx, root, &kmsapi.AliasInput{AliasName: "alias/kept", TargetKeyID: kept})
	if _, err := e.svc.CreateGrant(ctx, root, &kmsapi.CreateGrantInput{KeyID: doomed, GranteePrincipal: "arn:aws:iam::" + root.AccountID + ":root",
		RetiringPrincipal: "arn:aws:iam::" + root.AccountID + ":root", Name: "app", Operations: []string{"Decrypt"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{doomed, cancelled} {
		if _, err := e.svc.ScheduleKeyDeletion(ctx, root, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: i32(7)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.ScheduleKeyDeletion(ctx, root, &kmsapi.ScheduleKeyDeletionInput{KeyID: kept, PendingWindowInDays: i32(30)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CancelKeyDeletion(ctx, root, &kmsapi.KeyIDInput{KeyID: cancelled}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(7*24*time.Hour - time.Second)
	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 0 {
		t.Fatalf("a second before the date: deleted %d, %v", n, err)
	}
	e.clock.Advance(time.Second)
	if _, err := e.svc.DescribeKey(ctx, root, &kmsapi.DescribeKeyInput{KeyID: doomed}); !fault.Is(err, fault.NotFound) {
		t.Fatalf("DescribeKey at the deletion date, before the sweep: %v, want NotFoundException", err)
	}
	if n, err := e.svc.DeleteExpiredKeys(ctx); err != nil || n != 1 {
		t.Fatalf("at the date: deleted %d, %v; want 1", n, err)
	}
	list, err := e.svc.ListKeys(ctx, root, &kmsapi.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range list.Keys {
		if k.KeyID == doomed {
			t.Fatal("deleted key still listed")
		}
	}
	if len(list.Keys) != 2 {
		t.Fatalf("%d keys left, want 2", len(list.Keys))
	}
	aliases, _ := e.svc.ListAliases(ctx, root, &kmsapi.ListAliasesInput{})
	if len(aliases.Aliases) != 1 || aliases.Aliases[0].AliasName != "alias/kept" {
		t.Fatalf("aliases after deletion: %+v", aliases.Aliases)
	}
	// Nothing of the key is left in the store.
	err = e.st.View(ctx, func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			if bytes.Contains(k, []byte(doomed)) || bytes.Contains(v, []byte(doomed)) {
				t.Errorf("record %s still mentions the deleted key", k)
			}
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestValidationMessages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.createKey(t)
	cases := []struct {
		name string
		call func() error
		want string
	}{
		{"plaintext too long", func() error {
			_, err := e.svc.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: id, Plaintext: make([]byte, 4097)})
			return err
		}, "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"},
		{"plaintext empty", func() error {
			_, err := e.svc.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte{}})
			return err
		}, "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{"keyId null", func() error {
			_, err := e.svc.DescribeKey(ctx, root, &kmsapi.DescribeKeyInput{})
			return err
		}, "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"},
		{"two violations", func() error {
			_, err := e.svc.Encrypt(ctx, root, &kmsapi.EncryptInput{Plaintext: make([]byte, 4097)})
			return err
		}, "2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null; Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"},
		{"random 0", func() error {
			_, err := e.svc.GenerateRandom(ctx, root, &kmsapi.GenerateRandomInput{NumberOfBytes: i32(0)})
			return err
		}, "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"random 1025", func() error {
			_, err := e.svc.GenerateRandom(ctx, root, &kmsapi.GenerateRandomInput{NumberOfBytes: i32(1025)})
			return err
		}, "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"},
		{"random missing", func() error {
			_, err := e.svc.GenerateRandom(ctx, root, &kmsapi.GenerateRandomInput{})
			return err
		}, "NumberOfBytes is required."},
		{"data key spec quirk", func() error {
			_, err := e.svc.GenerateDataKey(ctx, root, &kmsapi.GenerateDataKeyInput{KeyID: id, KeySpec: "AES-256"})
			return err
		}, "1 validation error detected: Value 'AES-256' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [RSA_2048, ECC_NIST_P384, ECC_NIST_P256, ECC_NIST_P521, HMAC_384, RSA_3072, ECC_SECG_P256K1, RSA_4096, SYMMETRIC_DEFAULT, HMAC_256, HMAC_224, HMAC_512, SM2, ML_DSA_44, ML_DSA_65, ML_DSA_87, ECC_NIST_EDWARDS25519, ML_KEM_512, ML_KEM_768, ML_KEM_1024]"},
		{"tag key too long", func() error {
			_, err := e.svc.TagResource(ctx, root, &kmsapi.TagResourceInput{KeyID: id, Tags: []kmsapi.Tag{{TagKey: string(bytes.Repeat([]byte("a"), 129))}}})
			return err
		}, fmt.Sprintf("1 validation error detected: Value '%s' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128", bytes.Repeat([]byte("a"), 129))},
		{"key usage enum", func() error {
			_, err := e.svc.CreateKey(ctx, root, &kmsapi.CreateKeyInput{KeyUsage: "RANDOM"})
			return err
		}, "1 validation error detected: Value 'RANDOM' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, KEY_AGREEMENT, ENCAPSULATE_DECAPSULATE]"},
		{"pending window", func() error {
			_, err := e.svc.ScheduleKeyDeletion(ctx, root, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: i32(6)})
			return err
		}, "PendingWindowInDays must be between 7 and 30"},
		{"malformed key id", func() error {
			_, err := e.svc.DescribeKey(ctx, root, &kmsapi.DescribeKeyInput{KeyID: "134f2428cec14b25a1ae9048164dba47"})
			return err
		}, "Invalid keyId '134f2428cec14b25a1ae9048164dba47'"},
		{"alias as target", func() error {
			_, err := e.svc.CreateAlias(ctx, root, &kmsapi.AliasInput{AliasName: "alias/a", TargetKeyID: "alias/b"})
			return err
		}, "Aliases must refer to keys. Not aliases"},
		{"alias id form for management op", func() error {
			_, err := e.svc.DisableKey(ctx, root, &kmsapi.KeyIDInput{KeyID: "alias/b"})
			return err
		}, "Invalid keyId 'alias/b'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

// A failed operation changes nothing.
func TestRefusedRequestsChangeNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.createKey(t)
	e.svc.TagResource(ctx, root, &kmsapi.TagResourceInput{KeyID: id, Tags: []kmsapi.Tag{{TagKey: "a", TagValue: "1"}}})
	snapshot := func() map[string]string {
		m := map[string]string{}
		e.st.View(ctx, func(tx store.Tx) error {
			return tx.Scan(nil, nil, func(k, v []byte) (bool, error) { m[string(k)] = string(v); return true, nil })
		})
		return m
	}
	before := snapshot()
	e.svc.TagResource(ctx, root, &kmsapi.TagResourceInput{KeyID: id, Tags: []kmsapi.Tag{{TagKey: "b", TagValue: "2"}, {TagKey: "aws:x", TagValue: "3"}}})
	e.svc.CreateAlias(ctx, root, &kmsapi.AliasInput{AliasName: "alias/aws/x", TargetKeyID: id})
	e.svc.ScheduleKeyDeletion(ctx, root, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: i32(3)})
	e.svc.CreateKey(ctx, root, &kmsapi.CreateKeyInput{KeySpec: "SM2", KeyUsage: "SIGN_VERIFY"})
	e.svc.CreateKey(ctx, root, &kmsapi.CreateKeyInput{KeySpec: "HMAC_256", KeyUsage: "SIGN_VERIFY"})
	e.svc.CreateKey(ctx, root, &kmsapi.CreateKeyInput{Policy: ptr("not json")})
	e.svc.CancelKeyDeletion(ctx, root, &kmsapi.KeyIDInput{KeyID: id})
	after := snapshot()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("refused requests changed the store:\nbefore %v\nafter  %v", before, after)
	}
}

func ptr(s string) *string { return &s }

// Material sealed for one key version does not open as another.
func TestMaterialIsBoundToItsRecord(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, b := e.createKey(t), e.createKey(t)
	// Swap the sealed material of the two keys in the store: both must
	// then fail to load rather than encrypt under the wrong material.
	err := e.st.Update(ctx, func(tx store.Tx) error {
		ka := []byte("keyver/us-east-1/" + a + "/00000001")
		kb := []byte("keyver/us-east-1/" + b + "/00000001")
		va, err := tx.Get(ka)
		if err != nil {
			return err
		}
		vb, err := tx.Get(kb)
		if err != nil {
			return err
		}
		if err := tx.Put(ka, vb); err != nil {
			return err
		}
		return tx.Put(kb, va)
	})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := service.New(service.Config{Store: e.st, RootKey: e.root, Region: "us-east-1", Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = fresh.Encrypt(ctx, root, &kmsapi.EncryptInput{KeyID: a, Plaintext: []byte("x")})
	if !fault.Is(err, fault.Internal) {
		t.Fatalf("Encrypt with swapped material: %v, want an internal error", err)
	}
}

// A listing of a key's grants to a service principal is empty, as this
// server makes no such grant, and reads none of the key's grants (up to
// 50,000) to find that out.
func TestListGrantsOfAServicePrincipalReadsNoGrant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.createKey(t)
	for range 3 {
		if _, err := e.svc.CreateGrant(ctx, root, &kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: root.ARN, Operations: []string{"Encrypt"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.DescribeKey(ctx, root, &kmsapi.DescribeKeyInput{KeyID: id}); err != nil { // the key is cached
		t.Fatal(err)
	}
	views := e.st.views.Load()
	out, err := e.svc.ListGrants(ctx, root, &kmsapi.ListGrantsInput{KeyID: id, GranteeServicePrincipal: "s3.amazonaws.com"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Grants == nil || len(out.Grants) != 0 || out.NextMarker != "" || out.Truncated {
		t.Errorf("ListGrants of a service principal: %+v, want no grant", out)
	}
	if n := e.st.views.Load() - views; n != 0 {
		t.Errorf("ListGrants of a service principal read the store %d times, want none", n)
	}
}

// A listing of a key's grants filtered by GrantId reads that grant's
// record, not every grant of the key (up to 50,000), and lists it only
// after a marker that comes before it.
func TestListGrantsByIDReadsOneGrant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.createKey(t)
	var ids []string
	for range 5 {
		g, err := e.svc.CreateGrant(ctx, root, &kmsapi.CreateGrantInput{KeyID: id, GranteePrincipal: root.ARN, Operations: []string{"Encrypt"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, g.GrantID)
	}
	if _, err := e.svc.DescribeKey(ctx, root, &kmsapi.DescribeKeyInput{KeyID: id}); err != nil { // the key is cached
		t.Fatal(err)
	}
	list := func(in *kmsapi.ListGrantsInput) *kmsapi.ListGrantsOutput {
		t.Helper()
		in.KeyID = id
		out, err := e.svc.ListGrants(ctx, root, in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, g := range ids {
		reads := e.st.viewReads.Load()
		out := list(&kmsapi.ListGrantsInput{GrantID: g})
		if len(out.Grants) != 1 || out.Grants[0].GrantID != g || out.NextMarker != "" || out.Truncated {
			t.Fatalf("ListGrants of grant %s: %+v, want that grant alone", g, out)
		}
		if n := e.st.viewReads.Load() - reads; n != 1 {
			t.Errorf("ListGrants of one grant read %d records, want 1", n)
		}
		if out := list(&kmsapi.ListGrantsInput{GrantID: g, GranteePrincipal: "arn:aws:iam::111122223333:user/other"}); len(out.Grants) != 0 {
			t.Errorf("ListGrants of grant %s to another grantee: %+v, want none", g, out.Grants)
		}
	}
	unknown := strings.Repeat("0", 64)
	if out := list(&kmsapi.ListGrantsInput{GrantID: unknown}); out.Grants == nil || len(out.Grants) != 0 || out.NextMarker != "" {
		t.Errorf("ListGrants of an unknown grant: %+v, want an empty list", out)
	}
	// Page through the whole listing one grant at a time; each marker
	// lists a grant by id only if it comes after the marker.
	var marker *string
	for {
		page := list(&kmsapi.ListGrantsInput{Limit: new(int32(1)), Marker: marker})
		if page.NextMarker == "" {
			break
		}
		m := page.NextMarker
		marker = &m
		for _, g := range ids {
			after := g > page.Grants[0].GrantID
			out := list(&kmsapi.ListGrantsInput{GrantID: g, Marker: marker})
			if got := len(out.Grants) == 1; got != after {
				t.Errorf("ListGrants of grant %s after the page ending at %s: %d grants, want listed=%v", g, page.Grants[0].GrantID, len(out.Grants), after)
			}
		}
	}
}
