package esdk

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"hash"
	"math/big"
)

// Signed suites (spec framework/transitive-requirements.md#ecdsa,
// framework/default-cmm.md, data-format/message-footer.md).
//
// The encrypter makes a fresh ECDSA P-384 key for each message and puts its
// public key in the encryption context under "aws-crypto-public-key": the
// SEC 1 compressed point (0x02 or 0x03, then X in 48 bytes), base64 with
// padding, 68 characters. After the final frame comes the footer:
//
//	uint16 length | ECDSA-Sig-Value (DER SEQUENCE of INTEGER r, INTEGER s)
//
// signing SHA-384 of every byte of the header and the body.
const (
	// PublicKeyContextKey is the encryption context key that holds the
	// verification key of a signed message. Encryption contexts given to
	// NewEncrypter may not use it, nor any key starting with "aws-crypto-".
	PublicKeyContextKey = "aws-crypto-public-key"
	reservedPrefix      = "aws-crypto-"

	// signatureSize is the length of every signature we write. The
	// official SDKs write P-384 signatures of exactly 103 bytes (r and s
	// need 97 bytes of INTEGER between them), replacing s with n - s, which
	// is equally valid, when a signature comes out another length. We do
	// the same so our messages have the same, predictable, footer.
	signatureSize = 103
	p384ByteLen   = 48
)

type signer struct {
	key  *ecdsa.PrivateKey
	hash hash.Hash
}

// newSigner makes a signing key and returns it with its encoded public key.
func newSigner() (*signer, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	point, err := key.PublicKey.Bytes() // 0x04 | X | Y
	if err != nil {
		return nil, "", err
	}
	compressed := make([]byte, 1+p384ByteLen)
	compressed[0] = 0x02 | point[len(point)-1]&1
	copy(compressed[1:], point[1:1+p384ByteLen])
	return &signer{key, sha512.New384()}, base64.StdEncoding.EncodeToString(compressed), nil
}

type ecdsaSignature struct{ R, S *big.Int }

// sign returns the footer signature over everything written to s.hash.
func (s *signer) sign() ([]byte, error) {
	digest := s.hash.Sum(nil)
	n := elliptic.P384().Params().N
	for range 64 {
		der, err := ecdsa.SignASN1(rand.Reader, s.key, digest)
		if err != nil {
			return nil, err
		}
		if len(der) == signatureSize {
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
		if len(der) == signatureSize {
			return der, nil
		}
	}
	return nil, errors.New("esdk: could not make a signature of the standard length")
}

type verifier struct {
	key  *ecdsa.PublicKey
	hash hash.Hash
}

// newVerifier decodes the "aws-crypto-public-key" value of a message.
func newVerifier(encoded string) (*verifier, bool) {
	compressed, err := base64.StdEncoding.Strict().DecodeString(encoded)
	if err != nil || len(compressed) != 1+p384ByteLen {
		return nil, false
	}
	x, y := elliptic.UnmarshalCompressed(elliptic.P384(), compressed)
	if x == nil {
		return nil, false
	}
	point := make([]byte, 1+2*p384ByteLen)
	point[0] = 0x04
	x.FillBytes(point[1 : 1+p384ByteLen])
	y.FillBytes(point[1+p384ByteLen:])
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P384(), point)
	if err != nil {
		return nil, false
	}
	return &verifier{key, sha512.New384()}, true
}

func (v *verifier) verify(sig []byte) bool {
	return ecdsa.VerifyASN1(v.key, v.hash.Sum(nil), sig)
}
