//go:build cgo

package hsm

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
)

// Key is an AES-256 key inside a token. It is safe for concurrent use.
type Key struct {
	ctx  *crypto11.Context
	aead cipher.AEAD
	// mayLeave: the token lets the key out (MayLeave).
	mayLeave  bool
	closeOnce sync.Once
	closeErr  error
}

// MayLeave reports whether the token lets the key's value out: it is
// CKA_EXTRACTABLE (another key may wrap it and carry it off) or not
// CKA_SENSITIVE (its value may be read), or the token did not say. A key
// that kms root-key init makes is neither; one made by another tool may
// be.
func (k *Key) MayLeave() bool { return k.mayLeave }

// Open logs into the token of u through the PKCS#11 module at module
// with pin, and finds the AES key labelled u.Object. Its error is one line
// that says what is wrong: the module file is missing or does not load,
// no token has the label, the PIN is incorrect or locked, no key (or more
// than one) has the label.
func Open(module string, u URI, pin string) (*Key, error) {
	ctx, err := login(module, u, pin)
	if err != nil {
		return nil, err
	}
	found, err := ctx.FindKeys(nil, []byte(u.Object))
	if err != nil {
		ctx.Close()
		return nil, fmt.Errorf("find key %q: %s", u.Object, reason(err))
	}
	switch len(found) {
	case 0:
		ctx.Close()
		return nil, fmt.Errorf("no secret key labelled %q in token %q", u.Object, u.Token)
	case 1:
	default:
		ctx.Close()
		return nil, fmt.Errorf("%d secret keys are labelled %q in token %q: give the root key a label of its own", len(found), u.Object, u.Token)
	}
	if found[0].Cipher != crypto11.CipherAES {
		ctx.Close()
		return nil, fmt.Errorf("the key labelled %q is not an AES key", u.Object)
	}
	aead, err := found[0].NewGCM()
	if err != nil {
		ctx.Close()
		return nil, fmt.Errorf("key %q: %s", u.Object, reason(err))
	}
	return &Key{ctx: ctx, aead: aead, mayLeave: mayLeave(ctx, found[0])}, nil
}

// mayLeave reports whether the token lets key's value out (Key.MayLeave):
// CKA_EXTRACTABLE true, CKA_SENSITIVE false, or either not told.
func mayLeave(ctx *crypto11.Context, key *crypto11.SecretKey) bool {
	attrs, err := ctx.GetAttributes(key, []crypto11.AttributeType{crypto11.CkaSensitive, crypto11.CkaExtractable})
	if err != nil {
		return true
	}
	isTrue := func(t crypto11.AttributeType) (value, told bool) {
		a := attrs[t]
		if a == nil || len(a.Value) != 1 {
			return false, false
		}
		return a.Value[0] != 0, true
	}
	sensitive, told1 := isTrue(crypto11.CkaSensitive)
	extractable, told2 := isTrue(crypto11.CkaExtractable)
	return !told1 || !told2 || !sensitive || extractable
}

// Create generates a non-extractable AES-256 key labelled u.Object in the
// token of u (CKA_TOKEN, CKA_SENSITIVE, not CKA_EXTRACTABLE), refusing if
// an object already has that label, and checks that it seals and opens.
func Create(module string, u URI, pin string) error {
	ctx, err := login(module, u, pin)
	if err != nil {
		return err
	}
	defer ctx.Close()
	label := []byte(u.Object)
	secret, err := ctx.FindKeys(nil, label)
	if err != nil {
		return fmt.Errorf("find key %q: %s", u.Object, reason(err))
	}
	pairs, err := ctx.FindKeyPairs(nil, label)
	if err != nil {
		return fmt.Errorf("find key %q: %s", u.Object, reason(err))
	}
	if len(secret)+len(pairs) > 0 {
		return fmt.Errorf("token %q already holds a key labelled %q: choose another label", u.Token, u.Object)
	}
	id := make([]byte, 16)
	rand.Read(id)
	key, err := ctx.GenerateSecretKeyWithLabel(id, label, 256, crypto11.CipherAES)
	if err != nil {
		return fmt.Errorf("generate key %q: %s", u.Object, reason(err))
	}
	aead, err := key.NewGCM()
	if err != nil {
		return fmt.Errorf("key %q: %s", u.Object, reason(err))
	}
	k := &Key{aead: aead}
	probe := []byte("kms root key probe")
	sealed, err := k.Seal(probe, probe)
	if err == nil {
		_, err = k.Open(probe, sealed)
	}
	if err != nil {
		key.Delete()
		return fmt.Errorf("the new key does not encrypt with AES-GCM in this token (%v): it was deleted", err)
	}
	return nil
}

