package rootkey

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ThalesGroup/crypto11"

	"github.com/openkms/kms/internal/hsm"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/testsupport"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func put(t *testing.T, st store.Store, name, value []byte) {
	t.Helper()
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.Put(name, value) }); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, st store.Store, name []byte) []byte {
	t.Helper()
	var v []byte
	st.View(context.Background(), func(tx store.Tx) error {
		if b, err := tx.Get(name); err == nil {
			v = bytes.Clone(b)
		}
		return nil
	})
	return v
}

// same reports whether a and b are the same root key.
func same(a, b *keys.RootKey) bool {
	aad := []byte("probe")
	pt, err := b.Open(aad, a.Seal(aad, []byte("x")))
	return err == nil && string(pt) == "x"
}

func TestKeyInHand(t *testing.T) {
	ctx := context.Background()
	key, err := keys.ParseRootKey(keys.GenerateRootKey())
	if err != nil {
		t.Fatal(err)
	}
	src := FromKey(key, "test key")
	st := openStore(t)
	root, err := src.Root(ctx, st, true)
	if err != nil || root != key {
		t.Fatalf("Root = %v, %v; want the key itself", root, err)
	}
	if get(t, st, keys.WrappedRootRecord) != nil {
		t.Errorf("a key in hand wrote a %s record", keys.WrappedRootRecord)
	}
	if r, w, err := src.Fresh(); r != key || w != nil || err != nil {
		t.Errorf("Fresh = %v, %x, %v; want the key and no record", r, w, err)
	}
	put(t, st, keys.WrappedRootRecord, []byte{1, 2, 3})
	if _, err := src.Root(ctx, st, true); err == nil || !strings.Contains(err.Error(), "kept in a PKCS#11 token") {
		t.Errorf("Root on a store whose root key is wrapped: %v", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "root.key")
	text := keys.GenerateRootKey()
	if err := os.WriteFile(file, text, 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := Load(Spec{File: file})
	if err != nil || a.InToken() {
		t.Fatalf("Load(file) = %v, %v", a, err)
	}
	b, err := Load(Spec{Value: string(text), ValueName: "KMS_ROOT_KEY"})
	if err != nil || !same(a.key, b.key) || b.String() != "KMS_ROOT_KEY" {
		t.Fatalf("Load(text) = %v, %v", b, err)
	}
	for _, s := range []Spec{{}, {Value: "short", ValueName: "KMS_ROOT_KEY"}, {Value: "pkcs11:token=a", ValueName: "--root-key"},
		{Value: "pkcs11:token=a;object=b", ValueName: "--root-key"}} {
		if src, err := Load(s); err == nil {
			t.Errorf("Load(%+v) = %v; want an error", s, src)
		}
	}
}

// A file and a value are two root keys: neither wins, and the error names
// where each came from.
func TestLoadRefusesTwoKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "root.key")
	if err := os.WriteFile(file, keys.GenerateRootKey(), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		spec Spec
		want []string
	}{
		{Spec{File: file, Value: "pkcs11:token=kms;object=root"}, []string{"--root-key-file", "--root-key"}},
		{Spec{File: file, FileName: "KMS_ROOT_KEY_FILE", Value: string(keys.GenerateRootKey()), ValueName: "KMS_ROOT_KEY"},
			[]string{"KMS_ROOT_KEY_FILE", "KMS_ROOT_KEY"}},
	}
	for _, tc := range tests {
		src, err := Load(tc.spec)
		if err == nil {
			src.Close()
			t.Errorf("Load(%+v) = %v; want an error", tc.spec, src)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(err.Error(), "by "+want) {
				t.Errorf("Load(%+v): %v; want it to name %s", tc.spec, err, want)
			}
		}
	}
}

func TestPKCS11Source(t *testing.T) {
	ctx := context.Background()
	module := testsupport.SoftHSM(t)
	for _, label := range []string{"root", "other"} {
		u, _ := hsm.ParseURI("pkcs11:token=kms;object=" + label)
		if err := hsm.Create(module, u, "1234"); err != nil {
			t.Fatal(err)
		}
	}
	load := func(label string) *Source {
		t.Helper()
		src, err := Load(Spec{Value: "pkcs11:token=kms;object=" + label + "?pin-value=1234", Module: module})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		if !src.InToken() || strings.Contains(src.String(), "1234") {
			t.Fatalf("Source %q", src)
		}
		return src
	}
	src := load("root")
	st := openStore(t)
	if _, err := src.Root(ctx, st, false); err == nil {
		t.Error("Root without create on an empty store succeeded")
	}
	if get(t, st, keys.WrappedRootRecord) != nil {
		t.Error("Root without create wrote a record")
	}
	root, err := src.Root(ctx, st, true)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := get(t, st, keys.WrappedRootRecord)
	if len(wrapped) != 1+12+keys.RootKeySize+16 || wrapped[0] != wrappedVersion {
		t.Fatalf("%s = %x", keys.WrappedRootRecord, wrapped)
	}
	again, err := load("root").Root(ctx, st, true)
	if err != nil || !same(root, again) {
		t.Fatalf("a second Root = %v, %v; want the same key", again, err)
	}
	if !bytes.Equal(get(t, st, keys.WrappedRootRecord), wrapped) {
		t.Error("a second Root rewrote the record")
	}
	// The record opens with that token key only, and only unaltered.
	if _, err := load("other").Root(ctx, st, true); err == nil || !strings.Contains(err.Error(), "not the one") {
		t.Errorf("Root with another token key: %v", err)
	}
	for i := range wrapped {
		bad := bytes.Clone(wrapped)
		bad[i] ^= 0x40
		if k, err := src.Unwrap(bad); err == nil {
			t.Fatalf("Unwrap with byte %d altered = %v", i, k)
		}
	}
	if _, err := src.Unwrap(nil); err == nil {
		t.Error("Unwrap(nil) with a token key succeeded")
	}
	// A store made with a key in hand is refused.
	other := openStore(t)
	put(t, other, keys.RootCheckRecord, []byte("sealed"))
	if _, err := src.Root(ctx, other, true); err == nil || !strings.Contains(err.Error(), "not kept in a PKCS#11 token") {
		t.Errorf("Root on a store made with a file key: %v", err)
	}
	if get(t, other, keys.WrappedRootRecord) != nil {
		t.Error("Root on a store made with a file key wrote a record")
	}
	// Fresh keys differ and each unwraps from its record.
	k1, w1, err1 := src.Fresh()
	k2, w2, err2 := src.Fresh()
	if err1 != nil || err2 != nil || same(k1, k2) || bytes.Equal(w1, w2) {
		t.Fatalf("Fresh twice: %v, %v", err1, err2)
	}
	if k, err := src.Unwrap(w2); err != nil || !same(k, k2) {
		t.Errorf("Unwrap(Fresh) = %v, %v", k, err)
	}
}

