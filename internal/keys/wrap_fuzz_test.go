package keys_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"hash"
	"testing"

	"github.com/openkms/kms/internal/keys"
)

// FuzzUnwrapKWP unwraps arbitrary bytes under arbitrary key-encryption
// keys with AES Key Wrap with Padding: it never panics, every failure is
// ErrInvalidCiphertext, and whatever unwraps wraps back to the same bytes
// (the wrapping is deterministic, so parse then marshal round-trips).
func FuzzUnwrapKWP(f *testing.F) {
	kek := bytes.Repeat([]byte{7}, 32)
	for _, n := range []int{1, 7, 8, 9, 32, 100} {
		w, err := keys.WrapKWP(kek, bytes.Repeat([]byte{0x5a}, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(kek, w)
		f.Add(kek[:16], w)
		f.Add(kek, w[:len(w)-8])
	}
	f.Add(kek, make([]byte, 16))
	f.Add(kek[:24], make([]byte, 24))
	f.Add([]byte(nil), []byte(nil))
	f.Fuzz(func(t *testing.T, kek, wrapped []byte) {
		m, err := keys.UnwrapKWP(kek, wrapped)
		if err != nil {
			if !errors.Is(err, keys.ErrInvalidCiphertext) || m != nil {
				t.Fatalf("error %v with %d bytes, want ErrInvalidCiphertext alone", err, len(m))
			}
			return
		}
		again, err := keys.WrapKWP(kek, m)
		if err != nil || !bytes.Equal(again, wrapped) {
			t.Fatalf("unwrapped %x, which wraps to %x (%v), not %x", m, again, err, wrapped)
		}
	})
}

// FuzzUnwrapImported unwraps arbitrary wrapped key material with an import
// token's private key, under each wrapping algorithm ImportKeyMaterial
// takes: it never panics, every failure is ErrInvalidCiphertext, and
// material wrapped as a client does comes back whole.
func FuzzUnwrapImported(f *testing.F) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	algs := []string{keys.WrapRSAOAEPSHA1, keys.WrapRSAOAEPSHA256, keys.WrapRSAAESKeyWrapSHA1, keys.WrapRSAAESKeyWrapSHA256}
	hashes := []func() hash.Hash{sha1.New, sha256.New, sha1.New, sha256.New}
	material := bytes.Repeat([]byte{3}, 32)
	for i, alg := range algs {
		w := wrapLikeAClient(f, &priv.PublicKey, alg, hashes[i](), material)
		// The seeds are wrapped under this process's key; a fuzz worker
		// has its own, so the round trip is checked here.
		if m, err := keys.UnwrapImported(alg, priv, w); err != nil || !bytes.Equal(m, material) {
			f.Fatalf("%s: material wrapped like a client does unwraps to %x, %v", alg, m, err)
		}
		f.Add(uint8(i), w)
		f.Add(uint8(i^1), w) // the other hash
		f.Add(uint8(i), w[:len(w)-1])
	}
	f.Add(uint8(2), make([]byte, 256+16))
	f.Add(uint8(4), []byte{})
	f.Fuzz(func(t *testing.T, i uint8, wrapped []byte) {
		a := "RSAES_OAEP_SHA_512" // not an algorithm ImportKeyMaterial takes
		if int(i) < len(algs) {
			a = algs[i]
		}
		m, err := keys.UnwrapImported(a, priv, wrapped)
		if err != nil {
			if !errors.Is(err, keys.ErrInvalidCiphertext) || m != nil {
				t.Fatalf("%s: error %v with %d bytes, want ErrInvalidCiphertext alone", a, err, len(m))
			}
			return
		}
		if len(m) == 0 {
			t.Fatalf("%s: unwrapped nothing without an error", a)
		}
	})
}

// wrapLikeAClient wraps material for ImportKeyMaterial the way the AWS
// documentation's openssl commands do.
func wrapLikeAClient(tb testing.TB, pub *rsa.PublicKey, alg string, h hash.Hash, material []byte) []byte {
	tb.Helper()
	if alg == keys.WrapRSAOAEPSHA1 || alg == keys.WrapRSAOAEPSHA256 {
		w, err := rsa.EncryptOAEP(h, rand.Reader, pub, material, nil)
		if err != nil {
			tb.Fatal(err)
		}
		return w
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	head, err := rsa.EncryptOAEP(h, rand.Reader, pub, kek, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tail, err := keys.WrapKWP(kek, material)
	if err != nil {
		tb.Fatal(err)
	}
	return append(head, tail...)
}
