package esdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	mathrand "math/rand/v2"
	"testing"
	"testing/iotest"
)

var suites = []Suite{SuiteCommitKey, SuiteCommitKeyECDSAP384}

func encrypt(t testing.TB, kr Keyring, opts EncryptOptions, plaintext []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewEncrypter(context.Background(), &buf, kr, opts)
	if err != nil {
		t.Fatalf("NewEncrypter: %v", err)
	}
	if _, err := w.Write(plaintext); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes()
}

// decrypt returns the plaintext, the header, and the first error of
// NewDecrypter or of reading.
func decrypt(kr Keyring, opts DecryptOptions, msg []byte) ([]byte, *Header, error) {
	r, h, err := NewDecrypter(context.Background(), bytes.NewReader(msg), kr, opts)
	if err != nil {
		return nil, nil, err
	}
	pt, err := io.ReadAll(r)
	return pt, h, err
}

// decryptBoth decrypts msg twice, through Read and through WriteTo (as
// io.Copy does), and fails unless both give the same plaintext and both
// fail or neither.
func decryptBoth(kr Keyring, opts DecryptOptions, msg []byte) ([]byte, error) {
	pt, _, err := decrypt(kr, opts, msg)
	var out bytes.Buffer
	r, _, err2 := NewDecrypter(context.Background(), bytes.NewReader(msg), kr, opts)
	if err2 == nil {
		_, err2 = io.Copy(&out, r)
	}
	if (err == nil) != (err2 == nil) || !bytes.Equal(pt, out.Bytes()) {
		return nil, fmt.Errorf("Read gave %d bytes and %v, WriteTo %d bytes and %v", len(pt), err, out.Len(), err2)
	}
	return pt, err
}

// testPlaintext returns n bytes of a pattern that repeats every 64 KiB.
// Past the first period it is copied, not computed byte by byte: the race
// detector checks each store of a loop, and the tests ask for hundreds of
// MiB in all.
func testPlaintext(n int) []byte {
	const period = 1 << 16 // byte(i*7 + i>>8) repeats after 2^16 bytes
	p := make([]byte, n)
	for i := range min(n, period) {
		p[i] = byte(i*7 + i>>8)
	}
	for k := period; k < n; k *= 2 {
		copy(p[k:], p[:k])
	}
	return p
}

func TestRoundTrip(t *testing.T) {
	kr := newMemKeyring(2)
	contexts := []map[string]string{nil, {"purpose": "test", "Ünïcode": "välue", "a": ""}}
	for _, suite := range suites {
		for _, frame := range []int{1, 17, 4096, 65536} {
			perBatch := runFrames(frame)
			perSeal := sealFrames(frame)
			sizes := []int{0, 1, frame - 1, frame, frame + 1, 3*frame + 5, perBatch * frame, perBatch*frame + 1, 2*perBatch*frame - 1,
				perSeal*frame - 1, perSeal * frame, perSeal*frame + 1}
			if frame == 1 {
				// Many capped runs: more than either side holds in
				// flight at Concurrency 3 (3 sealed, 9 read ahead).
				sizes = append(sizes, 16*maxRunFrames+1)
			}
			for j, size := range sizes {
				// The context is all header: it takes turns by size, so
				// that each suite and frame length meets both.
				i := j % len(contexts)
				ec := contexts[i]
				{
					for _, conc := range []int{1, 3} {
						name := fmt.Sprintf("%v/frame=%d/size=%d/ec=%d/conc=%d", suite, frame, size, i, conc)
						t.Run(name, func(t *testing.T) {
							pt := testPlaintext(size)
							msg := encrypt(t, kr, EncryptOptions{Suite: suite, FrameLength: frame, EncryptionContext: ec, Concurrency: conc}, pt)
							got, h, err := decrypt(kr, DecryptOptions{Concurrency: conc}, msg)
							if err != nil {
								t.Fatalf("decrypt: %v", err)
							}
							if !bytes.Equal(got, pt) {
								t.Fatalf("plaintext differs: got %d bytes, want %d", len(got), len(pt))
							}
							hlen := len(mustMarshal(t, h))
							if want := messageSize(suite, frame, size); want != len(msg)-hlen {
								t.Errorf("body and footer are %d bytes, want %d", len(msg)-hlen, want)
							}
							if h.Suite != suite || h.FrameLength != uint32(frame) || len(h.EncryptedDataKeys) != 2 {
								t.Errorf("header: suite %v frame %d, %d EDKs", h.Suite, h.FrameLength, len(h.EncryptedDataKeys))
							}
							wantEC := maps.Clone(ec)
							if wantEC == nil {
								wantEC = map[string]string{}
							}
							if suite.Signed() {
								if len(h.EncryptionContext[PublicKeyContextKey]) != 68 {
									t.Errorf("public key %q", h.EncryptionContext[PublicKeyContextKey])
								}
								delete(h.EncryptionContext, PublicKeyContextKey)
							}
							if !maps.Equal(h.EncryptionContext, wantEC) {
								t.Errorf("encryption context %v, want %v", h.EncryptionContext, wantEC)
							}
						})
					}
				}
			}
		}
	}
}

