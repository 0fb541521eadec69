package esdk

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
)

// Suite is an algorithm suite ID, the two bytes that follow the version in
// a message header.
type Suite uint16

const (
	// SuiteCommitKey is ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY: AES-256-GCM
	// under a key derived with HKDF-SHA512 from the data key and the message
	// ID, with a key commitment in the header. It is the default.
	SuiteCommitKey Suite = 0x0478
	// SuiteCommitKeyECDSAP384 is ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384:
	// SuiteCommitKey plus an ECDSA P-384 signature over the whole message, so
	// that whoever can decrypt cannot also forge a message.
	SuiteCommitKeyECDSAP384 Suite = 0x0578
)

// The message format version 1 suites, without key commitment, that the
// official SDKs wrote before 2.0 (and write since under
// FORBID_ENCRYPT_ALLOW_DECRYPT). Decrypt only, and only with
// DecryptOptions.AllowNonCommitting.
const (
	// SuiteHKDFSHA256 is ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA256:
	// AES-256-GCM, HKDF-SHA256.
	SuiteHKDFSHA256 Suite = 0x0178
	// SuiteHKDFSHA384ECDSAP384 is ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384:
	// AES-256-GCM, HKDF-SHA384, signed with ECDSA P-384. The default of the
	// SDKs 1.x.
	SuiteHKDFSHA384ECDSAP384 Suite = 0x0378
	// SuiteAES128HKDFSHA256 is ALG_AES_128_GCM_IV12_TAG16_HKDF_SHA256:
	// AES-128-GCM, HKDF-SHA256, a 16-byte data key.
	SuiteAES128HKDFSHA256 Suite = 0x0114
	// SuiteAES192HKDFSHA256 is ALG_AES_192_GCM_IV12_TAG16_HKDF_SHA256:
	// AES-192-GCM, HKDF-SHA256, a 24-byte data key.
	SuiteAES192HKDFSHA256 Suite = 0x0146
	// SuiteAES128HKDFSHA256ECDSAP256 is
	// ALG_AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256: AES-128-GCM,
	// HKDF-SHA256, signed with ECDSA P-256 and SHA-256.
	SuiteAES128HKDFSHA256ECDSAP256 Suite = 0x0214
	// SuiteAES192HKDFSHA384ECDSAP384 is
	// ALG_AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384: AES-192-GCM,
	// HKDF-SHA384, signed with ECDSA P-384 and SHA-384.
	SuiteAES192HKDFSHA384ECDSAP384 Suite = 0x0346
	// SuiteAES128NoKDF is ALG_AES_128_GCM_IV12_TAG16_NO_KDF: AES-128-GCM
	// under the 16-byte data key itself, with no key derivation, so every
	// message under one data key reuses the same key and IVs. The
	// specification keeps the three such suites for backward compatibility
	// only.
	SuiteAES128NoKDF Suite = 0x0014
	// SuiteAES192NoKDF is ALG_AES_192_GCM_IV12_TAG16_NO_KDF: AES-192-GCM
	// under the 24-byte data key itself.
	SuiteAES192NoKDF Suite = 0x0046
	// SuiteAES256NoKDF is ALG_AES_256_GCM_IV12_TAG16_NO_KDF: AES-256-GCM
	// under the 32-byte data key itself.
	SuiteAES256NoKDF Suite = 0x0078
)

// Sizes shared by every suite (spec framework/algorithm-suites.md): a
// 12-byte IV and a 16-byte tag; the 32-byte commitment key of version 2.
const (
	ivSize        = 12
	tagSize       = 16
	commitKeySize = 32
)

type suiteInfo struct {
	name         string
	version      byte // message format version
	messageIDLen int
	keyLen       int // data key and encryption key, in bytes
	committing   bool
	kdfHash      func() hash.Hash // nil: the identity KDF, the data key is the key
	sig          *sigAlg          // nil: unsigned
}

// sigAlg is the ECDSA curve and hash of a signed suite, and the length of
// the signatures the official SDKs (and this package) write in it.
type sigAlg struct {
	curve  elliptic.Curve
	hash   func() hash.Hash
	sigLen int
}

var (
	ecdsaP256 = &sigAlg{elliptic.P256(), sha256.New, 71}
	ecdsaP384 = &sigAlg{elliptic.P384(), sha512.New384, 103}
)

