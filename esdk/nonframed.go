package esdk

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"hash"
	"io"
)

// Non-framed body (spec data-format/message-body.md, "Non-Framed Data";
// content type 0x01, which the official SDKs write when asked for a frame
// length of 0):
//
//	IV (12) | uint64 n | ciphertext (n) | tag (16)
//
// one AES-GCM ciphertext under the derived key, with the IV of sequence
// number 1 (eleven zero bytes, then 1; client-apis/decrypt.md) and the
// body AAD
//
//	message ID | "AWSKMSEncryptionClient Single Block" | uint32 1 | uint64 n
//
// The decrypter reads the whole body, authenticating it as it goes, and
// keeps its plaintext sealed in a spool (memory, then an unlinked
// temporary file) until the tag, and for signed suites the signature,
// have verified and nothing follows the message. Only then does it
// return plaintext, so none is ever released unauthenticated, and memory
// stays bounded whatever n says.
const (
	bodyAADSingle = "AWSKMSEncryptionClient Single Block"
	// MaxNonFramedLength is the longest non-framed body the specification
	// allows, 2^36 - 32 bytes (64 GiB): the most AES-GCM encrypts under
	// one IV. A longer declared length fails with ErrAuthentication.
	MaxNonFramedLength = 1<<36 - 32
)

// nonFramedBody reads a non-framed body, its footer and the end of the
// message into a spool (readBody), for a verifiedReader.
type nonFramedBody struct {
	r         io.Reader
	block     cipher.Block
	messageID []byte
	ver       *verifier
	sigHash   hash.Hash
	tempDir   string
}

// readBody reads and authenticates the body, footer and end of the
// message, spooling the plaintext, and returns the spool ready to read.
func (d *nonFramedBody) readBody() (*spool, error) {
	var head [ivSize + 8]byte
	if _, err := io.ReadFull(d.r, head[:]); err != nil {
		return nil, readErr(err)
	}
	iv := frameIV(1)
	n := binary.BigEndian.Uint64(head[ivSize:])
	if n > MaxNonFramedLength || !bytes.Equal(head[:ivSize], iv[:]) {
		return nil, ErrAuthentication
	}
	if d.sigHash != nil {
		d.sigHash.Write(head[:])
	}
	aad := append(bytes.Clone(d.messageID), bodyAADSingle...)
	aad = binary.BigEndian.AppendUint32(aad, 1)
	aad = binary.BigEndian.AppendUint64(aad, n)
	g := newGCMStream(d.block, iv[:], aad)

	sp, err := newSpool(d.tempDir)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, min(n, spoolChunk))
	for left := n; left > 0; {
		chunk := buf[:min(left, spoolChunk)]
		if _, err := io.ReadFull(d.r, chunk); err != nil {
			sp.close()
			return nil, readErr(err)
		}
		if d.sigHash != nil {
			d.sigHash.Write(chunk)
		}
		g.open(chunk, chunk)
		if err := sp.write(chunk); err != nil {
			sp.close()
			return nil, err
		}
		left -= uint64(len(chunk))
	}
	clear(buf)
	var tag [tagSize]byte
	if _, err := io.ReadFull(d.r, tag[:]); err != nil {
		sp.close()
		return nil, readErr(err)
	}
	if d.sigHash != nil {
		d.sigHash.Write(tag[:])
	}
	if !g.verify(tag[:]) {
		sp.close()
		return nil, ErrAuthentication
	}
	if err := readEnd(d.r, d.ver); err != nil {
		sp.close()
		return nil, err
	}
	if err := sp.rewind(); err != nil {
		sp.close()
		return nil, err
	}
	return sp, nil
}
