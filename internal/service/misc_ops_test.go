package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"

	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
)

func TestNewRequiresItsDependencies(t *testing.T) {
	f := newFixture(t)
	for _, cfg := range []service.Config{
		{RootKey: f.rk, Region: region},
		{Store: f.st, Region: region},
		{Store: f.st, RootKey: f.rk},
	} {
		if s, err := service.New(cfg); err == nil || s != nil {
			t.Errorf("New(%+v) = %v, %v; want an error", cfg, s, err)
		}
	}
	if got := f.svc.Region(); got != region {
		t.Fatalf("Region() = %q", got)
	}
}

// Timestamps encode as AWS's JSON protocol does: seconds since the epoch
// with milliseconds as a fraction.
func TestTimeJSON(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 123e6, time.UTC)
	b, err := json.Marshal(kmsapi.Time(at))
	if err != nil || string(b) != "1767225600.123" {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var back kmsapi.Time
	if err := json.Unmarshal(b, &back); err != nil || !time.Time(back).Equal(at) {
		t.Fatalf("Unmarshal = %v, %v", time.Time(back), err)
	}
	if err := json.Unmarshal([]byte(`"yesterday"`), &back); err == nil {
		t.Fatal("Unmarshal of a string succeeded")
	}
}

// failingStore fails the kinds of transaction it is told to.
type failingStore struct {
	store.Store
	failViews, failUpdates bool
}

var errDisk = errors.New("disk on fire")

func (s *failingStore) View(ctx context.Context, fn func(store.Tx) error) error {
	if s.failViews {
		return errDisk
	}
	return s.Store.View(ctx, fn)
}

func (s *failingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if s.failUpdates {
		return errDisk
	}
	return s.Store.Update(ctx, fn)
}

// A storage failure is an internal error whose cause the client never sees.
func TestStorageFailureIsInternal(t *testing.T) {
	f := newFixture(t)
	id := f.createKey(kmsapi.CreateKeyInput{})
	cold := f.createKey(kmsapi.CreateKeyInput{}) // never read through the failing store
	fs := &failingStore{Store: f.st}
	var logged strings.Builder
	s, err := service.New(service.Config{Store: fs, RootKey: f.rk, Region: region, Now: func() time.Time { return f.now },
		Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	fs.failUpdates = true
	for name, call := range map[string]func() error{
		"CreateKey": func() error { _, err := s.CreateKey(f.ctx, rootA, &kmsapi.CreateKeyInput{}); return err },
		"DisableKey": func() error {
			_, err := s.DisableKey(f.ctx, rootA, &kmsapi.KeyIDInput{KeyID: id})
			return err
		},
		"CreateAlias": func() error {
			_, err := s.CreateAlias(f.ctx, rootA, &kmsapi.AliasInput{AliasName: "alias/x", TargetKeyID: id})
			return err
		},
	} {
		err := call()
		wantErr(t, err, fault.Internal, "An internal error occurred.")
		if !strings.Contains(logged.String(), "disk on fire") || !strings.Contains(logged.String(), "op="+name) {
			t.Fatalf("%s: the cause was not logged: %s", name, logged.String())
		}
	}
	fs.failUpdates, fs.failViews = false, true
	_, err = s.ListKeys(f.ctx, rootA, &kmsapi.ListKeysInput{})
	wantErr(t, err, fault.Internal, "An internal error occurred.")
	_, err = s.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: cold, Plaintext: []byte("p")})
	wantErr(t, err, fault.Internal, "An internal error occurred.")
	if err := s.Maintain(f.ctx); err == nil {
		t.Fatal("Maintain hid a storage failure")
	}
	// A corrupt record is an internal error too, not a missing key.
	f.must(f.st.Update(f.ctx, func(tx store.Tx) error { return tx.Put([]byte("key/us-east-1/"+id), []byte("{not json")) }))
	fresh := f.newService(service.Config{})
	_, err = fresh.DescribeKey(f.ctx, rootA, &kmsapi.DescribeKeyInput{KeyID: id})
	wantErr(t, err, fault.Internal, "An internal error occurred.")
}

// The key cache answers repeated lookups without the store, and a tiny
// cache still gives every key its own material.
func TestKeyCache(t *testing.T) {
	f := newFixture(t)
	f.svc = f.newService(service.Config{CacheSize: 1})
	a, b := f.createKey(kmsapi.CreateKeyInput{}), f.createKey(kmsapi.CreateKeyInput{})
	encrypt := func(id string) {
		t.Helper()
		out, err := f.svc.Encrypt(f.ctx, rootA, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("p")})
		if err != nil || out.KeyID != keyARN(acctA, id) {
			t.Fatalf("Encrypt(%s) = %+v, %v", id, out, err)
		}
	}
	encrypt(a)
	hits, misses := f.svc.KeyCacheStats()
	for range 10 {
		encrypt(a)
	}
	h2, m2 := f.svc.KeyCacheStats()
	if h2-hits != 10 || m2 != misses {
		t.Fatalf("10 warm lookups: %d hits, %d misses", h2-hits, m2-misses)
	}
	for range 5 {
		encrypt(a)
		encrypt(b)
	}
	if _, m3 := f.svc.KeyCacheStats(); m3 == m2 {
		t.Fatal("two keys in a cache of one never missed")
	}
}
