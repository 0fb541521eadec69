package keys

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
)

// HMAC is the key of an HMAC KMS key (RFC 2104). It is safe for concurrent
// use.
type HMAC struct {
	Spec string
	key  []byte
}

var hmacSpecs = map[string]struct {
	alg  string
	size int
	hash func() hash.Hash
}{
	"HMAC_224": {"HMAC_SHA_224", 28, sha256.New224},
	"HMAC_256": {"HMAC_SHA_256", 32, sha256.New},
	"HMAC_384": {"HMAC_SHA_384", 48, sha512.New384},
	"HMAC_512": {"HMAC_SHA_512", 64, sha512.New},
}

// MacAlgorithm is the one MAC algorithm of an HMAC key spec.
func MacAlgorithm(spec string) string { return hmacSpecs[spec].alg }

// GenerateHMAC returns fresh key material of an HMAC key spec: as many
// bytes as its hash's output.
func GenerateHMAC(spec string) []byte {
	k := make([]byte, hmacSpecs[spec].size)
	rand.Read(k)
	return k
}

// NewHMAC wraps HMAC key material; imported material must be the hash's
// output size.
func NewHMAC(spec string, material []byte) (*HMAC, error) {
	s, ok := hmacSpecs[spec]
	if !ok || len(material) != s.size {
		return nil, ErrMaterial
	}
	return &HMAC{Spec: spec, key: append([]byte(nil), material...)}, nil
}

// CheckAlgorithm returns the error Mac and VerifyMac give alg before they
// use the key: ErrAlgorithm for any but the key's.
func (h *HMAC) CheckAlgorithm(alg string) error {
	if alg != hmacSpecs[h.Spec].alg {
		return ErrAlgorithm
	}
	return nil
}

// Mac computes the MAC of msg with alg, which must be the key's.
func (h *HMAC) Mac(alg string, msg []byte) ([]byte, error) {
	if err := h.CheckAlgorithm(alg); err != nil {
		return nil, err
	}
	s := hmacSpecs[h.Spec]
	m := hmac.New(s.hash, h.key)
	m.Write(msg)
	return m.Sum(nil), nil
}

// VerifyMac checks a MAC in constant time; a mismatch is
// ErrInvalidSignature.
func (h *HMAC) VerifyMac(alg string, msg, mac []byte) error {
	want, err := h.Mac(alg, msg)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, mac) {
		return ErrInvalidSignature
	}
	return nil
}
