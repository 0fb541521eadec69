package service_test

import (
	"testing"
	"time"

	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/service"
)

// Uses are noted in memory: Encrypt and Decrypt write nothing to the
// store, and a flush writes each used key's record once.
func TestKeyUsageIsFlushedLazily(t *testing.T) {
	f := newFixture(t)
	root := accountRoot(acctA)
	id := f.createKey(kmsapi.CreateKeyInput{})
	before := f.snapshot()
	for range 10 {
		f.advance(time.Second)
		out, err := f.svc.Encrypt(f.ctx, root, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("x")})
		f.must(err)
		f.must2(f.svc.Decrypt(f.ctx, root, &kmsapi.DecryptInput{CiphertextBlob: out.CiphertextBlob}))
	}
	if after := f.snapshot(); !sameRecords(before, after) {
		t.Fatal("Encrypt and Decrypt wrote to the store")
	}
	last := f.now
	got, err := f.svc.GetKeyLastUsage(f.ctx, root, &kmsapi.KeyIDInput{KeyID: id})
	f.must(err)
	if got.KeyLastUsage == nil || got.KeyLastUsage.Operation != "Decrypt" || !time.Time(*got.KeyLastUsage.Timestamp).Equal(last) {
		t.Fatalf("before the flush: %+v", got.KeyLastUsage)
	}
	f.must(f.svc.FlushKeyUsage(f.ctx))
	after := f.snapshot()
	changed := 0
	for k, v := range after {
		if before[k] != v {
			changed++
			if k != "key/"+region+"/"+id {
				t.Errorf("the flush changed %s", k)
			}
		}
	}
	if changed != 1 || len(after) != len(before) {
		t.Errorf("the flush changed %d records and made %d; want the key record only", changed, len(after)-len(before))
	}
	// Nothing new to write: the next flush writes nothing.
	f.must(f.svc.FlushKeyUsage(f.ctx))
	if !sameRecords(after, f.snapshot()) {
		t.Error("a flush with no new use wrote to the store")
	}
	// A service that has not seen the use (another node, or after a
	// restart) reads it from the record.
	other := f.newService(service.Config{})
	got, err = other.GetKeyLastUsage(f.ctx, root, &kmsapi.KeyIDInput{KeyID: id})
	f.must(err)
	if got.KeyLastUsage == nil || !time.Time(*got.KeyLastUsage.Timestamp).Equal(last) {
		t.Errorf("from the record: %+v", got.KeyLastUsage)
	}
}

// Two nodes flushing in either order keep the newer use.
func TestKeyUsageFlushKeepsTheNewerUse(t *testing.T) {
	f := newFixture(t)
	root := accountRoot(acctA)
	id := f.createKey(kmsapi.CreateKeyInput{})
	other := f.newService(service.Config{})
	f.advance(time.Second)
	f.must2(f.svc.Encrypt(f.ctx, root, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("x")}))
	f.advance(time.Second)
	newer := f.now
	f.must2(other.GenerateDataKey(f.ctx, root, &kmsapi.GenerateDataKeyInput{KeyID: id, KeySpec: "AES_256"}))
	f.must(other.FlushKeyUsage(f.ctx))
	f.must(f.svc.FlushKeyUsage(f.ctx))
	third := f.newService(service.Config{})
	got, err := third.GetKeyLastUsage(f.ctx, root, &kmsapi.KeyIDInput{KeyID: id})
	f.must(err)
	if u := got.KeyLastUsage; u == nil || u.Operation != "GenerateDataKey" || !time.Time(*u.Timestamp).Equal(newer) {
		t.Errorf("KeyLastUsage = %+v; want GenerateDataKey at %v", u, newer)
	}
}
