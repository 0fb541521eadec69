package esdk

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	mathrand "math/rand/v2"
	"testing"
)

// TestGCMStreamMatchesStdlib checks the streaming opener, hashing in pure
// Go and through crypto/cipher's AES-GCM, against crypto/cipher's AES-GCM
// for every key size, lengths around block boundaries and around the
// decrypter's piece of 64 KiB (0, under 16, 16, a piece less one, a piece,
// a piece and one, several pieces and a tail), pieces of several sizes,
// fixed or varying, and that any changed bit of the ciphertext, tag, IV or
// AAD fails.
func TestGCMStreamMatchesStdlib(t *testing.T) {
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	fill := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	const chunk = spoolChunk
	lengths := []int{0, 1, 15, 16, 17, 31, 32, 33, 100, 1000, 4096 + 7, chunk - 1, chunk, chunk + 1, 3*chunk + 4096 + 7}
	for _, fast := range []bool{false, true} {
		for _, keyLen := range []int{16, 24, 32} {
			for _, n := range lengths {
				// A piece of 0 stands for pieces of varying lengths, any
				// multiple of 16 up to two chunks.
				for _, piece := range []int{16, 48, 4096, chunk, 0} {
					key, iv, aad, pt := fill(keyLen), fill(12), fill(int(rng.Uint32()%70)), fill(n)
					block, _ := aes.NewCipher(key)
					gcm, _ := cipher.NewGCM(block)
					sealed := gcm.Seal(nil, iv, pt, aad)
					ct, tag := sealed[:n], sealed[n:]
					open := func(ct, tag, iv, aad []byte) ([]byte, bool) {
						g := newGCMStreamUsing(block, iv, aad, fast)
						if (g.fast != nil) != fast {
							t.Fatalf("asked for fast %v, got fast %v", fast, g.fast != nil)
						}
						out := make([]byte, len(ct))
						for i := 0; i < len(ct); {
							step := piece
							if step == 0 {
								step = 16 * (1 + rng.IntN(2*chunk/16))
							}
							end := min(i+step, len(ct))
							g.open(out[i:end], ct[i:end])
							i = end
						}
						return out, g.verify(tag)
					}
					got, ok := open(ct, tag, iv, aad)
					if !ok || !bytes.Equal(got, pt) {
						t.Fatalf("fast %v, key %d, %d bytes in pieces of %d: ok %v, plaintext right %v", fast, keyLen, n, piece, ok, bytes.Equal(got, pt))
					}
					flip := func(b []byte) []byte {
						c := bytes.Clone(b)
						if len(c) > 0 {
							c[rng.IntN(len(c))] ^= 1 << rng.IntN(8)
						}
						return c
					}
					for name, bad := range map[string]func() bool{
						"ciphertext": func() bool { _, ok := open(flip(ct), tag, iv, aad); return ok && n > 0 },
						"tag":        func() bool { _, ok := open(ct, flip(tag), iv, aad); return ok },
						"iv":         func() bool { _, ok := open(ct, tag, flip(iv), aad); return ok },
						"aad":        func() bool { _, ok := open(ct, tag, iv, flip(aad)); return ok && len(aad) > 0 },
					} {
						if bad() {
							t.Fatalf("fast %v, key %d, %d bytes: a changed %s verified", fast, keyLen, n, name)
						}
					}
				}
			}
		}
	}
}

// TestGCMStreamHashesInHardware checks that the opener the decrypter uses
// hashes through crypto/cipher's AES-GCM exactly where that has a
// hardware GHASH.
func TestGCMStreamHashesInHardware(t *testing.T) {
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if g := newGCMStream(block, make([]byte, 12), nil); (g.fast != nil) != hardwareGHASH() {
		t.Fatalf("hashing through crypto/cipher %v, hardware GHASH %v", g.fast != nil, hardwareGHASH())
	}
	t.Logf("hardware GHASH: %v", hardwareGHASH())
}

// FuzzGCMStream checks the streaming opener, hashing in pure Go and
// through crypto/cipher's AES-GCM, against crypto/cipher's AES-GCM on any
// key size, IV, AAD and plaintext, cut into pieces of any
// multiple of 16 bytes: it must give the same plaintext and accept the
// same tag, and refuse the tag with any bit changed.
func FuzzGCMStream(f *testing.F) {
	f.Add(uint8(0), []byte("iv and key seed"), []byte("aad"), []byte("plaintext"), uint16(1), uint8(0))
	f.Add(uint8(1), []byte{}, []byte{}, make([]byte, 16*5+3), uint16(2), uint8(127))
	f.Add(uint8(2), []byte{1}, make([]byte, 33), make([]byte, 4096), uint16(7), uint8(8))
	f.Add(uint8(2), []byte{2}, []byte("aad"), make([]byte, 3*spoolChunk+4096+7), uint16(spoolChunk/16), uint8(64))
	f.Fuzz(func(t *testing.T, keySize uint8, seed, aad, pt []byte, piece uint16, flipBit uint8) {
		key := make([]byte, []int{16, 24, 32}[keySize%3])
		iv := make([]byte, 12)
		for i, b := range seed {
			if i < len(iv) {
				iv[i] ^= b
			}
			key[i%len(key)] ^= b
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			t.Fatal(err)
		}
		sealed := gcm.Seal(nil, iv, pt, aad)
		ct, tag := sealed[:len(pt)], sealed[len(pt):]
		step := 16 * max(1, int(piece))
		for _, fast := range []bool{false, true} {
			open := func(tag []byte) ([]byte, bool) {
				g := newGCMStreamUsing(block, iv, aad, fast)
				out := bytes.Clone(ct) // opened in place, as the decrypter does
				for i := 0; i < len(out); i += step {
					end := min(i+step, len(out))
					g.open(out[i:end], out[i:end])
				}
				return out, g.verify(tag)
			}
			got, ok := open(tag)
			if !ok || !bytes.Equal(got, pt) {
				t.Fatalf("fast %v, %d bytes in pieces of %d: tag ok %v, plaintext right %v", fast, len(pt), step, ok, bytes.Equal(got, pt))
			}
			bad := bytes.Clone(tag)
			bad[int(flipBit/8)%len(bad)] ^= 1 << (flipBit % 8)
			if _, ok := open(bad); ok {
				t.Fatalf("fast %v, %d bytes: a tag with bit %d changed verified", fast, len(pt), flipBit)
			}
		}
	})
}
