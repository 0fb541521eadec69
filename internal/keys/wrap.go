package keys

import (
	"crypto"
	"crypto/aes"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
)

// Wrapping algorithms for imported key material, named as in the AWS KMS
// API (AlgorithmSpec). RSAES_PKCS1_V1_5 is deliberately absent: AWS KMS
// stopped accepting it, and so does this package.
const (
	WrapRSAOAEPSHA1         = "RSAES_OAEP_SHA_1"
	WrapRSAOAEPSHA256       = "RSAES_OAEP_SHA_256"
	WrapRSAAESKeyWrapSHA1   = "RSA_AES_KEY_WRAP_SHA_1"
	WrapRSAAESKeyWrapSHA256 = "RSA_AES_KEY_WRAP_SHA_256"
)

// UnwrapImported recovers key material that a customer wrapped with the
// public half of priv:
//   - RSAES_OAEP_SHA_1 / _SHA_256: RSAES-OAEP (RFC 8017) with that hash for
//     OAEP and MGF1 and an empty label;
//   - RSA_AES_KEY_WRAP_SHA_1 / _SHA_256: an ephemeral AES key encrypted as
//     above, followed by the material wrapped under it with AES Key Wrap
//     with Padding (RFC 5649), as "openssl pkeyutl" and AWS's own
//     instructions produce.
//
// Every failure is ErrInvalidCiphertext.
func UnwrapImported(alg string, priv *rsa.PrivateKey, wrapped []byte) ([]byte, error) {
	var h crypto.Hash
	switch alg {
	case WrapRSAOAEPSHA1, WrapRSAAESKeyWrapSHA1:
		h = crypto.SHA1
	case WrapRSAOAEPSHA256, WrapRSAAESKeyWrapSHA256:
		h = crypto.SHA256
	default:
		return nil, ErrInvalidCiphertext
	}
	hash := sha256.New()
	if h == crypto.SHA1 {
		hash = sha1.New()
	}
	switch alg {
	case WrapRSAOAEPSHA1, WrapRSAOAEPSHA256:
		m, err := rsa.DecryptOAEP(hash, nil, priv, wrapped, nil)
		if err != nil {
			return nil, ErrInvalidCiphertext
		}
		return m, nil
	}
	k := priv.Size()
	if len(wrapped) <= k {
		return nil, ErrInvalidCiphertext
	}
	kek, err := rsa.DecryptOAEP(hash, nil, priv, wrapped[:k], nil)
	if err != nil {
		return nil, ErrInvalidCiphertext
	}
	defer clear(kek)
	return UnwrapKWP(kek, wrapped[k:])
}

// kwpAIV is the alternative initial value of RFC 5649 §3.
var kwpAIV = [4]byte{0xa6, 0x59, 0x59, 0xa6}

// WrapKWP wraps plaintext under kek (16, 24 or 32 bytes) with AES Key Wrap
// with Padding, RFC 5649.
func WrapKWP(kek, plaintext []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(plaintext) == 0 || uint64(len(plaintext)) > 1<<32-1 {
		return nil, errors.New("keys: KWP plaintext must be 1 to 2^32-1 bytes")
	}
	n := (len(plaintext) + 7) / 8
	var a [8]byte
	copy(a[:4], kwpAIV[:])
	binary.BigEndian.PutUint32(a[4:], uint32(len(plaintext)))
	r := make([]byte, 8*n)
	copy(r, plaintext)
	if n == 1 {
		out := make([]byte, 16)
		copy(out, a[:])
		copy(out[8:], r)
		block.Encrypt(out, out)
		return out, nil
	}
	var b [16]byte
	for j := 0; j <= 5; j++ {
		for i := 1; i <= n; i++ {
			copy(b[:8], a[:])
			copy(b[8:], r[8*(i-1):8*i])
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(b[:8])^t)
			copy(r[8*(i-1):8*i], b[8:])
		}
	}
	return append(a[:], r...), nil
}

// UnwrapKWP reverses WrapKWP. Every failure is ErrInvalidCiphertext.
func UnwrapKWP(kek, wrapped []byte) ([]byte, error) {
	block, err := aes.NewCipher(kek)
	if err != nil || len(wrapped) < 16 || len(wrapped)%8 != 0 {
		return nil, ErrInvalidCiphertext
	}
	n := len(wrapped)/8 - 1
	var a [8]byte
	r := make([]byte, 8*n)
	if n == 1 {
		var b [16]byte
		block.Decrypt(b[:], wrapped)
		copy(a[:], b[:8])
		copy(r, b[8:])
	} else {
		copy(a[:], wrapped[:8])
		copy(r, wrapped[8:])
		var b [16]byte
		for j := 5; j >= 0; j-- {
			for i := n; i >= 1; i-- {
				t := uint64(n*j + i)
				binary.BigEndian.PutUint64(b[:8], binary.BigEndian.Uint64(a[:])^t)
				copy(b[8:], r[8*(i-1):8*i])
				block.Decrypt(b[:], b[:])
				copy(a[:], b[:8])
				copy(r[8*(i-1):8*i], b[8:])
			}
		}
	}
	mli := int(binary.BigEndian.Uint32(a[4:]))
	ok := subtle.ConstantTimeCompare(a[:4], kwpAIV[:]) == 1 && mli > 8*(n-1) && mli <= 8*n
	if ok {
		for _, p := range r[mli:] {
			ok = ok && p == 0
		}
	}
	if !ok {
		clear(r)
		return nil, ErrInvalidCiphertext
	}
	return r[:mli], nil
}

// ImportedMaterialID names imported material without revealing it: the
// hex HMAC-SHA256 of the key id under the material. The same material
// imported into the same key always has the same id, which is how a
// re-import is checked to be the same material.
func ImportedMaterialID(id ID, material []byte) string {
	m := hmac.New(sha256.New, material)
	m.Write([]byte("openkms imported key material id "))
	m.Write(id[:])
	return hex.EncodeToString(m.Sum(nil))
}
