package esdk

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"hash"
	"math/big"
)

// Signed suites (spec framework/transitive-requirements.md#ecdsa,
// framework/default-cmm.md, data-format/message-footer.md).
//
// The encrypter makes a fresh ECDSA key on the suite's curve (P-384, or
// P-256 for 0x0214) for each message and puts its public key in the
// encryption context under "aws-crypto-public-key": the SEC 1 compressed
// point (0x02 or 0x03, then X in 48 bytes, or 32 for P-256), base64 with
// padding, 68 characters (44 for P-256). After the final frame comes the
// footer:
//
//	uint16 length | ECDSA-Sig-Value (DER SEQUENCE of INTEGER r, INTEGER s)
//
// signing the suite's hash (SHA-384, or SHA-256 for P-256) of every byte
// of the header and the body.
const (
	// PublicKeyContextKey is the encryption context key that holds the
	// verification key of a signed message. Encryption contexts given to
	// NewEncrypter may not use it, nor any key starting with "aws-crypto-".
	PublicKeyContextKey = "aws-crypto-public-key"
	reservedPrefix      = "aws-crypto-"
)

type signer struct {
	key    *ecdsa.PrivateKey
	hash   hash.Hash
	sigLen int
}

// coordLen is the length of a coordinate of a point on c, in bytes.
func coordLen(c elliptic.Curve) int { return (c.Params().BitSize + 7) / 8 }

// newSigner makes a signing key for alg and returns it with its encoded
// public key.
func newSigner(alg *sigAlg) (*signer, string, error) {
	key, err := ecdsa.GenerateKey(alg.curve, rand.Reader)
	if err != nil {
		return nil, "", err
	}
	point, err := key.PublicKey.Bytes() // 0x04 | X | Y
	if err != nil {
		return nil, "", err
	}
	n := coordLen(alg.curve)
	compressed := make([]byte, 1+n)
	compressed[0] = 0x02 | point[len(point)-1]&1
	copy(compressed[1:], point[1:1+n])
	return &signer{key, alg.hash(), alg.sigLen}, base64.StdEncoding.EncodeToString(compressed), nil
}

type ecdsaSignature struct{ R, S *big.Int }

// sign returns the footer signature over everything written to s.hash.
//
// Every signature it returns has the suite's standard length (103 bytes
// for P-384, 71 for P-256), as the official SDKs' are: r and s need that
// many bytes of INTEGER between them when neither has a leading zero byte.
// A signature of another length is replaced by the equally valid one with
// s replaced by n - s, or made again.
func (s *signer) sign() ([]byte, error) {
	digest := s.hash.Sum(nil)
	n := s.key.Curve.Params().N
	for range 64 {
		der, err := ecdsa.SignASN1(rand.Reader, s.key, digest)
		if err != nil {
			return nil, err
		}
		if len(der) == s.sigLen {
			return der, nil
		}
		var sig ecdsaSignature
		if _, err := asn1.Unmarshal(der, &sig); err != nil {
			return nil, err
		}
		sig.S.Sub(n, sig.S)
		if der, err = asn1.Marshal(sig); err != nil {
			return nil, err
		}
		if len(der) == s.sigLen {
			return der, nil
		}
	}
	return nil, errors.New("esdk: could not make a signature of the standard length")
}

type verifier struct {
	key  *ecdsa.PublicKey
	hash hash.Hash
}

// newVerifier decodes the "aws-crypto-public-key" value of a message in a
// suite signed with alg: a compressed point on alg's curve, in standard
// base64.
func newVerifier(alg *sigAlg, encoded string) (*verifier, bool) {
	n := coordLen(alg.curve)
	compressed, err := base64.StdEncoding.Strict().DecodeString(encoded)
	if err != nil || len(compressed) != 1+n {
		return nil, false
	}
	x, y := elliptic.UnmarshalCompressed(alg.curve, compressed)
	if x == nil {
		return nil, false
	}
	point := make([]byte, 1+2*n)
	point[0] = 0x04
	x.FillBytes(point[1 : 1+n])
	y.FillBytes(point[1+n:])
	key, err := ecdsa.ParseUncompressedPublicKey(alg.curve, point)
	if err != nil {
		return nil, false
	}
	return &verifier{key, alg.hash()}, true
}

// verify reports whether sig, any DER ECDSA-Sig-Value whatever its length,
// signs what was written to v.hash.
func (v *verifier) verify(sig []byte) bool {
	return ecdsa.VerifyASN1(v.key, v.hash.Sum(nil), sig)
}
