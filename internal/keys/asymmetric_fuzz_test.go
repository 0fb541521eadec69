package keys_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/keys"
)

// fuzzSpecs are the asymmetric key specs a fuzz input picks from by index.
var fuzzSpecs = []string{
	"RSA_2048", "RSA_3072", "RSA_4096",
	"ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
	"ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519",
	"ML_DSA_44", "ML_DSA_65", "ML_DSA_87",
	"ML_KEM_512", "ML_KEM_768", "ML_KEM_1024",
}

// FuzzParseAsymmetric reads arbitrary private material as each key spec,
// as ImportKeyMaterial does with what a client unwrapped: it never panics,
// every failure is ErrMaterial, and material it accepts reads the same way
// twice and has a public key that parses again.
func FuzzParseAsymmetric(f *testing.F) {
	for i, spec := range fuzzSpecs {
		if spec == "RSA_3072" || spec == "RSA_4096" {
			continue // slow to generate; RSA_2048 material seeds them
		}
		m, err := keys.GenerateAsymmetric(spec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), m)
		f.Add(uint8(i+1), m) // the right material for the wrong spec
		if len(m) > 8 {
			f.Add(uint8(i), m[:len(m)-1])
		}
	}
	f.Add(uint8(0), []byte{0x30, 0x80})
	f.Add(uint8(6), []byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, i uint8, material []byte) {
		spec := fuzzSpecs[int(i)%len(fuzzSpecs)]
		a, err := keys.ParseAsymmetric(spec, material)
		if err != nil {
			if !errors.Is(err, keys.ErrMaterial) {
				t.Fatalf("%s: error %v, want ErrMaterial", spec, err)
			}
			if a != nil {
				t.Fatalf("%s: a value with the error %v", spec, err)
			}
			return
		}
		again, err := keys.ParseAsymmetric(spec, material)
		if err != nil || !bytes.Equal(again.PublicDER, a.PublicDER) {
			t.Fatalf("%s: material read twice gives %v, another public key", spec, err)
		}
		if spec == "ECC_SECG_P256K1" || strings.HasPrefix(spec, "ML_") {
			return // public keys x509 does not read
		}
		if _, err := x509.ParsePKIXPublicKey(a.PublicDER); err != nil {
			t.Fatalf("%s: public key of accepted material does not parse: %v", spec, err)
		}
	})
}

// FuzzPeerKey gives DeriveSharedSecret arbitrary peer public keys: it
// never panics, rejects with ErrPublicKey, and its dry-run check
// (CheckPeerKey) agrees with it on every input. A peer key it accepts is
// one crypto/ecdh accepts, and yields the same secret of the curve's size
// each time.
func FuzzPeerKey(f *testing.F) {
	curves := []struct {
		spec  string
		curve elliptic.Curve
	}{{"ECC_NIST_P256", elliptic.P256()}, {"ECC_NIST_P384", elliptic.P384()}, {"ECC_NIST_P521", elliptic.P521()}}
	own := make([]*keys.Asymmetric, len(curves))
	for i, c := range curves {
		m, err := keys.GenerateAsymmetric(c.spec)
		if err != nil {
			f.Fatal(err)
		}
		if own[i], err = keys.ParseAsymmetric(c.spec, m); err != nil {
			f.Fatal(err)
		}
		peer, _ := ecdsa.GenerateKey(c.curve, rand.Reader)
		der, _ := x509.MarshalPKIXPublicKey(&peer.PublicKey)
		f.Add(uint8(i), der)
		f.Add(uint8(i+1), der) // a key on another curve
		f.Add(uint8(i), der[:len(der)-1])
	}
	ed, _ := keys.GenerateAsymmetric("ECC_NIST_EDWARDS25519")
	edKey, _ := keys.ParseAsymmetric("ECC_NIST_EDWARDS25519", ed)
	f.Add(uint8(0), edKey.PublicDER)
	f.Add(uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, i uint8, peerDER []byte) {
		a := own[int(i)%len(own)]
		checkErr := a.CheckPeerKey(peerDER)
		secret, err := a.DeriveSharedSecret(peerDER)
		if (checkErr == nil) != (err == nil) {
			t.Fatalf("CheckPeerKey says %v, DeriveSharedSecret %v", checkErr, err)
		}
		if err != nil {
			if !errors.Is(err, keys.ErrPublicKey) {
				t.Fatalf("error %v, want ErrPublicKey", err)
			}
			return
		}
		p, _ := x509.ParsePKIXPublicKey(peerDER)
		if _, perr := p.(*ecdsa.PublicKey).ECDH(); perr != nil {
			t.Fatalf("accepted a peer key crypto/ecdh rejects: %v", perr)
		}
		size := (curves[int(i)%len(curves)].curve.Params().BitSize + 7) / 8
		if again, _ := a.DeriveSharedSecret(peerDER); len(secret) != size || !bytes.Equal(again, secret) {
			t.Fatalf("secret of %d bytes, want %d, the same each time", len(secret), size)
		}
	})
}

