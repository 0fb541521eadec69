package esdk

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
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
//
// GHASH is computed one of two ways, both constant time: in pure Go
// (ghash, the reference), or, where crypto/cipher's AES-GCM has a
// hardware GHASH, by having it hash each piece as additional data (see
// fastGHASH), about ten times faster, near the speed of crypto/cipher's
// own AES-GCM (BenchmarkGCMStreamOpen). The AAD is always hashed in pure
// Go.
type gcmStream struct {
	block cipher.Block
	ctr   cipher.Stream
	h     [2]uint64 // the hash key, E(K, 0^128), as two big-endian halves
	// y is the GHASH state Y: with fast, Y·H (see fastGHASH).
	y      [2]uint64
	fast   *fastGHASH // nil: pure Go
	j0     [16]byte   // IV || 00000001
	aadLen uint64
	ctLen  uint64
}

// newGCMStream returns a gcmStream that hashes with crypto/cipher's
// AES-GCM where its GHASH is the constant-time hardware one, and in pure
// Go elsewhere.
func newGCMStream(block cipher.Block, iv []byte, aad []byte) *gcmStream {
	return newGCMStreamUsing(block, iv, aad, hardwareGHASH())
}

// newGCMStreamUsing returns a gcmStream that hashes the ciphertext with
// crypto/cipher's AES-GCM if fast is set and crypto/cipher allows it (it
// does not in FIPS 140-only mode), and in pure Go otherwise. The tests
// use it to check both ways on any machine; crypto/cipher's GHASH without
// hardware support is not constant time.
func newGCMStreamUsing(block cipher.Block, iv []byte, aad []byte, fast bool) *gcmStream {
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
	if fast {
		if g.fast = newFastGHASH(block, g.h); g.fast != nil {
			g.y = gfMul(g.y, g.h)
		}
	}
	return g
}

// open authenticates ct into the running tag and decrypts it into dst,
// which may be ct itself.
func (g *gcmStream) open(dst, ct []byte) {
	g.absorb(ct)
	g.ctr.XORKeyStream(dst, ct)
}

// absorb hashes ct, a piece of the ciphertext, into the state.
func (g *gcmStream) absorb(ct []byte) {
	g.ctLen += uint64(len(ct))
	if g.fast != nil {
		g.y = g.fast.absorb(g.y, ct)
		return
	}
	g.ghash(ct)
}

// verify reports, in constant time, whether tag is the tag of the
// ciphertext passed to open.
func (g *gcmStream) verify(tag []byte) bool {
	want := g.sum()
	return subtle.ConstantTimeCompare(want[:], tag) == 1
}

// sum finishes GHASH and returns the tag of the ciphertext passed to open
// (or, in tests that seal, to absorb). It may be called once.
func (g *gcmStream) sum() [tagSize]byte {
	lens := [2]uint64{g.aadLen * 8, g.ctLen * 8}
	var s [2]uint64
	if g.fast != nil {
		// g.y is Y·H, and GHASH ends with (Y XOR lengths)·H.
		l := gfMul(lens, g.h)
		s = [2]uint64{g.y[0] ^ l[0], g.y[1] ^ l[1]}
	} else {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], lens[0])
		binary.BigEndian.PutUint64(b[8:], lens[1])
		g.ghash(b[:])
		s = g.y
	}
	var tag, mask [tagSize]byte
	binary.BigEndian.PutUint64(tag[:8], s[0])
	binary.BigEndian.PutUint64(tag[8:], s[1])
	g.block.Encrypt(mask[:], g.j0[:])
	subtle.XORBytes(tag[:], tag[:], mask[:])
	return tag
}

// ghash absorbs data, zero-padded to a whole block, into the state Y in
// pure Go: Y = (Y XOR X)·H for each block X.
func (g *gcmStream) ghash(data []byte) {
	y, h := g.y, newGFKey(g.h)
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
		y[0] ^= binary.BigEndian.Uint64(src)
		y[1] ^= binary.BigEndian.Uint64(src[8:])
		y = h.mul(y)
	}
	g.y = y
}

