package esdk

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

const (
	spoolChunk  = 64 << 10 // plaintext bytes sealed at once: every chunk but the last
	spoolMemory = 1 << 20  // sealed bytes spooled in memory before a file is used
)

// errSpoolChunk is the error of a write to a spool after a short chunk:
// only the last chunk may be shorter than spoolChunk.
var errSpoolChunk = errors.New("esdk: a spool chunk after a short one")

// spool holds plaintext until it may be released, sealed with AES-256-GCM
// under a random key that exists only in memory, in chunks numbered by
// their nonce, so that what it puts on disk reveals nothing and a changed
// byte there fails rather than comes back altered. It keeps up to
// spoolMemory bytes in memory, then moves to a temporary file in dir (the
// system's if empty) that never has a name on Linux (O_TMPFILE), is
// removed from its directory once open elsewhere where the system allows,
// and in any case by close.
//
// Every chunk but the last is spoolChunk bytes, so that the spool needs
// no record per chunk: its memory is the same whatever it holds.
type spool struct {
	aead    cipher.AEAD
	dir     string
	mem     []byte
	f       *os.File
	name    string // f's name to remove on close, or "" if it has none
	w       *bufio.Writer
	r       io.Reader
	chunks  int // chunks written
	last    int // plaintext bytes of the last chunk written
	read    int // the next chunk to read back
	scratch []byte
}

func newSpool(dir string) (*spool, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	clear(key)
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

// write seals p, at most spoolChunk bytes, as the next chunk. Only the
// last chunk may be shorter.
func (s *spool) write(p []byte) error {
	if len(p) > spoolChunk || (s.chunks > 0 && s.last != spoolChunk) {
		return errSpoolChunk
	}
	s.scratch = s.aead.Seal(s.scratch[:0], s.nonce(s.chunks), p, nil)
	s.chunks++
	s.last = len(p)
	if s.f == nil && len(s.mem)+len(s.scratch) <= spoolMemory {
		s.mem = append(s.mem, s.scratch...)
		return nil
	}
	if s.f == nil {
		f, name, err := openSpoolFile(s.dir)
		if err != nil {
			return fmt.Errorf("esdk: spooling plaintext: %w", err)
		}
		s.f, s.name, s.w = f, name, bufio.NewWriterSize(f, spoolChunk)
		if _, err := s.w.Write(s.mem); err != nil {
			return fmt.Errorf("esdk: spooling plaintext: %w", err)
		}
		clear(s.mem)
		s.mem = nil
	}
	if _, err := s.w.Write(s.scratch); err != nil {
		return fmt.Errorf("esdk: spooling plaintext: %w", err)
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
		return fmt.Errorf("esdk: spooling plaintext: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("esdk: spooling plaintext: %w", err)
	}
	s.r = bufio.NewReaderSize(s.f, spoolChunk)
	return nil
}

// next returns the next chunk of plaintext, or io.EOF after the last.
func (s *spool) next() ([]byte, error) {
	if s.read == s.chunks {
		return nil, io.EOF
	}
	n := spoolChunk
	if s.read == s.chunks-1 {
		n = s.last
	}
	sealed := s.scratch[:n+tagSize]
	if _, err := io.ReadFull(s.r, sealed); err != nil {
		return nil, fmt.Errorf("esdk: reading back spooled plaintext: %w", err)
	}
	pt, err := s.aead.Open(sealed[:0], s.nonce(s.read), sealed, nil)
	if err != nil {
		return nil, fmt.Errorf("esdk: spooled plaintext changed in its temporary file")
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
