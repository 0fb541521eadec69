package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/service"
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
// record drops the alias, a grant record drops its key.
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
