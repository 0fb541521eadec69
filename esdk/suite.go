package esdk

import (
	"crypto/aes"
	"crypto/cipher"
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
	// SuiteHKDFSHA256 is ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA256, a message
	// format version 1 suite without key commitment. Decrypt only, and only
	// with DecryptOptions.AllowNonCommitting.
	SuiteHKDFSHA256 Suite = 0x0178
	// SuiteHKDFSHA384ECDSAP384 is ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
	// a message format version 1 suite without key commitment, signed with
	// ECDSA P-384. Decrypt only, and only with DecryptOptions.AllowNonCommitting.
	SuiteHKDFSHA384ECDSAP384 Suite = 0x0378
)

// Sizes shared by every suite this package knows: AES-256-GCM with a 12-byte
// IV and a 16-byte tag, a 32-byte data key.
const (
	dataKeySize   = 32
	ivSize        = 12
	tagSize       = 16
	commitKeySize = 32
)

type suiteInfo struct {
	name         string
	version      byte // message format version
	messageIDLen int
	committing   bool
	signed       bool
	kdfHash      func() hash.Hash
}

func (s Suite) info() (suiteInfo, bool) {
	switch s {
	case SuiteCommitKey:
		return suiteInfo{"ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY", 2, 32, true, false, sha512.New}, true
	case SuiteCommitKeyECDSAP384:
		return suiteInfo{"ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", 2, 32, true, true, sha512.New}, true
	case SuiteHKDFSHA256:
		return suiteInfo{"ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA256", 1, 16, false, false, sha256.New}, true
	case SuiteHKDFSHA384ECDSAP384:
		return suiteInfo{"ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", 1, 16, false, true, sha512.New384}, true
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
func (s Suite) Signed() bool { i, _ := s.info(); return i.signed }

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
// info = uint16(suite) || message ID, no commitment key.
func (s Suite) deriveKeys(dataKey, messageID []byte) (aead cipher.AEAD, commitKey []byte, err error) {
	info, ok := s.info()
	if !ok {
		return nil, nil, fmt.Errorf("esdk: unsupported algorithm suite %v", s)
	}
	if len(dataKey) != dataKeySize {
		return nil, nil, fmt.Errorf("esdk: data key is %d bytes, want %d", len(dataKey), dataKeySize)
	}
	id := string([]byte{byte(s >> 8), byte(s)})
	var key []byte
	if info.committing {
		prk, err := hkdf.Extract(info.kdfHash, dataKey, messageID)
		if err != nil {
			return nil, nil, err
		}
		if key, err = hkdf.Expand(info.kdfHash, prk, id+"DERIVEKEY", dataKeySize); err != nil {
			return nil, nil, err
		}
		if commitKey, err = hkdf.Expand(info.kdfHash, prk, "COMMITKEY", commitKeySize); err != nil {
			return nil, nil, err
		}
	} else {
		if key, err = hkdf.Key(info.kdfHash, dataKey, nil, id+string(messageID), dataKeySize); err != nil {
			return nil, nil, err
		}
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, nil, err
	}
	aead, err = cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return aead, commitKey, nil
}

// commitmentMatches compares a derived commitment key with the header's in
// constant time, as the specification requires.
func commitmentMatches(derived, stored []byte) bool {
	return subtle.ConstantTimeCompare(derived, stored) == 1
}
