package keys_test

import (
	"bytes"
	"crypto/mlkem"
	"encoding/asn1"
	"errors"
	"testing"

	"github.com/openkms/kms/internal/keys"
)

var mlkemSpecs = []struct {
	spec            string
	oid             asn1.ObjectIdentifier
	publicKeySize   int
	ciphertextBytes int
}{
	{"ML_KEM_512", asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 4, 1}, 800, 768},
	{"ML_KEM_768", asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 4, 2}, 1184, 1088},
	{"ML_KEM_1024", asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 4, 3}, 1568, 1568},
}

type testPKCS8 struct {
	Version    int
	Algorithm  struct{ Algorithm asn1.ObjectIdentifier }
	PrivateKey []byte
}

type testSPKI struct {
	Algorithm struct{ Algorithm asn1.ObjectIdentifier }
	PublicKey asn1.BitString
}

// seedOf reads the seed of an ML-KEM private key in PKCS#8 seed form,
// with encoding/asn1 alone: the form a client of GenerateDataKeyPair reads.
func seedOf(t *testing.T, der []byte, oid asn1.ObjectIdentifier) []byte {
	t.Helper()
	var p testPKCS8
	if rest, err := asn1.Unmarshal(der, &p); err != nil || len(rest) != 0 {
		t.Fatalf("not PKCS#8: %v", err)
	}
	if p.Version != 0 || !p.Algorithm.Algorithm.Equal(oid) {
		t.Fatalf("version %d, algorithm %v; want 0, %v", p.Version, p.Algorithm.Algorithm, oid)
	}
	var seed asn1.RawValue
	if rest, err := asn1.Unmarshal(p.PrivateKey, &seed); err != nil || len(rest) != 0 {
		t.Fatalf("privateKey is not one DER value: %v", err)
	}
	if seed.Class != asn1.ClassContextSpecific || seed.Tag != 0 || seed.IsCompound || len(seed.Bytes) != 64 {
		t.Fatalf("privateKey is not [0] IMPLICIT OCTET STRING (SIZE (64)): class %d tag %d %d bytes", seed.Class, seed.Tag, len(seed.Bytes))
	}
	return seed.Bytes
}

