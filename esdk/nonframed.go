package esdk

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"os"
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

	spoolChunk  = 64 << 10 // bytes of the body read, decrypted and spooled at once
	spoolMemory = 1 << 20  // sealed bytes spooled in memory before a file is used
)

type nonFramedDecrypter struct {
	r         io.Reader
	block     cipher.Block
	messageID []byte
	ver       *verifier
	sigHash   hash.Hash
	tempDir   string

	sp  *spool // nil until the body has verified
	out []byte
	err error // sticky; io.EOF once everything has been returned
}

func (d *nonFramedDecrypter) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.sp == nil {
			if d.sp, d.err = d.readBody(); d.err != nil {
				continue
			}
		}
		if d.out, d.err = d.sp.next(); d.err != nil {
			d.sp.close()
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// readBody reads and authenticates the body, footer and end of the
// message, spooling the plaintext, and returns the spool ready to read.
func (d *nonFramedDecrypter) readBody() (*spool, error) {
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

// spool holds plaintext until it may be released, sealed with AES-256-GCM
// under a random key that exists only in memory, in chunks numbered by
// their nonce, so that what it puts on disk reveals nothing and a changed
// byte there fails rather than comes back altered. It keeps up to
// spoolMemory bytes in memory, then moves to a temporary file in dir (the
// system's if empty) that never has a name on Linux (O_TMPFILE), is
// removed from its directory once open elsewhere where the system allows,
// and in any case by close.
type spool struct {
	aead    cipher.AEAD
	dir     string
	mem     []byte
	f       *os.File
	name    string // f's name to remove on close, or "" if it has none
	w       *bufio.Writer
	r       io.Reader
	sizes   []int // plaintext bytes of each chunk, in order
	read    int   // the next chunk to read back
	scratch []byte
}

func newSpool(dir string) (*spool, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &spool{aead: aead, dir: dir}, nil
}

func (s *spool) nonce(i int) []byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[4:], uint64(i))
	return n[:]
}

func (s *spool) write(p []byte) error {
	s.scratch = s.aead.Seal(s.scratch[:0], s.nonce(len(s.sizes)), p, nil)
	s.sizes = append(s.sizes, len(p))
	if s.f == nil && len(s.mem)+len(s.scratch) <= spoolMemory {
		s.mem = append(s.mem, s.scratch...)
		return nil
	}
	if s.f == nil {
		f, name, err := openSpoolFile(s.dir)
		if err != nil {
			return fmt.Errorf("esdk: spooling a non-framed body: %w", err)
		}
		s.f, s.name, s.w = f, name, bufio.NewWriterSize(f, spoolChunk)
		if _, err := s.w.Write(s.mem); err != nil {
			return fmt.Errorf("esdk: spooling a non-framed body: %w", err)
		}
		clear(s.mem)
		s.mem = nil
	}
	if _, err := s.w.Write(s.scratch); err != nil {
		return fmt.Errorf("esdk: spooling a non-framed body: %w", err)
	}
	return nil
}

// rewind makes what was written readable by next.
func (s *spool) rewind() error {
	if s.f == nil {
		s.r = bytes.NewReader(s.mem)
		return nil
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("esdk: spooling a non-framed body: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("esdk: spooling a non-framed body: %w", err)
	}
	s.r = bufio.NewReaderSize(s.f, spoolChunk)
	return nil
}

// next returns the next chunk of plaintext, or io.EOF after the last.
func (s *spool) next() ([]byte, error) {
	if s.read == len(s.sizes) {
		return nil, io.EOF
	}
	sealed := s.scratch[:s.sizes[s.read]+tagSize]
	if _, err := io.ReadFull(s.r, sealed); err != nil {
		return nil, fmt.Errorf("esdk: reading back a non-framed body: %w", err)
	}
	pt, err := s.aead.Open(sealed[:0], s.nonce(s.read), sealed, nil)
	if err != nil {
		return nil, fmt.Errorf("esdk: a non-framed body changed in its temporary file")
	}
	s.read++
	return pt, nil
}

// close removes the temporary file, if any, and forgets the key.
func (s *spool) close() {
	if s.f != nil {
		s.f.Close()
		if s.name != "" {
			os.Remove(s.name)
		}
		s.f = nil
	}
	clear(s.mem)
	clear(s.scratch)
	s.mem, s.aead = nil, nil
}

// createUnlinked creates a temporary file in dir (the system's if empty)
// and removes its name at once where the system allows (Unix): its data
// then lives only as long as f. name is the file's name if it could not
// be removed, for the caller to remove once f is closed, or "".
func createUnlinked(dir string) (f *os.File, name string, err error) {
	f, err = os.CreateTemp(dir, "esdk-body-*")
	if err != nil {
		return nil, "", err
	}
	if os.Remove(f.Name()) != nil {
		return f, f.Name(), nil
	}
	return f, "", nil
}