func footerSize(s Suite) int {
	if info, _ := s.info(); info.sig != nil {
		return 2 + info.sig.sigLen
	}
	return 0
}

// messageSize is the size of the body and footer of a plaintext of size
// bytes: full frames, then a final frame of the rest, possibly empty.
func messageSize(s Suite, frame, size int) int {
	return size/frame*regularFrameOverhead + size + finalFrameOverhead + footerSize(s)
}

func mustMarshal(t testing.TB, h *Header) []byte {
	t.Helper()
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	return b
}

// TestStreaming writes and reads in odd-sized pieces.
func TestStreaming(t *testing.T) {
	kr := newMemKeyring(1)
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	for _, suite := range suites {
		for _, conc := range []int{1, 2, 5} {
			pt := testPlaintext(300_000)
			var buf bytes.Buffer
			w, err := NewEncrypter(context.Background(), &buf, kr, EncryptOptions{Suite: suite, FrameLength: 1000, Concurrency: conc})
			if err != nil {
				t.Fatal(err)
			}
			for p := pt; len(p) > 0; {
				n := min(len(p), rng.IntN(9000))
				if k, err := w.Write(p[:n]); err != nil || k != n {
					t.Fatalf("Write = %d, %v", k, err)
				}
				p = p[n:]
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Error("Write after Close succeeded")
			}
			r, _, err := NewDecrypter(context.Background(), iotest.HalfReader(bytes.NewReader(buf.Bytes())), kr, DecryptOptions{Concurrency: conc})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(iotest.OneByteReader(r))
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%v conc=%d: %d bytes, %v", suite, conc, len(got), err)
			}
		}
	}
}