func TestMLKEMRoundTripEverySpec(t *testing.T) {
	for _, c := range mlkemSpecs {
		t.Run(c.spec, func(t *testing.T) {
			m, err := keys.GenerateAsymmetric(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			if len(m) != 86 {
				t.Errorf("private key of %d bytes; the seed form is 86 for every spec", len(m))
			}
			seedOf(t, m, c.oid)
			a, err := keys.ParseAsymmetric(c.spec, m)
			if err != nil {
				t.Fatal(err)
			}
			var spki testSPKI
			if rest, err := asn1.Unmarshal(a.PublicDER, &spki); err != nil || len(rest) != 0 {
				t.Fatalf("public key is not a SubjectPublicKeyInfo: %v", err)
			}
			if !spki.Algorithm.Algorithm.Equal(c.oid) || len(spki.PublicKey.Bytes) != c.publicKeySize {
				t.Fatalf("public key: algorithm %v, %d bytes; want %v, %d", spki.Algorithm.Algorithm, len(spki.PublicKey.Bytes), c.oid, c.publicKeySize)
			}
			shared, ct, err := a.Encapsulate()
			if err != nil {
				t.Fatal(err)
			}
			if len(shared) != 32 || len(ct) != c.ciphertextBytes || keys.MLKEMCiphertextSize(c.spec) != c.ciphertextBytes {
				t.Fatalf("secret of %d bytes, ciphertext of %d (size says %d); want 32, %d", len(shared), len(ct), keys.MLKEMCiphertextSize(c.spec), c.ciphertextBytes)
			}
			got, err := a.Decapsulate(ct)
			if err != nil || !bytes.Equal(got, shared) {
				t.Fatalf("decapsulated %x, %v; want %x", got, err, shared)
			}
			// Implicit rejection: an altered ciphertext gives 32 other bytes,
			// the same each time, and no error.
			bad := bytes.Clone(ct)
			bad[len(bad)/2] ^= 1
			r1, err1 := a.Decapsulate(bad)
			r2, err2 := a.Decapsulate(bad)
			if err1 != nil || err2 != nil || len(r1) != 32 || bytes.Equal(r1, shared) || !bytes.Equal(r1, r2) {
				t.Fatalf("altered ciphertext: %x %v, %x %v", r1, err1, r2, err2)
			}
			for _, n := range []int{0, 1, c.ciphertextBytes - 1, c.ciphertextBytes + 1} {
				if _, err := a.Decapsulate(make([]byte, n)); !errors.Is(err, keys.ErrCiphertextLength) {
					t.Errorf("ciphertext of %d bytes: %v, want ErrCiphertextLength", n, err)
				}
			}
			// A second key of the spec decapsulates the ciphertext to
			// something else.
			m2, _ := keys.GenerateAsymmetric(c.spec)
			other, err := keys.ParseAsymmetric(c.spec, m2)
			if err != nil {
				t.Fatal(err)
			}
			if s, err := other.Decapsulate(ct); err != nil || bytes.Equal(s, shared) {
				t.Fatalf("another key decapsulated %x, %v", s, err)
			}
			// Not a signing, encryption or agreement key.
			if _, err := a.Sign("ML_DSA_SHAKE_256", keys.MessageRaw, []byte("m")); err == nil {
				t.Fatal("an ML-KEM key signed")
			}
		})
	}
}

// TestMLKEMMatchesAnotherImplementation checks the keys against an
// implementation they do not use, the standard library's crypto/mlkem:
// the public key of a seed is the one it derives, a secret it
// encapsulates to that key decapsulates here, and one encapsulated here
// it decapsulates.
func TestMLKEMMatchesAnotherImplementation(t *testing.T) {
	type stdKey interface {
		Bytes() []byte
		Decapsulate([]byte) ([]byte, error)
	}
	for _, c := range mlkemSpecs[1:] {
		t.Run(c.spec, func(t *testing.T) {
			m, _ := keys.GenerateAsymmetric(c.spec)
			a, err := keys.ParseAsymmetric(c.spec, m)
			if err != nil {
				t.Fatal(err)
			}
			seed := seedOf(t, m, c.oid)
			var dk stdKey
			var ek []byte
			var encapsulate func() ([]byte, []byte)
			if c.spec == "ML_KEM_768" {
				k, err := mlkem.NewDecapsulationKey768(seed)
				if err != nil {
					t.Fatal(err)
				}
				dk, ek, encapsulate = k, k.EncapsulationKey().Bytes(), k.EncapsulationKey().Encapsulate
			} else {
				k, err := mlkem.NewDecapsulationKey1024(seed)
				if err != nil {
					t.Fatal(err)
				}
				dk, ek, encapsulate = k, k.EncapsulationKey().Bytes(), k.EncapsulationKey().Encapsulate
			}
			var spki testSPKI
			asn1.Unmarshal(a.PublicDER, &spki)
			if !bytes.Equal(ek, spki.PublicKey.Bytes) {
				t.Fatal("crypto/mlkem derives another public key from the seed")
			}
			shared, ct := encapsulate()
			if got, err := a.Decapsulate(ct); err != nil || !bytes.Equal(got, shared) {
				t.Fatalf("crypto/mlkem's secret decapsulates to %x, %v; want %x", got, err, shared)
			}
			shared, ct, err = a.Encapsulate()
			if err != nil {
				t.Fatal(err)
			}
			if got, err := dk.Decapsulate(ct); err != nil || !bytes.Equal(got, shared) {
				t.Fatalf("crypto/mlkem decapsulates the secret to %x, %v; want %x", got, err, shared)
			}
			ct[0] ^= 1
			want, _ := dk.Decapsulate(ct)
			if got, err := a.Decapsulate(ct); err != nil || !bytes.Equal(got, want) {
				t.Fatal("an altered ciphertext is rejected otherwise than crypto/mlkem rejects it")
			}
		})
	}
}

// TestMLKEMRefusesOtherForms checks that material other than a PKCS#8
// seed form of the spec is ErrMaterial.
func TestMLKEMRefusesOtherForms(t *testing.T) {
	m, _ := keys.GenerateAsymmetric("ML_KEM_768")
	seed := seedOf(t, m, mlkemSpecs[1].oid)
	wrap := func(oid asn1.ObjectIdentifier, inner []byte) []byte {
		b, err := asn1.Marshal(testPKCS8{Algorithm: struct{ Algorithm asn1.ObjectIdentifier }{oid}, PrivateKey: inner})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tagged := func(tag int, b []byte) []byte {
		d, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, Bytes: b})
		return d
	}
	octets, _ := asn1.Marshal(seed) // expandedKey's form, not the seed's
	cases := map[string][]byte{
		"raw seed":            seed,
		"empty":               {},
		"another spec's OID":  wrap(mlkemSpecs[2].oid, tagged(0, seed)),
		"short seed":          wrap(mlkemSpecs[1].oid, tagged(0, seed[:63])),
		"long seed":           wrap(mlkemSpecs[1].oid, tagged(0, append(bytes.Clone(seed), 0))),
		"tag 1":               wrap(mlkemSpecs[1].oid, tagged(1, seed)),
		"octet string":        wrap(mlkemSpecs[1].oid, octets),
		"trailing byte":       append(bytes.Clone(m), 0),
		"seed, trailing byte": wrap(mlkemSpecs[1].oid, append(tagged(0, seed), 0)),
		"cut":                 m[:len(m)-1],
	}
	for name, b := range cases {
		if a, err := keys.ParseAsymmetric("ML_KEM_768", b); !errors.Is(err, keys.ErrMaterial) || a != nil {
			t.Errorf("%s: %v, want ErrMaterial", name, err)
		}
	}
	if _, err := keys.ParseAsymmetric("ML_KEM_768", wrap(mlkemSpecs[1].oid, tagged(0, seed))); err != nil {
		t.Fatalf("the seed form made here again: %v", err)
	}
}
