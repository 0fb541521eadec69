// Package keys holds key material and everything done with it: the root key
// that encrypts material at rest, symmetric backing keys, and the ciphertext
// blob format of docs/ciphertext-blob.md.
//
// It knows nothing of requests, policies or storage. Every authentication
// failure surfaces as the one opaque ErrInvalidCiphertext; nothing here says
// which check failed.
package keys

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
)

// ErrInvalidCiphertext is returned for any blob that cannot be authenticated:
// malformed, truncated, extended, tampered with, or sealed under other key
// material or another encryption context.
var ErrInvalidCiphertext = errors.New("keys: invalid ciphertext")

// ID is a key id: 16 random bytes. A single-Region key's id is a version 4
// UUID (the high nibble of byte 6, a UUID's version, is 4); a multi-Region
// key's id, written "mrk-" and 32 hex digits, has 0 there, which no UUID
// version has, so that the 16 bytes alone (as a ciphertext blob holds
// them) say which form the id has.
type ID [16]byte

// NewID returns a random single-Region key id.
func NewID() ID {
	var id ID
	rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// NewMultiRegionID returns a random multi-Region key id.
func NewMultiRegionID() ID {
	var id ID
	rand.Read(id[:])
	id[6] &= 0x0f
	return id
}

// MultiRegion reports whether id is a multi-Region key id.
func (id ID) MultiRegion() bool { return id[6]>>4 == 0 }

// String returns the lowercase canonical form: 8-4-4-4-12 for a UUID,
// mrk- and 32 hex digits for a multi-Region key id.
func (id ID) String() string {
	if id.MultiRegion() {
		return "mrk-" + hex.EncodeToString(id[:])
	}
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], id[10:16])
	return string(b[:])
}

// ParseID parses the canonical 36-character form of a UUID, in either case,
// or a multi-Region key id as String writes it. Any other form (no dashes,
// braces, urn: prefix) is rejected, as AWS KMS rejects it, and so is an
// mrk- id without 0 in a UUID's version place, which NewMultiRegionID never
// makes. (A "version 0" UUID parses, but String writes it back in the mrk-
// form: no key has such an id.)
func ParseID(s string) (ID, bool) {
	var id ID
	if len(s) == 36 && s[:4] == "mrk-" {
		if _, err := hex.Decode(id[:], []byte(s[4:])); err != nil || !id.MultiRegion() || hex.EncodeToString(id[:]) != s[4:] {
			return id, false
		}
		return id, true
	}
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, false
	}
	var src [32]byte
	copy(src[0:8], s[0:8])
	copy(src[8:12], s[9:13])
	copy(src[12:16], s[14:18])
	copy(src[16:20], s[19:23])
	copy(src[20:32], s[24:36])
	if _, err := hex.Decode(id[:], src[:]); err != nil {
		return id, false
	}
	return id, true
}
