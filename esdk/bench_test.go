package esdk

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"io"
	"testing"
)

const benchSize = 64 << 20

type benchCase struct {
	suite       Suite
	frame, conc int
}

func (c benchCase) name() string {
	s := "commit"
	if c.suite.Signed() {
		s = "commit-ecdsa"
	}
	return fmt.Sprintf("%s/frame=%d/conc=%d", s, c.frame, c.conc)
}

func benchCases() []benchCase {
	var cs []benchCase
	for _, suite := range suites {
		for _, frame := range []int{4096, 65536} {
			for _, conc := range []int{1, 2} {
				cs = append(cs, benchCase{suite, frame, conc})
			}
		}
	}
	return cs
}

func BenchmarkEncrypt(b *testing.B) {
	kr := newMemKeyring(1)
	pt := testPlaintext(benchSize)
	for _, c := range benchCases() {
		b.Run(c.name(), func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				w, err := NewEncrypter(context.Background(), io.Discard, kr, EncryptOptions{Suite: c.suite, FrameLength: c.frame, Concurrency: c.conc})
				if err != nil {
					b.Fatal(err)
				}
				// Write in 1 MiB pieces, as io.Copy from a file would.
				for p := pt; len(p) > 0; p = p[1<<20:] {
					if _, err := w.Write(p[:1<<20]); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	kr := newMemKeyring(1)
	pt := testPlaintext(benchSize)
	for _, c := range benchCases() {
		msg := encrypt(b, kr, EncryptOptions{Suite: c.suite, FrameLength: c.frame}, pt)
		b.Run(c.name(), func(b *testing.B) {
			b.SetBytes(benchSize)
			buf := make([]byte, 1<<20)
			for b.Loop() {
				r, _, err := NewDecrypter(context.Background(), bytes.NewReader(msg), kr, DecryptOptions{Concurrency: c.conc})
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, onlyReader{r}, buf)
				if err != nil || n != benchSize {
					b.Fatalf("%d bytes, %v", n, err)
				}
			}
		})
	}
}

// onlyReader hides any WriterTo, so io.CopyBuffer reads in 1 MiB pieces.
type onlyReader struct{ io.Reader }

// BenchmarkStream1GiB encrypts and decrypts a 1 GiB stream with the
// default options: the throughput figure of the package, to set against
// `openssl speed -evp aes-256-gcm` (16 KB blocks). The encrypter reads its
// plaintext 1 MiB at a time and writes to io.Discard; the decrypter reads a
// message made beforehand (1 GiB in memory, as a file in the page cache)
// and is copied to io.Discard, as kms decrypt copies to a file.
func BenchmarkStream1GiB(b *testing.B) {
	const size = 1 << 30
	kr := newMemKeyring(1)
	chunk := testPlaintext(1 << 20)
	for _, frame := range []int{4096, 65536} {
		b.Run(fmt.Sprintf("encrypt/frame=%d", frame), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				w, err := NewEncrypter(context.Background(), io.Discard, kr, EncryptOptions{FrameLength: frame})
				if err != nil {
					b.Fatal(err)
				}
				for range size / len(chunk) {
					if _, err := w.Write(chunk); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, frame := range []int{4096, 65536} {
		b.Run(fmt.Sprintf("decrypt/frame=%d", frame), func(b *testing.B) {
			// The message is made once, outside the timer, and read as a
			// file in the page cache would be.
			var msg bytes.Buffer
			msg.Grow(size + size/16)
			w, err := NewEncrypter(context.Background(), &msg, kr, EncryptOptions{FrameLength: frame})
			if err != nil {
				b.Fatal(err)
			}
			for range size / len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			b.ResetTimer()
			for b.Loop() {
				r, _, err := NewDecrypter(context.Background(), onlyReader{bytes.NewReader(msg.Bytes())}, kr, DecryptOptions{})
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.Copy(io.Discard, r) // through WriteTo, as kms decrypt
				if err != nil || n != size {
					b.Fatalf("%d bytes, %v", n, err)
				}
			}
		})
	}
}

// BenchmarkGCMStreamOpen opens a 64 MiB AES-256-GCM ciphertext in 64 KiB
// pieces, as the non-framed decrypter does, hashing through crypto/cipher
// (stream; in pure Go where it has no hardware GHASH) and in pure Go
// (stream-purego), and, to set against them, crypto/cipher's AES-GCM
// opening the same ciphertext whole.
func BenchmarkGCMStreamOpen(b *testing.B) {
	key := make([]byte, 32)
	block, err := aes.NewCipher(key)
	if err != nil {
		b.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	iv := frameIV(1)
	aad := nonFramedAAD(make([]byte, 32), benchSize)
	sealed := gcm.Seal(nil, iv[:], testPlaintext(benchSize), aad)
	ct, tag := sealed[:benchSize], sealed[benchSize:]
	for _, fast := range []bool{true, false} {
		name := "stream"
		if !fast {
			name = "stream-purego"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(benchSize)
			buf := make([]byte, spoolChunk)
			for b.Loop() {
				g := newGCMStreamUsing(block, iv[:], aad, fast)
				for p := ct; len(p) > 0; p = p[spoolChunk:] {
					g.open(buf, p[:spoolChunk])
				}
				if !g.verify(tag) {
					b.Fatal("the tag did not verify")
				}
			}
		})
	}
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(benchSize)
		out := make([]byte, benchSize)
		for b.Loop() {
			if _, err := gcm.Open(out[:0], iv[:], sealed, aad); err != nil {
				b.Fatal(err)
			}
		}
	})
}