// noDecryptKey makes an AES key labelled label in the token of module
// that may encrypt but not decrypt (CKA_DECRYPT false), as other tools
// can make one.
func noDecryptKey(t *testing.T, module, label string) {
	t.Helper()
	ctx, err := crypto11.Configure(&crypto11.Config{Path: module, TokenLabel: "kms", Pin: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	attrs, err := crypto11.NewAttributeSetWithIDAndLabel([]byte(label), []byte(label))
	if err != nil {
		t.Fatal(err)
	}
	attrs.Set(crypto11.CkaDecrypt, false)
	if _, err := ctx.GenerateSecretKeyWithAttributes(attrs, 256, crypto11.CipherAES); err != nil {
		t.Fatal(err)
	}
}

// A token that refuses to unwrap the store's root key is not reported as
// the wrong root key: the error says why the token refused.
func TestPKCS11KeyThatMayNotDecrypt(t *testing.T) {
	module := testsupport.SoftHSM(t)
	noDecryptKey(t, module, "no-decrypt")
	src, err := Load(Spec{Value: "pkcs11:token=kms;object=no-decrypt?pin-value=1234", Module: module})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sealed, err := src.token.Seal(wrappedAAD(), keys.GenerateRootKey()[:keys.RootKeySize])
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Unwrap(append([]byte{wrappedVersion}, sealed...))
	if err == nil || strings.Contains(err.Error(), "not the one") || !strings.Contains(err.Error(), "CKA_DECRYPT") {
		t.Errorf("Unwrap with a key that may not decrypt: %v; want the token's refusal, not the wrong key", err)
	}
}

// A token key that wraps the store's root key but cannot unwrap it again
// is refused before the record is written: the store would never open.
func TestPKCS11FreshUnwrapsWhatItWrapped(t *testing.T) {
	ctx := context.Background()
	module := testsupport.SoftHSM(t)
	noDecryptKey(t, module, "no-decrypt")
	src, err := Load(Spec{Value: "pkcs11:token=kms;object=no-decrypt?pin-value=1234", Module: module})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, _, err := src.Fresh(); err == nil || !strings.Contains(err.Error(), "does not unwrap") {
		t.Errorf("Fresh: %v; want an error", err)
	}
	st := openStore(t)
	if _, err := src.Root(ctx, st, true); err == nil || !strings.Contains(err.Error(), "CKA_DECRYPT") {
		t.Errorf("Root on a new store: %v; want the token's refusal", err)
	}
	if get(t, st, keys.WrappedRootRecord) != nil {
		t.Errorf("Root wrote a %s record the token cannot open", keys.WrappedRootRecord)
	}
}

// A key in a token that lets it out (CKA_EXTRACTABLE, as another tool can
// make one) is refused as a root key, naming the way off it; only the old
// key of a rotation (Spec.Leaving) may be one, so that a store can move
// onto a key that stays in the token.
func TestPKCS11KeyThatMayLeaveTheToken(t *testing.T) {
	ctx := context.Background()
	module := testsupport.SoftHSM(t)
	c11, err := crypto11.Configure(&crypto11.Config{Path: module, TokenLabel: "kms", Pin: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := crypto11.NewAttributeSetWithIDAndLabel([]byte("leaky"), []byte("leaky"))
	if err != nil {
		t.Fatal(err)
	}
	attrs.Set(crypto11.CkaExtractable, true)
	if _, err := c11.GenerateSecretKeyWithAttributes(attrs, 256, crypto11.CipherAES); err != nil {
		t.Fatal(err)
	}
	c11.Close()
	spec := Spec{Value: "pkcs11:token=kms;object=leaky?pin-value=1234", Module: module}
	if src, err := Load(spec); err == nil || !strings.Contains(err.Error(), "lets this key out") || !strings.Contains(err.Error(), "kms root-key rotate") {
		if src != nil {
			src.Close()
		}
		t.Fatalf("Load of an extractable key: %v", err)
	}
	spec.Leaving = true
	src, err := Load(spec)
	if err != nil {
		t.Fatalf("Load of an extractable key as a rotation's old key: %v", err)
	}
	defer src.Close()
	if _, err := src.Root(ctx, openStore(t), true); err != nil {
		t.Fatal(err)
	}
}
