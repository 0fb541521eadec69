package keys

import (
	"crypto/aes"
	"crypto/cipher"
)

// xaes is XAES-256-GCM as specified at https://c2sp.org/XAES-256-GCM: a
// 24-byte nonce; the first 12 bytes derive a per-message AES-256 key with
// NIST SP 800-108r1 counter-mode KDF over AES-256-CMAC, the last 12 are the
// AES-GCM nonce under that key. The CMAC subkey is computed once per key.
type xaes struct {
	block cipher.Block
	k1    [aes.BlockSize]byte
}

func newXAES(key []byte) (*xaes, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	x := &xaes{block: block}
	// K1 = dbl(AES-256_K(0^128)), the CMAC subkey for a complete block.
	block.Encrypt(x.k1[:], x.k1[:])
	msb := x.k1[0] >> 7
	for i := 0; i < aes.BlockSize-1; i++ {
		x.k1[i] = x.k1[i]<<1 | x.k1[i+1]>>7
	}
	x.k1[aes.BlockSize-1] = x.k1[aes.BlockSize-1]<<1 ^ msb*0x87
	return x, nil
}

// aead returns AES-256-GCM under the key derived from nonce[:12]; the
// caller passes nonce[12:24] as its nonce.
func (x *xaes) aead(nonce []byte) (cipher.AEAD, error) {
	// One array holds the derived key k and the KDF's two input blocks m1
	// and m2: they escape to the heap through the cipher.Block interface,
	// and one allocation is cheaper than three.
	var buf [32 + 2*aes.BlockSize]byte
	k, m1, m2 := buf[:32], buf[32:48], buf[48:]
	m1[1], m1[2] = 0x01, 'X'
	m2[1], m2[2] = 0x02, 'X'
	copy(m1[4:], nonce[:12])
	copy(m2[4:], nonce[:12])
	for i := range aes.BlockSize {
		m1[i] ^= x.k1[i]
		m2[i] ^= x.k1[i]
	}
	x.block.Encrypt(k[:16], m1)
	x.block.Encrypt(k[16:], m2)
	block, err := aes.NewCipher(k)
	clear(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
