package keys_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"

	"github.com/openkms/kms/internal/keys"
)

var asymmetricSpecs = []string{"RSA_2048", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1",
	"ECC_NIST_EDWARDS25519", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87"}

func TestSignVerifyEverySpec(t *testing.T) {
	msg := []byte("the message")
	for _, spec := range asymmetricSpecs {
		t.Run(spec, func(t *testing.T) {
			m, err := keys.GenerateAsymmetric(spec)
			if err != nil {
				t.Fatal(err)
			}
			a, err := keys.ParseAsymmetric(spec, m)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.PublicDER) == 0 {
				t.Fatal("no public key")
			}
			if spec != "ECC_SECG_P256K1" && spec[:3] != "ML_" {
				if _, err := x509.ParsePKIXPublicKey(a.PublicDER); err != nil {
					t.Fatalf("public key does not parse as SPKI: %v", err)
				}
			}
			for _, alg := range keys.SigningAlgorithms(spec) {
				mt, in := keys.MessageRaw, msg
				if alg == "ED25519_PH_SHA_512" {
					d := sha512.Sum512(msg)
					mt, in = keys.MessageDigest, d[:]
				}
				sig, err := a.Sign(alg, mt, in)
				if err != nil {
					t.Fatalf("%s: %v", alg, err)
				}
				if err := a.Verify(alg, mt, in, sig); err != nil {
					t.Fatalf("%s: own signature: %v", alg, err)
				}
				bad := bytes.Clone(in)
				bad[0] ^= 1
				if err := a.Verify(alg, mt, bad, sig); !errors.Is(err, keys.ErrInvalidSignature) {
					t.Fatalf("%s: signature verified over another message: %v", alg, err)
				}
				// A RAW message and its digest are the same message.
				if mt == keys.MessageRaw && spec[:3] != "ML_" && spec != "ECC_NIST_EDWARDS25519" {
					var d []byte
					switch alg[len(alg)-3:] {
					case "256":
						s := sha256.Sum256(msg)
						d = s[:]
					case "384":
						s := sha512.Sum384(msg)
						d = s[:]
					default:
						s := sha512.Sum512(msg)
						d = s[:]
					}
					if err := a.Verify(alg, keys.MessageDigest, d, sig); err != nil {
						t.Fatalf("%s: RAW signature does not verify as DIGEST: %v", alg, err)
					}
					if _, err := a.Sign(alg, keys.MessageDigest, d[1:]); !errors.Is(err, keys.ErrDigestLength) {
						t.Fatalf("%s: short digest: %v", alg, err)
					}
				}
			}
		})
	}
}

func TestRSAEncryptDecrypt(t *testing.T) {
	m, _ := keys.GenerateAsymmetric("RSA_2048")
	a, _ := keys.ParseAsymmetric("RSA_2048", m)
	for alg, max := range map[string]int{"RSAES_OAEP_SHA_1": 214, "RSAES_OAEP_SHA_256": 190} {
		if got := a.MaxPlaintext(alg); got != max {
			t.Fatalf("%s max %d, want %d", alg, got, max)
		}
		ct, err := a.Encrypt(alg, make([]byte, max))
		if err != nil {
			t.Fatal(err)
		}
		pt, err := a.Decrypt(alg, ct)
		if err != nil || len(pt) != max {
			t.Fatalf("%s: %v", alg, err)
		}
		ct[5] ^= 1
		if _, err := a.Decrypt(alg, ct); !errors.Is(err, keys.ErrInvalidCiphertext) {
			t.Fatalf("%s: tampered ciphertext: %v", alg, err)
		}
	}
}

func TestECDHAgreesBothWays(t *testing.T) {
	for _, spec := range []string{"ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521"} {
		ma, _ := keys.GenerateAsymmetric(spec)
		mb, _ := keys.GenerateAsymmetric(spec)
		a, _ := keys.ParseAsymmetric(spec, ma)
		b, _ := keys.ParseAsymmetric(spec, mb)
		s1, err1 := a.DeriveSharedSecret(b.PublicDER)
		s2, err2 := b.DeriveSharedSecret(a.PublicDER)
		if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) {
			t.Fatalf("%s: %v %v", spec, err1, err2)
		}
	}
	ma, _ := keys.GenerateAsymmetric("ECC_NIST_P256")
	mb, _ := keys.GenerateAsymmetric("ECC_NIST_P384")
	a, _ := keys.ParseAsymmetric("ECC_NIST_P256", ma)
	b, _ := keys.ParseAsymmetric("ECC_NIST_P384", mb)
	if _, err := a.DeriveSharedSecret(b.PublicDER); !errors.Is(err, keys.ErrPublicKey) {
		t.Fatalf("another curve's key: %v", err)
	}
	if _, err := a.DeriveSharedSecret([]byte("junk")); !errors.Is(err, keys.ErrPublicKey) {
		t.Fatalf("junk key: %v", err)
	}
}