// login opens the module, finds the token and logs in.
func login(module string, u URI, pin string) (*crypto11.Context, error) {
	if module == "" {
		module = u.ModulePath
	}
	if module == "" {
		return nil, errors.New("no PKCS#11 module: pass --pkcs11-module PATH (the token's shared library)")
	}
	if _, err := os.Stat(module); err != nil {
		return nil, fmt.Errorf("PKCS#11 module %s: %s", module, reason(err))
	}
	ctx, err := crypto11.Configure(&crypto11.Config{Path: module, TokenLabel: u.Token, Pin: pin, GCMIVLength: 12})
	if err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "failed to open module"):
			return nil, fmt.Errorf("PKCS#11 module %s does not load", module)
		case strings.Contains(msg, "could not find PKCS#11 token"):
			return nil, fmt.Errorf("no token labelled %q (is it plugged in and initialized?)", u.Token)
		}
		return nil, errors.New(reason(err))
	}
	return ctx, nil
}

// reason is err in a few words: a PKCS#11 return value by its meaning.
func reason(err error) string {
	if p := returnValue(err); p != pkcs11.CKR_OK {
		switch p {
		case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_LEN_RANGE:
			return "PIN incorrect"
		case pkcs11.CKR_PIN_LOCKED:
			return "PIN locked"
		case pkcs11.CKR_PIN_EXPIRED:
			return "PIN expired"
		case pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_DEVICE_REMOVED:
			return "token not present"
		case pkcs11.CKR_USER_PIN_NOT_INITIALIZED:
			return "the token's user PIN is not initialized"
		case pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED:
			return "the key's attributes do not allow it (CKA_ENCRYPT or CKA_DECRYPT is false: CKR_KEY_FUNCTION_NOT_PERMITTED)"
		}
		return strings.TrimPrefix(p.Error(), "pkcs11: ")
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// returnValue is the PKCS#11 return value that err reports, CKR_OK if
// none. crypto11 puts some into the text of its errors ("C_Decrypt:
// pkcs11: 0x40: CKR_ENCRYPTED_DATA_INVALID") rather than wrapping them:
// those are read back from the text.
func returnValue(err error) pkcs11.Error {
	var p pkcs11.Error
	if errors.As(err, &p) {
		return p
	}
	_, rest, ok := strings.Cut(err.Error(), "pkcs11: 0x")
	if !ok {
		return pkcs11.CKR_OK
	}
	hex, _, _ := strings.Cut(rest, ":")
	v, perr := strconv.ParseUint(hex, 16, 32)
	if perr != nil {
		return pkcs11.CKR_OK
	}
	return pkcs11.Error(v)
}

// Seal encrypts plaintext in the token with AES-256-GCM, binding it to
// aad, and returns nonce ‖ ciphertext ‖ tag.
func (k *Key) Seal(aad, plaintext []byte) (sealed []byte, err error) {
	// crypto11's AEAD panics when the token fails.
	defer func() {
		if r := recover(); r != nil {
			why := fmt.Sprint(r)
			if e, ok := r.(error); ok {
				why = reason(e)
			}
			sealed, err = nil, fmt.Errorf("the token failed to encrypt: %s", why)
		}
	}()
	ns := k.aead.NonceSize()
	nonce := make([]byte, ns)
	rand.Read(nonce)
	return k.aead.Seal(nonce, nonce, plaintext, aad), nil
}

// Open reverses Seal. A value that does not open with the key (another
// key, other additional data, altered or cut bytes) is ErrOpen: the token
// answered CKR_ENCRYPTED_DATA_INVALID or CKR_ENCRYPTED_DATA_LEN_RANGE, or
// CKR_GENERAL_ERROR or CKR_FUNCTION_FAILED while the key still opens what
// it seals. Any other failure (the key may not decrypt, a device, session
// or login error) is an error that names it, never ErrOpen, which callers
// report as the wrong key.
func (k *Key) Open(aad, sealed []byte) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(sealed) < ns+k.aead.Overhead() {
		return nil, ErrOpen
	}
	pt, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], aad)
	if err == nil {
		return pt, nil
	}
	switch returnValue(err) {
	case pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE:
		return nil, ErrOpen
	case pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_FUNCTION_FAILED:
		// SoftHSM answers a GCM tag that does not verify with
		// CKR_GENERAL_ERROR, as it would a failure of its own, and
		// other tokens may: a key that still seals and opens a probe
		// tells the two apart.
		if k.works() {
			return nil, ErrOpen
		}
	}
	return nil, fmt.Errorf("the token failed to decrypt: %s", reason(err))
}

// works reports whether the key seals a probe and opens it again.
func (k *Key) works() bool {
	probe := []byte("kms root key probe")
	sealed, err := k.Seal(probe, probe)
	if err != nil {
		return false
	}
	ns := k.aead.NonceSize()
	pt, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], probe)
	return err == nil && bytes.Equal(pt, probe)
}

// Close logs out and releases the module. Calls after the first do
// nothing (crypto11 panics on a second close).
func (k *Key) Close() error {
	k.closeOnce.Do(func() {
		if k.ctx != nil {
			k.closeErr = k.ctx.Close()
		}
	})
	return k.closeErr
}
