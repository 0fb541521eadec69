package keys

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sort"
)

// Layout of a version 1 ciphertext blob (docs/ciphertext-blob.md):
//
//	offset size
//	0      1    format, 0x01
//	1      16   key id (UUID bytes)
//	17     4    backing-key version, big-endian
//	21     24   random XAES-256-GCM nonce
//	45     n+16 XAES-256-GCM ciphertext and tag
//
// The 45-byte header and the encoded encryption context are the additional
// authenticated data, so flipping any bit anywhere fails authentication.
const (
	FormatV1     = 0x01
	headerSize   = 1 + 16 + 4 + nonceSize
	nonceSize    = 24
	tagSize      = 16
	MaterialSize = 32
	blobOverhead = headerSize + tagSize
)

// BlobOverhead is the number of bytes a blob adds to its plaintext.
const BlobOverhead = blobOverhead

// Header is the clear part of a ciphertext blob: which key and which version
// of its material sealed it.
type Header struct {
	KeyID   ID
	Version uint32
}

// ParseHeader reads the header of a blob without authenticating anything.
// The caller uses it to find the key, then calls Symmetric.Open, which
// authenticates the whole blob. A blob too short to hold a header and a tag,
// or of an unknown format, is ErrInvalidCiphertext.
func ParseHeader(blob []byte) (Header, error) {
	if len(blob) < blobOverhead || blob[0] != FormatV1 {
		return Header{}, ErrInvalidCiphertext
	}
	var h Header
	copy(h.KeyID[:], blob[1:17])
	h.Version = binary.BigEndian.Uint32(blob[17:21])
	return h, nil
}

// Symmetric is one version of a symmetric backing key: 32 bytes of material
// that never leave this package once wrapped. It is safe for concurrent use.
//
// Messages are sealed with XAES-256-GCM (https://c2sp.org/XAES-256-GCM): a
// per-message AES-256-GCM key is derived from the backing key and the first
// half of a random 192-bit nonce, so one backing key can seal about 2^80
// messages, not the 2^32 that AES-GCM with random 96-bit nonces allows.
type Symmetric struct {
	KeyID   ID
	Version uint32
	x       *xaes
}

// NewSymmetric wraps 32 bytes of material for key id and version.
func NewSymmetric(id ID, version uint32, material []byte) (*Symmetric, error) {
	if len(material) != MaterialSize {
		return nil, errors.New("keys: symmetric material must be 32 bytes")
	}
	x, err := newXAES(material)
	if err != nil {
		return nil, err
	}
	return &Symmetric{KeyID: id, Version: version, x: x}, nil
}

// GenerateMaterial returns 32 random bytes of backing-key material.
func GenerateMaterial() []byte {
	m := make([]byte, MaterialSize)
	rand.Read(m)
	return m
}

// Seal encrypts plaintext under this key version, bound to the encryption
// context ec (nil and empty are the same context), and returns the blob.
func (s *Symmetric) Seal(plaintext []byte, ec map[string]string) ([]byte, error) {
	blob := make([]byte, headerSize, headerSize+len(plaintext)+tagSize)
	blob[0] = FormatV1
	copy(blob[1:17], s.KeyID[:])
	binary.BigEndian.PutUint32(blob[17:21], s.Version)
	nonce := blob[21:headerSize]
	rand.Read(nonce)
	aead, err := s.x.aead(nonce)
	if err != nil {
		return nil, err
	}
	aad := AppendContext(blob[:headerSize:headerSize], ec)
	return aead.Seal(blob, nonce[12:], plaintext, aad), nil
}

// Open authenticates and decrypts a blob sealed by Seal under this key
// version with the same encryption context. Every failure is
// ErrInvalidCiphertext.
func (s *Symmetric) Open(blob []byte, ec map[string]string) ([]byte, error) {
	h, err := ParseHeader(blob)
	if err != nil || h.KeyID != s.KeyID || h.Version != s.Version {
		return nil, ErrInvalidCiphertext
	}
	nonce := blob[21:headerSize]
	aead, err := s.x.aead(nonce)
	if err != nil {
		return nil, ErrInvalidCiphertext
	}
	aad := AppendContext(blob[:headerSize:headerSize], ec)
	pt, err := aead.Open(nil, nonce[12:], blob[headerSize:], aad)
	if err != nil {
		return nil, ErrInvalidCiphertext
	}
	return pt, nil
}

// AppendContext appends the canonical encoding of an encryption context to
// dst: the number of pairs, then each pair sorted by key as length-prefixed
// key and value (lengths are 4-byte big-endian). Distinct contexts always
// encode differently, so {"ab":"c"} never matches {"a":"bc"}.
func AppendContext(dst []byte, ec map[string]string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ec)))
	if len(ec) == 0 {
		return dst
	}
	names := make([]string, 0, len(ec))
	for k := range ec {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := ec[k]
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(k)))
		dst = append(dst, k...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		dst = append(dst, v...)
	}
	return dst
}
