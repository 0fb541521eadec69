//go:build cgo

package hsm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
	"github.com/openkms/kms/internal/testsupport"
)

// failingAEAD is AES-GCM whose first Open fails with first, and whose
// later ones (Key.Open's probe) fail with later, or work if it is nil.
type failingAEAD struct {
	cipher.AEAD
	first, later error
	opens        int
}

func (f *failingAEAD) Open(dst, nonce, ciphertext, aad []byte) ([]byte, error) {
	f.opens++
	if f.opens == 1 {
		return nil, f.first
	}
	if f.later != nil {
		return nil, f.later
	}
	return f.AEAD.Open(dst, nonce, ciphertext, aad)
}

// Key.Open reports a value that does not open as ErrOpen, and the token's
// refusal or failure as itself: a caller must not take a token that
// cannot decrypt for the wrong key.
func TestOpenTellsTheWrongKeyFromAFailingToken(t *testing.T) {
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	// As crypto11 reports them: the return value in the text.
	rv := func(step string, p uint) error { return fmt.Errorf("%s: %v", step, pkcs11.Error(p)) }
	tests := []struct {
		name         string
		first, later error
		want         string // "" for ErrOpen
	}{
		{"data invalid", rv("C_Decrypt", pkcs11.CKR_ENCRYPTED_DATA_INVALID), nil, ""},
		{"data length", rv("C_Decrypt", pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE), nil, ""},
		{"data invalid, unwrapped", pkcs11.Error(pkcs11.CKR_ENCRYPTED_DATA_INVALID), nil, ""},
		{"general error, key works", rv("C_Decrypt", pkcs11.CKR_GENERAL_ERROR), nil, ""},
		{"function failed, key works", rv("C_Decrypt", pkcs11.CKR_FUNCTION_FAILED), nil, ""},
		{"general error, key fails too", rv("C_Decrypt", pkcs11.CKR_GENERAL_ERROR), rv("C_Decrypt", pkcs11.CKR_GENERAL_ERROR), "CKR_GENERAL_ERROR"},
		{"may not decrypt", rv("C_DecryptInit", pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED), nil, "CKA_DECRYPT"},
		{"device error", rv("C_Decrypt", pkcs11.CKR_DEVICE_ERROR), nil, "CKR_DEVICE_ERROR"},
		{"device removed", rv("C_DecryptInit", pkcs11.CKR_DEVICE_REMOVED), nil, "token not present"},
		{"session closed", rv("C_DecryptInit", pkcs11.CKR_SESSION_HANDLE_INVALID), nil, "CKR_SESSION_HANDLE_INVALID"},
		{"not logged in", rv("C_DecryptInit", pkcs11.CKR_USER_NOT_LOGGED_IN), nil, "CKR_USER_NOT_LOGGED_IN"},
		{"context closed", errors.New("context is closed"), nil, "context is closed"},
	}
	for _, tc := range tests {
		k := &Key{aead: &failingAEAD{AEAD: gcm, first: tc.first, later: tc.later}}
		sealed, err := k.Seal([]byte("aad"), []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = k.Open([]byte("aad"), sealed)
		switch {
		case tc.want == "" && !errors.Is(err, ErrOpen):
			t.Errorf("%s: Open = %v; want ErrOpen", tc.name, err)
		case tc.want != "" && (errors.Is(err, ErrOpen) || err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: Open = %v; want an error saying %q, not ErrOpen", tc.name, err, tc.want)
		}
	}
}

// With SoftHSM: an altered value, other additional data or another key
// is ErrOpen (SoftHSM says CKR_GENERAL_ERROR for a tag that does not
// verify); a key that may not decrypt, and a key logged out, are not.
func TestOpenSoftHSM(t *testing.T) {
	module := testsupport.SoftHSM(t)
	for _, label := range []string{"root", "other"} {
		if err := Create(module, URI{Token: "kms", Object: label}, "1234"); err != nil {
			t.Fatal(err)
		}
	}
	// A key that encrypts but may not decrypt, as another tool can make.
	ctx, err := crypto11.Configure(&crypto11.Config{Path: module, TokenLabel: "kms", Pin: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := crypto11.NewAttributeSetWithIDAndLabel([]byte("no-decrypt"), []byte("no-decrypt"))
	if err != nil {
		t.Fatal(err)
	}
	attrs.Set(crypto11.CkaDecrypt, false)
	if _, err := ctx.GenerateSecretKeyWithAttributes(attrs, 256, crypto11.CipherAES); err != nil {
		t.Fatal(err)
	}
	ctx.Close()
	open := func(label string) *Key {
		t.Helper()
		k, err := Open(module, URI{Token: "kms", Object: label}, "1234")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { k.Close() })
		return k
	}
	root, other, noDecrypt := open("root"), open("other"), open("no-decrypt")
	aad := []byte("aad")
	sealed, err := root.Seal(aad, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := root.Open(aad, sealed); err != nil || !bytes.Equal(pt, []byte("secret")) {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 1
		if _, err := root.Open(aad, bad); !errors.Is(err, ErrOpen) {
			t.Errorf("Open with byte %d altered = %v; want ErrOpen", i, err)
		}
	}
	if _, err := root.Open([]byte("other"), sealed); !errors.Is(err, ErrOpen) {
		t.Errorf("Open with other additional data = %v; want ErrOpen", err)
	}
	if _, err := other.Open(aad, sealed); !errors.Is(err, ErrOpen) {
		t.Errorf("Open with another key = %v; want ErrOpen", err)
	}
	sealed, err = noDecrypt.Seal(aad, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noDecrypt.Open(aad, sealed); errors.Is(err, ErrOpen) || err == nil || !strings.Contains(err.Error(), "CKA_DECRYPT") {
		t.Errorf("Open with a key that may not decrypt = %v; want an error naming CKA_DECRYPT, not ErrOpen", err)
	}
	sealed, err = root.Seal(aad, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	root.Close()
	if _, err := root.Open(aad, sealed); errors.Is(err, ErrOpen) || err == nil {
		t.Errorf("Open after Close = %v; want an error, not ErrOpen", err)
	}
}

// A key the token lets out, extractable or not sensitive (as another tool
// can make one), is reported as such; the key Create makes is not.
func TestMayLeave(t *testing.T) {
	module := testsupport.SoftHSM(t)
	if err := Create(module, URI{Token: "kms", Object: "kept"}, "1234"); err != nil {
		t.Fatal(err)
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: module, TokenLabel: "kms", Pin: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		label string
		attr  crypto11.AttributeType
		value bool
	}{{"extractable", crypto11.CkaExtractable, true}, {"not-sensitive", crypto11.CkaSensitive, false}} {
		attrs, err := crypto11.NewAttributeSetWithIDAndLabel([]byte(k.label), []byte(k.label))
		if err != nil {
			t.Fatal(err)
		}
		attrs.Set(k.attr, k.value)
		if _, err := ctx.GenerateSecretKeyWithAttributes(attrs, 256, crypto11.CipherAES); err != nil {
			t.Fatal(err)
		}
	}
	ctx.Close()
	for label, want := range map[string]bool{"kept": false, "extractable": true, "not-sensitive": true} {
		k, err := Open(module, URI{Token: "kms", Object: label}, "1234")
		if err != nil {
			t.Fatal(err)
		}
		if got := k.MayLeave(); got != want {
			t.Errorf("MayLeave of the key %s = %v, want %v", label, got, want)
		}
		k.Close()
	}
}
