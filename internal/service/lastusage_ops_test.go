package service_test

import (
	"testing"
	"time"

	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
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

// A key record changed outside the server between a use and the flush
// does not keep the flush from writing the other keys' uses: its own use
// is dropped, as the calls on it now fail, and the others are written.
func TestKeyUsageFlushGoesPastAnEditedRecord(t *testing.T) {
	f := newFixture(t)
	raw := f.st
	f.st = authstore.Wrap(raw, authstore.NewKey(f.rk))
	f.svc = f.newService(service.Config{})
	root := accountRoot(acctA)
	var ids []string
	for range 3 {
		id := f.createKey(kmsapi.CreateKeyInput{})
		f.must2(f.svc.Encrypt(f.ctx, root, &kmsapi.EncryptInput{KeyID: id, Plaintext: []byte("x")}))
		ids = append(ids, id)
	}
	edited := ids[1]
	f.must(raw.Update(f.ctx, func(tx store.Tx) error {
		name := []byte("key/" + region + "/" + edited)
		v, err := tx.Get(name)
		if err != nil {
			return err
		}
		return tx.Put(name, append(v[:len(v):len(v)], ' '))
	}))
	if err := f.svc.FlushKeyUsage(f.ctx); err != nil {
		t.Errorf("FlushKeyUsage: %v", err)
	}
	other := f.newService(service.Config{}) // reads the uses from the records
	for _, id := range ids {
		got, err := other.GetKeyLastUsage(f.ctx, root, &kmsapi.KeyIDInput{KeyID: id})
		if id == edited {
			if err == nil || fault.CodeOf(err) != fault.Internal {
				t.Errorf("GetKeyLastUsage of the edited key: %v, want an internal error", err)
			}
			continue
		}
		if err != nil || got.KeyLastUsage == nil || got.KeyLastUsage.Operation != "Encrypt" {
			t.Errorf("the use of %s after the flush: %+v %v", id, got, err)
		}
	}
}