func TestEncryptOptions(t *testing.T) {
	kr := newMemKeyring(1)
	for _, tc := range []struct {
		name string
		opts EncryptOptions
	}{
		{"reserved context key", EncryptOptions{EncryptionContext: map[string]string{"aws-crypto-public-key": "x"}}},
		{"reserved prefix", EncryptOptions{EncryptionContext: map[string]string{"aws-crypto-other": "x"}}},
		{"non-committing suite", EncryptOptions{Suite: SuiteHKDFSHA256}},
		{"unknown suite", EncryptOptions{Suite: 0x0015}},
		{"suite without key derivation", EncryptOptions{Suite: SuiteAES128NoKDF}},
		{"P-256 signed suite", EncryptOptions{Suite: SuiteAES128HKDFSHA256ECDSAP256}},
		{"negative frame", EncryptOptions{FrameLength: -1}},
		{"huge frame", EncryptOptions{FrameLength: MaxFrameLength + 1}},
		{"context too large", EncryptOptions{EncryptionContext: map[string]string{"k": string(make([]byte, 65535))}}},
		{"context not UTF-8", EncryptOptions{EncryptionContext: map[string]string{"k": "\xff"}}},
	} {
		kr.calls = 0
		if _, err := NewEncrypter(context.Background(), io.Discard, kr, tc.opts); err == nil {
			t.Errorf("%s: NewEncrypter succeeded", tc.name)
		}
		if kr.calls != 0 {
			t.Errorf("%s: the keyring was called", tc.name)
		}
	}
	if _, err := NewEncrypter(context.Background(), io.Discard, failingKeyring{}, EncryptOptions{}); !errors.Is(err, errKeyringDown) {
		t.Errorf("failing keyring: %v", err)
	}
	// The caller's context map is not modified.
	ec := map[string]string{"a": "b"}
	encrypt(t, kr, EncryptOptions{Suite: SuiteCommitKeyECDSAP384, EncryptionContext: ec}, nil)
	if len(ec) != 1 {
		t.Errorf("caller's encryption context modified: %v", ec)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n < len(p) {
		return 0, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestEncrypterWriteError(t *testing.T) {
	kr := newMemKeyring(1)
	for _, conc := range []int{1, 4} {
		w, err := NewEncrypter(context.Background(), &failWriter{n: 2000}, kr, EncryptOptions{Concurrency: conc})
		if err != nil {
			t.Fatal(err)
		}
		var werr error
		for range 100 {
			if _, werr = w.Write(make([]byte, 10000)); werr != nil {
				break
			}
		}
		if werr == nil {
			werr = w.Close()
		}
		if werr == nil || werr.Error() != "disk full" {
			t.Fatalf("conc=%d: got %v, want disk full", conc, werr)
		}
		if _, err := w.Write([]byte("x")); err != werr {
			t.Errorf("Write after error: %v", err)
		}
		if err := w.Close(); err != werr {
			t.Errorf("Close after error: %v", err)
		}
	}
}

func TestDecryptOptions(t *testing.T) {
	kr := newMemKeyring(3)
	msg := encrypt(t, kr, EncryptOptions{FrameLength: 1 << 20}, []byte("hello"))

	if _, _, err := decrypt(kr, DecryptOptions{MaxEncryptedDataKeys: 2}, msg); !errors.Is(err, ErrTooManyEncryptedDataKeys) {
		t.Errorf("MaxEncryptedDataKeys 2: %v", err)
	}
	if _, _, err := decrypt(kr, DecryptOptions{MaxEncryptedDataKeys: 3}, msg); err != nil {
		t.Errorf("MaxEncryptedDataKeys 3: %v", err)
	}
	if _, _, err := decrypt(kr, DecryptOptions{MaxFrameLength: 1<<20 - 1}, msg); err == nil {
		t.Error("frame longer than MaxFrameLength accepted")
	}
	if _, _, err := decrypt(failingKeyring{}, DecryptOptions{}, msg); !errors.Is(err, errKeyringDown) {
		t.Errorf("failing keyring: %v", err)
	}
	if _, _, err := decrypt(newMemKeyring(1), DecryptOptions{}, msg); !errors.Is(err, ErrNoDataKey) {
		t.Errorf("foreign keyring: %v", err)
	}
}

// TestStickyError checks that after a failure the reader returns the same
// error and no data, however often it is called.
func TestStickyError(t *testing.T) {
	kr := newMemKeyring(1)
	msg := encrypt(t, kr, EncryptOptions{FrameLength: 100, Concurrency: 1}, testPlaintext(1000))
	hdr := len(msg) - messageSize(SuiteCommitKey, 100, 1000)
	msg[hdr+regularFrameOverhead+100+20] ^= 1 // inside frame 2
	r, _, err := NewDecrypter(context.Background(), bytes.NewReader(msg), kr, DecryptOptions{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, ErrAuthentication) {
		t.Fatalf("err = %v", err)
	}
	// Frame 1 may or may not be returned, depending on how frames were
	// batched, but nothing of frame 2 or later.
	if len(got) > 100 || !bytes.Equal(got, testPlaintext(len(got))) {
		t.Errorf("returned %d bytes before the bad frame", len(got))
	}
	for range 3 {
		if n, err2 := r.Read(make([]byte, 10)); n != 0 || err2 != err {
			t.Fatalf("Read after error = %d, %v", n, err2)
		}
	}
}