func (s Suite) info() (suiteInfo, bool) {
	switch s {
	case SuiteCommitKey:
		return suiteInfo{"ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY", 2, 32, 32, true, sha512.New, nil}, true
	case SuiteCommitKeyECDSAP384:
		return suiteInfo{"ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", 2, 32, 32, true, sha512.New, ecdsaP384}, true
	case SuiteHKDFSHA384ECDSAP384:
		return suiteInfo{"ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 1, 16, 32, false, sha512.New384, ecdsaP384}, true
	case SuiteAES192HKDFSHA384ECDSAP384:
		return suiteInfo{"ALG_AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 1, 16, 24, false, sha512.New384, ecdsaP384}, true
	case SuiteAES128HKDFSHA256ECDSAP256:
		return suiteInfo{"ALG_AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256", 1, 16, 16, false, sha256.New, ecdsaP256}, true
	case SuiteHKDFSHA256:
		return suiteInfo{"ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA256", 1, 16, 32, false, sha256.New, nil}, true
	case SuiteAES192HKDFSHA256:
		return suiteInfo{"ALG_AES_192_GCM_IV12_TAG16_HKDF_SHA256", 1, 16, 24, false, sha256.New, nil}, true
	case SuiteAES128HKDFSHA256:
		return suiteInfo{"ALG_AES_128_GCM_IV12_TAG16_HKDF_SHA256", 1, 16, 16, false, sha256.New, nil}, true
	case SuiteAES256NoKDF:
		return suiteInfo{"ALG_AES_256_GCM_IV12_TAG16_NO_KDF", 1, 16, 32, false, nil, nil}, true
	case SuiteAES192NoKDF:
		return suiteInfo{"ALG_AES_192_GCM_IV12_TAG16_NO_KDF", 1, 16, 24, false, nil, nil}, true
	case SuiteAES128NoKDF:
		return suiteInfo{"ALG_AES_128_GCM_IV12_TAG16_NO_KDF", 1, 16, 16, false, nil, nil}, true
	}
	return suiteInfo{}, false
}

// String returns the suite's name in the specification, or its hex ID if
// this package does not know it.
func (s Suite) String() string {
	if i, ok := s.info(); ok {
		return i.name
	}
	return fmt.Sprintf("Suite(0x%04X)", uint16(s))
}

// Committing reports whether the suite commits to its data key: a message
// in such a suite decrypts under exactly one data key.
func (s Suite) Committing() bool { i, _ := s.info(); return i.committing }

// Signed reports whether messages in the suite end with an ECDSA signature.
func (s Suite) Signed() bool { i, _ := s.info(); return i.sig != nil }

// DataKeyLength returns the length in bytes of the suite's data keys (its
// key derivation input length): 16, 24 or 32, or 0 for a suite this
// package does not know. A data key of any other length is refused.
func (s Suite) DataKeyLength() int { i, _ := s.info(); return i.keyLen }

// deriveKeys derives the AES-256-GCM key of one message from its data key,
// and for committing suites the commitment key stored in the header.
//
// Committing suites (spec client-apis/key-derivation.md): one HKDF-SHA512
// extract with the 32-byte message ID as salt, then two expands:
//
//	key    = HKDF-Expand(PRK, uint16(suite) || "DERIVEKEY", 32)
//	commit = HKDF-Expand(PRK, "COMMITKEY", 32)
//
// Version 1 suites: HKDF with the suite's hash, an all-zero salt and
// info = uint16(suite) || message ID, of the data key's length, no
// commitment key; or, in the NO_KDF suites, the data key itself.
//
// It fails, before using the key, for a data key of another length than
// the suite's.
func (s Suite) deriveKeys(dataKey, messageID []byte) (aead cipher.AEAD, commitKey []byte, err error) {
	block, commitKey, err := s.deriveBlock(dataKey, messageID)
	if err != nil {
		return nil, nil, err
	}
	aead, err = cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return aead, commitKey, nil
}

// deriveBlock is deriveKeys giving the AES block cipher under the derived
// key, for the non-framed body, which crypto/cipher's AEAD cannot stream.
func (s Suite) deriveBlock(dataKey, messageID []byte) (block cipher.Block, commitKey []byte, err error) {
	info, ok := s.info()
	if !ok {
		return nil, nil, fmt.Errorf("esdk: unsupported algorithm suite %v", s)
	}
	if len(dataKey) != info.keyLen {
		return nil, nil, fmt.Errorf("esdk: data key is %d bytes, want %d for %v", len(dataKey), info.keyLen, s)
	}
	id := string([]byte{byte(s >> 8), byte(s)})
	var key []byte
	if info.committing {
		prk, err := hkdf.Extract(info.kdfHash, dataKey, messageID)
		if err != nil {
			return nil, nil, err
		}
		if key, err = hkdf.Expand(info.kdfHash, prk, id+"DERIVEKEY", info.keyLen); err != nil {
			return nil, nil, err
		}
		if commitKey, err = hkdf.Expand(info.kdfHash, prk, "COMMITKEY", commitKeySize); err != nil {
			return nil, nil, err
		}
	} else if info.kdfHash != nil {
		if key, err = hkdf.Key(info.kdfHash, dataKey, nil, id+string(messageID), info.keyLen); err != nil {
			return nil, nil, err
		}
	} else {
		key = dataKey // the identity KDF; aes.NewCipher keeps no reference to it
	}
	if block, err = aes.NewCipher(key); err != nil {
		return nil, nil, err
	}
	return block, commitKey, nil
}

// commitmentMatches compares a derived commitment key with the header's in
// constant time, as the specification requires.
func commitmentMatches(derived, stored []byte) bool {
	return subtle.ConstantTimeCompare(derived, stored) == 1
}
