package esdk

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
)

// gcmStream opens one AES-GCM ciphertext (NIST SP 800-38D, 96-bit IV,
// 16-byte tag) a piece at a time, for a non-framed body too long to hold
// in memory: crypto/cipher opens only whole ciphertexts. It decrypts with
// AES-CTR and authenticates with GHASH as it goes; the plaintext it
// returns is not authenticated until verify has returned true.
//
// Every piece but the last must be a multiple of 16 bytes long. The
// ciphertext must be at most 2^36 - 32 bytes (2^32 - 2 blocks), the limit
// of GCM, within which the 32-bit counter of GCM never wraps, so that
// crypto/cipher's 128-bit CTR counter gives the same key stream.
type gcmStream struct {
	block  cipher.Block
	ctr    cipher.Stream
	h      [2]uint64 // the hash key, E(K, 0^128), as two big-endian halves
	y      [2]uint64 // the GHASH state
	j0     [16]byte  // IV || 00000001
	aadLen uint64
	ctLen  uint64
}

func newGCMStream(block cipher.Block, iv []byte, aad []byte) *gcmStream {
	g := &gcmStream{block: block}
	var hb [16]byte
	block.Encrypt(hb[:], hb[:])
	g.h = [2]uint64{binary.BigEndian.Uint64(hb[:8]), binary.BigEndian.Uint64(hb[8:])}
	copy(g.j0[:], iv)
	g.j0[15] = 1
	ctr0 := g.j0
	ctr0[15] = 2
	g.ctr = cipher.NewCTR(block, ctr0[:])
	g.ghash(aad)
	g.aadLen = uint64(len(aad))
	return g
}

// open authenticates ct into the running tag and decrypts it into dst,
// which may be ct itself.
func (g *gcmStream) open(dst, ct []byte) {
	g.ghash(ct)
	g.ctLen += uint64(len(ct))
	g.ctr.XORKeyStream(dst, ct)
}

// verify reports, in constant time, whether tag is the tag of the
// ciphertext passed to open.
func (g *gcmStream) verify(tag []byte) bool {
	want := g.sum()
	return subtle.ConstantTimeCompare(want[:], tag) == 1
}

// sum finishes GHASH and returns the tag of the ciphertext passed to open
// (or, in tests that seal, absorbed by ghash after counting it in ctLen).
// It may be called once.
func (g *gcmStream) sum() [tagSize]byte {
	var lens [16]byte
	binary.BigEndian.PutUint64(lens[:8], g.aadLen*8)
	binary.BigEndian.PutUint64(lens[8:], g.ctLen*8)
	g.ghash(lens[:])
	var tag, mask [tagSize]byte
	binary.BigEndian.PutUint64(tag[:8], g.y[0])
	binary.BigEndian.PutUint64(tag[8:], g.y[1])
	g.block.Encrypt(mask[:], g.j0[:])
	subtle.XORBytes(tag[:], tag[:], mask[:])
	return tag
}

// ghash absorbs data, zero-padded to a whole block, into the state. It is
// the constant-time carry-less multiplication of BearSSL's ghash_ctmul64
// (integer multiplications of operands with every fourth bit kept, so
// that carries fall into the holes), with the reduction of GCM's
// bit-reflected field.
func (g *gcmStream) ghash(data []byte) {
	y1, y0 := g.y[0], g.y[1]
	h1, h0 := g.h[0], g.h[1]
	h0r, h1r := rev64(h0), rev64(h1)
	h2, h2r := h0^h1, h0r^h1r
	var tmp [16]byte
	for len(data) > 0 {
		src := data
		if len(data) >= 16 {
			data = data[16:]
		} else {
			tmp = [16]byte{}
			copy(tmp[:], data)
			src, data = tmp[:], nil
		}
		y1 ^= binary.BigEndian.Uint64(src)
		y0 ^= binary.BigEndian.Uint64(src[8:])

		y0r, y1r := rev64(y0), rev64(y1)
		y2, y2r := y0^y1, y0r^y1r
		z0 := bmul64(y0, h0)
		z1 := bmul64(y1, h1)
		z2 := bmul64(y2, h2)
		z0h := bmul64(y0r, h0r)
		z1h := bmul64(y1r, h1r)
		z2h := bmul64(y2r, h2r)
		z2 ^= z0 ^ z1
		z2h ^= z0h ^ z1h
		z0h = rev64(z0h) >> 1
		z1h = rev64(z1h) >> 1
		z2h = rev64(z2h) >> 1

		v0, v1, v2, v3 := z0, z0h^z2, z1^z2h, z1h
		v3 = v3<<1 | v2>>63
		v2 = v2<<1 | v1>>63
		v1 = v1<<1 | v0>>63
		v0 <<= 1

		v2 ^= v0 ^ v0>>1 ^ v0>>2 ^ v0>>7
		v1 ^= v0<<63 ^ v0<<62 ^ v0<<57
		v3 ^= v1 ^ v1>>1 ^ v1>>2 ^ v1>>7
		v2 ^= v1<<63 ^ v1<<62 ^ v1<<57
		y0, y1 = v2, v3
	}
	g.y = [2]uint64{y1, y0}
}

// bmul64 returns the low 64 bits of the carry-less product of x and y.
func bmul64(x, y uint64) uint64 {
	const m0, m1, m2, m3 = 0x1111111111111111, 0x2222222222222222, 0x4444444444444444, 0x8888888888888888
	x0, x1, x2, x3 := x&m0, x&m1, x&m2, x&m3
	y0, y1, y2, y3 := y&m0, y&m1, y&m2, y&m3
	z0 := x0*y0 ^ x1*y3 ^ x2*y2 ^ x3*y1
	z1 := x0*y1 ^ x1*y0 ^ x2*y3 ^ x3*y2
	z2 := x0*y2 ^ x1*y1 ^ x2*y0 ^ x3*y3
	z3 := x0*y3 ^ x1*y2 ^ x2*y1 ^ x3*y0
	return z0&m0 | z1&m1 | z2&m2 | z3&m3
}

func rev64(x uint64) uint64 {
	x = (x&0x5555555555555555)<<1 | (x>>1)&0x5555555555555555
	x = (x&0x3333333333333333)<<2 | (x>>2)&0x3333333333333333
	x = (x&0x0F0F0F0F0F0F0F0F)<<4 | (x>>4)&0x0F0F0F0F0F0F0F0F
	x = (x&0x00FF00FF00FF00FF)<<8 | (x>>8)&0x00FF00FF00FF00FF
	x = (x&0x0000FFFF0000FFFF)<<16 | (x>>16)&0x0000FFFF0000FFFF
	return x<<32 | x>>32
}