func TestParseAsymmetricRejectsOtherSpecs(t *testing.T) {
	// Each spec's material is refused as every other spec: P-521 material
	// was once accepted as ECC_NIST_EDWARDS25519, and signed as ECDSA.
	specs := []string{"RSA_2048", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519"}
	for _, from := range specs {
		m, err := keys.GenerateAsymmetric(from)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.ParseAsymmetric(from, m); err != nil {
			t.Errorf("%s material refused as itself: %v", from, err)
		}
		for _, as := range specs {
			if as == from {
				continue
			}
			if _, err := keys.ParseAsymmetric(as, m); !errors.Is(err, keys.ErrMaterial) {
				t.Errorf("%s material accepted as %s: %v", from, as, err)
			}
		}
	}
}

// TestParseAsymmetricBoundsRSAMaterial: material larger than its spec's
// keys can be is refused before it is parsed. Parsing checks an RSA key
// at a cost that grows with the square of its size (0.6 s for a crafted
// 131,072-bit key); ImportKeyMaterial's 6,144-byte bound on what it
// unwraps keeps imports far below that, and this keeps ParseAsymmetric
// safe without it. Every RSA spec's own keys still fit.
func TestParseAsymmetricBoundsRSAMaterial(t *testing.T) {
	for _, spec := range []string{"RSA_2048", "RSA_3072", "RSA_4096"} {
		m, err := keys.GenerateAsymmetric(spec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.ParseAsymmetric(spec, m); err != nil {
			t.Errorf("%s material refused: %v", spec, err)
		}
	}
	huge := craftedRSA(t, 32768)
	for _, spec := range []string{"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P521"} {
		if _, err := keys.ParseAsymmetric(spec, huge); !errors.Is(err, keys.ErrMaterial) {
			t.Errorf("a %d-byte RSA key accepted as %s: %v", len(huge), spec, err)
		}
	}
}

// craftedRSA is the PKCS#8 encoding of a private key of about bits bits
// that Go's parser accepts, made of random odd factors rather than
// primes, as an attacker would make one too large to make honestly.
func craftedRSA(t *testing.T, bits int) []byte {
	t.Helper()
	one, e := big.NewInt(1), big.NewInt(65537)
	for {
		half := new(big.Int).Lsh(one, uint(bits/2))
		p, _ := rand.Int(rand.Reader, half)
		q, _ := rand.Int(rand.Reader, half)
		p.SetBit(p, bits/2-1, 1).SetBit(p, 0, 1)
		q.SetBit(q, bits/2-1, 1).SetBit(q, 0, 1)
		pm, qm := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
		lambda := new(big.Int).Div(new(big.Int).Mul(pm, qm), new(big.Int).GCD(nil, nil, pm, qm))
		d := new(big.Int).ModInverse(e, lambda)
		qinv := new(big.Int).ModInverse(q, p)
		if d == nil || qinv == nil {
			continue
		}
		inner, err := asn1.Marshal(struct {
			Version                   int
			N, E, D, P, Q, Dp, Dq, Qi *big.Int
		}{0, new(big.Int).Mul(p, q), e, d, p, q, new(big.Int).Mod(d, pm), new(big.Int).Mod(d, qm), qinv})
		if err != nil {
			t.Fatal(err)
		}
		der, err := asn1.Marshal(struct {
			Version int
			Algo    struct {
				Algorithm  asn1.ObjectIdentifier
				Parameters asn1.RawValue
			}
			PrivateKey []byte
		}{Algo: struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue
		}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}, asn1.NullRawValue}, PrivateKey: inner})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := x509.ParsePKCS8PrivateKey(der); err != nil {
			t.Fatalf("the crafted key does not parse: %v", err)
		}
		return der
	}
}