// fastGHASH hashes ciphertext with crypto/cipher's AES-GCM, whose GHASH
// is in assembly with carry-less multiplication instructions (PCLMULQDQ
// on amd64, PMULL on arm64), under the key K of the message.
//
// With an empty plaintext and additional data A of n bytes (m blocks once
// zero-padded), AES-GCM's Seal returns
//
//	T = GHASH_H(pad(A) || L_n) XOR E(K, J0)
//	  = (Y_m(A) XOR L_n)·H XOR E(K, J0)
//	  = Y_m(A)·H XOR L_n·H XOR E(K, J0)
//
// where Y_m(A) is GHASH's state after A from a zero state, L_n the
// length block [8n]_64 || [0]_64, H = E(K, 0^128), the hash key of the
// message too, and J0 = nonce || 00000001. We know E(K, J0) and H, so
// Z = Y_m(A)·H = T XOR c_n with c_n = L_n·H XOR E(K, J0).
//
// GHASH is linear: from a state Y, m blocks A_1..A_m lead to
// Y' = Y·H^m XOR Y_m(A), so, tracking W = Y·H rather than Y,
//
//	W' = W·H^m XOR Z = W·H^m XOR T XOR c_n
//
// one Seal and one pure-Go multiplication per piece (H^m and c_n are kept
// for the last piece length seen, which is that of every piece but the
// last in the decrypter). A piece that is not a whole number of blocks is
// the last of the ciphertext, and GCM pads it with zeros as Seal pads A.
// At the end, GHASH of the whole is (Y XOR L)·H = W XOR L·H with L the
// lengths of the AAD and ciphertext (gcmStream.sum).
//
// The nonce of these Seals is twelve zero bytes, not the message's IV
// (eleven zero bytes, then 1), so E(K, J0) here is no block of the
// message's key stream, although nothing would be revealed if it were:
// with an empty plaintext Seal encrypts nothing, and its T never leaves
// the process; it only goes into the tag that verify compares in
// constant time. Reusing one nonce does GCM no harm here for the same
// reason. Everything is constant time: crypto/cipher's hardware GHASH
// is, and so are gfMul and XOR; the square-and-multiply of H^m branches
// on m, a length, which is public.
type fastGHASH struct {
	aead cipher.AEAD
	h    [2]uint64
	mask [2]uint64 // E(K, J0) for the zero nonce
	n    int       // the piece length that pow and c are for, or -1
	pow  [2]uint64 // H^ceil(n/16)
	c    [2]uint64 // c_n: L_n·H XOR mask
	// nonce stays zero; it and tag are fields, not locals, so that
	// passing them to Seal allocates nothing.
	nonce [12]byte
	tag   [tagSize]byte
}

// newFastGHASH returns a fastGHASH for the key of block, whose hash key
// is h, or nil if crypto/cipher will not make an AES-GCM of block.
func newFastGHASH(block cipher.Block, h [2]uint64) *fastGHASH {
	aead, err := cipher.NewGCM(block)
	if err != nil || aead.NonceSize() != 12 || aead.Overhead() != tagSize {
		return nil
	}
	f := &fastGHASH{aead: aead, h: h, n: -1}
	var j0 [16]byte
	j0[15] = 1
	block.Encrypt(j0[:], j0[:])
	f.mask = [2]uint64{binary.BigEndian.Uint64(j0[:8]), binary.BigEndian.Uint64(j0[8:])}
	return f
}

// absorb returns the state W·H^m XOR Y_m(ct)·H: w = Y·H for the state Y
// before ct, the result Y'·H for the state Y' after it.
func (f *fastGHASH) absorb(w [2]uint64, ct []byte) [2]uint64 {
	if len(ct) == 0 {
		return w
	}
	if len(ct) != f.n {
		f.n = len(ct)
		f.pow = gfPow(f.h, uint64(len(ct)+15)/16)
		lh := gfMul([2]uint64{uint64(len(ct)) * 8, 0}, f.h)
		f.c = [2]uint64{lh[0] ^ f.mask[0], lh[1] ^ f.mask[1]}
	}
	t := f.aead.Seal(f.tag[:0], f.nonce[:], nil, ct)
	w = gfMul(w, f.pow)
	w[0] ^= binary.BigEndian.Uint64(t[:8]) ^ f.c[0]
	w[1] ^= binary.BigEndian.Uint64(t[8:]) ^ f.c[1]
	return w
}

// gfPow returns x^e in GCM's field, by square-and-multiply; it branches
// on e, not on x.
func gfPow(x [2]uint64, e uint64) [2]uint64 {
	r := [2]uint64{1 << 63, 0} // 1 in GCM's bit-reflected order
	for i := bits.Len64(e) - 1; i >= 0; i-- {
		r = gfMul(r, r)
		if e>>i&1 == 1 {
			r = gfMul(r, x)
		}
	}
	return r
}

// gfMul returns x·y in GCM's field, elements as two big-endian halves of
// their 16 bytes.
func gfMul(x, y [2]uint64) [2]uint64 {
	k := newGFKey(y)
	return k.mul(x)
}

// gfKey is a field element prepared to multiply by: its halves, their bit
// reversals and the XORs of each pair, computed once for many products.
type gfKey struct{ h0, h1, h2, h0r, h1r, h2r uint64 }

func newGFKey(y [2]uint64) gfKey {
	k := gfKey{h1: y[0], h0: y[1]}
	k.h0r, k.h1r = rev64(k.h0), rev64(k.h1)
	k.h2, k.h2r = k.h0^k.h1, k.h0r^k.h1r
	return k
}

// mul returns x·k. It is the constant-time carry-less multiplication of
// BearSSL's ghash_ctmul64 (integer multiplications of operands with every
// fourth bit kept, so that carries fall into the holes), with the
// reduction of GCM's bit-reflected field.
func (k *gfKey) mul(x [2]uint64) [2]uint64 {
	x1, x0 := x[0], x[1]
	x0r, x1r := rev64(x0), rev64(x1)
	x2, x2r := x0^x1, x0r^x1r
	z0 := bmul64(x0, k.h0)
	z1 := bmul64(x1, k.h1)
	z2 := bmul64(x2, k.h2)
	z0h := bmul64(x0r, k.h0r)
	z1h := bmul64(x1r, k.h1r)
	z2h := bmul64(x2r, k.h2r)
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
	return [2]uint64{v3, v2}
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
