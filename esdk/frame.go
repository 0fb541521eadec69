package esdk

import (
	"crypto/cipher"
	"encoding/binary"
)

// Framed body (spec data-format/message-body.md, message-body-aad.md).
//
//	regular frame: uint32 seq | IV (12) | ciphertext (FrameLength) | tag (16)
//	final frame:   0xFFFFFFFF | uint32 seq | IV (12) | uint32 n | ciphertext (n) | tag (16)
//
// Sequence numbers start at 1 and go up by one; the IV of frame seq is
// eight zero bytes and seq, big-endian. Each frame is AES-GCM sealed with
// the body AAD
//
//	message ID | "AWSKMSEncryptionClient Frame" or "... Final Frame" | uint32 seq | uint64 plaintext length
//
// so a frame cannot move, change kind or change length without failing
// authentication.
const (
	finalFrameMarker = 0xFFFFFFFF
	// maxSequence is the last sequence number a message may use: the
	// specification allows at most 2^32 - 1 frames.
	maxSequence = 0xFFFFFFFF

	bodyAADRegular = "AWSKMSEncryptionClient Frame"
	bodyAADFinal   = "AWSKMSEncryptionClient Final Frame"

	regularFrameOverhead = 4 + ivSize + tagSize
	finalFrameOverhead   = 4 + 4 + ivSize + 4 + tagSize
)

// frameCipher seals and opens the frames of one message.
type frameCipher struct {
	aead      cipher.AEAD
	messageID []byte
}

func frameIV(seq uint32) [ivSize]byte {
	var iv [ivSize]byte
	binary.BigEndian.PutUint32(iv[ivSize-4:], seq)
	return iv
}

func (fc *frameCipher) aad(dst []byte, final bool, seq uint32, n int) []byte {
	dst = append(dst[:0], fc.messageID...)
	if final {
		dst = append(dst, bodyAADFinal...)
	} else {
		dst = append(dst, bodyAADRegular...)
	}
	dst = binary.BigEndian.AppendUint32(dst, seq)
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}

// seal appends the serialized frame seq holding plaintext to dst.
func (fc *frameCipher) seal(dst []byte, final bool, seq uint32, plaintext []byte, aadBuf []byte) ([]byte, []byte) {
	iv := frameIV(seq)
	if final {
		dst = binary.BigEndian.AppendUint32(dst, finalFrameMarker)
	}
	dst = binary.BigEndian.AppendUint32(dst, seq)
	dst = append(dst, iv[:]...)
	if final {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(plaintext)))
	}
	aadBuf = fc.aad(aadBuf, final, seq, len(plaintext))
	return fc.aead.Seal(dst, iv[:], plaintext, aadBuf), aadBuf
}

// rawFrame is one frame as read from a message, not yet authenticated.
type rawFrame struct {
	final bool
	seq   uint32
	iv    [ivSize]byte
	// sealed is the ciphertext followed by the tag.
	sealed []byte
}

// open authenticates f and appends its plaintext to dst. It fails if the
// frame's IV is not the one its sequence number implies.
func (fc *frameCipher) open(dst []byte, f *rawFrame, aadBuf []byte) ([]byte, []byte, bool) {
	iv := frameIV(f.seq)
	if iv != f.iv {
		return dst, aadBuf, false
	}
	aadBuf = fc.aad(aadBuf, f.final, f.seq, len(f.sealed)-tagSize)
	out, err := fc.aead.Open(dst, iv[:], f.sealed, aadBuf)
	if err != nil {
		return dst, aadBuf, false
	}
	return out, aadBuf, true
}