// FuzzVerifySignature verifies arbitrary signatures, as the Verify
// operation does with what a client sends, with a key of each signing
// spec and each of its algorithms. It never panics; it fails with one of
// Verify's own errors; and whatever verifies is a signature over the
// message or digest that was signed (for Ed25519 and ML-DSA, which are
// not malleable, that very signature).
func FuzzVerifySignature(f *testing.F) {
	type signer struct {
		key  *keys.Asymmetric
		algs []string
	}
	var signers []signer
	msg := []byte("the message")
	for _, spec := range []string{"RSA_2048", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519", "ML_DSA_44"} {
		m, err := keys.GenerateAsymmetric(spec)
		if err != nil {
			f.Fatal(err)
		}
		a, err := keys.ParseAsymmetric(spec, m)
		if err != nil {
			f.Fatal(err)
		}
		signers = append(signers, signer{a, keys.SigningAlgorithms(spec)})
	}
	// What was signed with each signer and algorithm: the message, or
	// for an algorithm that signs only digests (ED25519_PH_SHA_512) its
	// SHA-512.
	type seed struct {
		digest   bool
		msg, sig []byte
	}
	signed := map[string]seed{}
	for i, s := range signers {
		for j, alg := range s.algs {
			sd := seed{msg: msg}
			sig, err := s.key.Sign(alg, keys.MessageRaw, msg)
			if errors.Is(err, keys.ErrMessageType) {
				sum := sha512.Sum512(msg)
				sd = seed{digest: true, msg: sum[:]}
				sig, err = s.key.Sign(alg, keys.MessageDigest, sd.msg)
			}
			if err != nil {
				f.Fatalf("%s %s: %v", s.key.Spec, alg, err)
			}
			sd.sig = sig
			signed[fmt.Sprint(i, j)] = sd
			f.Add(uint8(i), uint8(j), sd.digest, sd.msg, sig)
			f.Add(uint8(i), uint8(j), sd.digest, sd.msg, sig[:len(sig)-1])
			f.Add(uint8(i), uint8(j+1), sd.digest, sd.msg, sig)
			f.Add(uint8(i), uint8(j), !sd.digest, sd.msg, sig)
		}
	}
	allowed := []error{keys.ErrInvalidSignature, keys.ErrDigestLength, keys.ErrMessageType, keys.ErrAlgorithm, keys.ErrUnsupported}
	f.Fuzz(func(t *testing.T, which, algIndex uint8, digest bool, m, sig []byte) {
		s := signers[int(which)%len(signers)]
		j := int(algIndex) % len(s.algs)
		alg, msgType := s.algs[j], keys.MessageRaw
		if digest {
			msgType = keys.MessageDigest
		}
		err := s.key.Verify(alg, msgType, m, sig)
		if err != nil {
			if !slices.ContainsFunc(allowed, func(e error) bool { return errors.Is(err, e) }) {
				t.Fatalf("%s %s: error %v", s.key.Spec, alg, err)
			}
			return
		}
		sd := signed[fmt.Sprint(int(which)%len(signers), j)]
		sameMessage := digest == sd.digest && bytes.Equal(m, sd.msg)
		// A RAW signature of RSA or ECDSA is one over the message's hash.
		sameDigest := digest && !sd.digest && bytes.Equal(m, hashFor(alg, sd.msg))
		if !sameMessage && !sameDigest {
			t.Fatalf("%s %s: a signature over %x (%s) verified, but only %x was signed", s.key.Spec, alg, m, msgType, sd.msg)
		}
		strict := s.key.Spec == "ECC_NIST_EDWARDS25519" || strings.HasPrefix(s.key.Spec, "ML_DSA_")
		if strict && !bytes.Equal(sig, sd.sig) {
			t.Fatalf("%s %s: a second signature over the message verified: %x", s.key.Spec, alg, sig)
		}
	})
}

// hashFor is msg hashed as an RSA or ECDSA signing algorithm alg does.
func hashFor(alg string, msg []byte) []byte {
	switch {
	case strings.HasSuffix(alg, "256"):
		h := sha256.Sum256(msg)
		return h[:]
	case strings.HasSuffix(alg, "384"):
		h := sha512.Sum384(msg)
		return h[:]
	}
	h := sha512.Sum512(msg)
	return h[:]
}
