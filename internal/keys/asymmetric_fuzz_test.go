package keys_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
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
		if spec == "ECC_SECG_P256K1" || strings.HasPrefix(spec, "ML_DSA_") {
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
