package esdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"testing"
)

// TestBufferRoundTrip decrypts messages of every suite, of lengths around
// the spool's chunk and beyond what it keeps in memory, with Buffer: the
// plaintext comes back whole, through Read and through io.Copy, and the
// spool's directory is left empty.
func TestBufferRoundTrip(t *testing.T) {
	kr := newRawAESKeyring()
	dir := t.TempDir()
	opts := DecryptOptions{AllowNonCommitting: true, Buffer: true, TempDir: dir}
	for _, suite := range allSuites {
		for _, size := range []int{0, 1, 4095, 4096, spoolChunk - 1, spoolChunk, spoolChunk + 1, spoolMemory + 3*spoolChunk + 5} {
			pt := testPlaintext(size)
			msg := encryptSuite(t, kr, suite, 4096, 2, map[string]string{"purpose": "buffer"}, pt)
			got, err := decryptBoth(kr, opts, msg)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%v, %d bytes: %d bytes back, %v", suite, size, len(got), err)
			}
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %d files in the spool directory", len(ents))
	}
}

// framedParts splits a framed message of a plaintext that is a whole
// number of frames (so that its final frame is empty) into the header and
// regular frames, the empty final frame, and the footer.
func framedParts(t *testing.T, kr Keyring, msg []byte) (frames, final, footer []byte) {
	t.Helper()
	_, h, err := decrypt(kr, allowAll, msg)
	if err != nil {
		t.Fatal(err)
	}
	hl := len(mustMarshal(t, h))
	frameLen := int(h.FrameLength)
	body := hl
	for body+4 <= len(msg) && !bytes.Equal(msg[body:body+4], []byte{0xff, 0xff, 0xff, 0xff}) {
		body += regularFrameOverhead + frameLen
	}
	end := body + finalFrameOverhead
	return msg[:body], msg[body:end], msg[end:]
}

// TestBufferReleasesNothingUnverified decrypts broken messages of several
// MiB, signed and not, with and without Buffer. Streamed, a framed
// message releases its authenticated frames as they come, so that a
// message whose signature is bad has given all but its last run of
// frames when the failure shows, and one cut just before its (empty)
// final frame all of its plaintext; with Buffer the reader returns not
// one byte, only ErrAuthentication.
func TestBufferReleasesNothingUnverified(t *testing.T) {
	kr := newRawAESKeyring()
	const frameLen = 4096
	pt := testPlaintext(2*spoolMemory + 256*frameLen) // whole frames: the final one is empty
	for _, suite := range []Suite{SuiteCommitKeyECDSAP384, SuiteCommitKey, SuiteHKDFSHA384ECDSAP384, SuiteHKDFSHA256} {
		msg := encryptSuite(t, kr, suite, frameLen, 2, nil, pt)
		frames, final, footer := framedParts(t, kr, msg)
		flip := func(at int) []byte { m := bytes.Clone(msg); m[at] ^= 0x01; return m }
		cases := map[string][]byte{
			"truncated before the final frame": frames,
			"last regular frame's tag":         flip(len(frames) - 1),
			"appended byte":                    append(bytes.Clone(msg), 0),
		}
		if suite.Signed() {
			cases["signature"] = flip(len(msg) - 3)
			cases["footer missing"] = msg[:len(frames)+len(final)]
			cases["footer cut"] = msg[:len(msg)-len(footer)/2]
		}
		for name, bad := range cases {
			t.Run(fmt.Sprintf("%v/%s", suite, name), func(t *testing.T) {
				for _, conc := range []int{1, 4} {
					opts := DecryptOptions{AllowNonCommitting: true, Concurrency: conc, TempDir: t.TempDir()}
					streamed, err := decryptedBefore(kr, opts, bad)
					if !errors.Is(err, ErrAuthentication) {
						t.Fatalf("streamed, Concurrency %d: %v", conc, err)
					}
					// One run in flight: every run before the broken
					// one is released. A message cut before its empty
					// final frame has given all of its plaintext.
					truncated := len(bad) == len(frames)
					if conc == 1 && (streamed == 0 || streamed > len(pt) || (!truncated && streamed == len(pt))) {
						t.Fatalf("streamed, Concurrency 1: %d of %d bytes released before the failure", streamed, len(pt))
					}
					opts.Buffer = true
					buffered, err := decryptedBefore(kr, opts, bad)
					if buffered != 0 || !errors.Is(err, ErrAuthentication) {
						t.Fatalf("Buffer, Concurrency %d: %d bytes released, %v", conc, buffered, err)
					}
				}
			})
		}
	}
}

// decryptedBefore returns how many bytes of plaintext a decrypter of msg
// returned before its error, through Read and through io.Copy alike.
func decryptedBefore(kr Keyring, opts DecryptOptions, msg []byte) (int, error) {
	r, _, err := NewDecrypter(context.Background(), bytes.NewReader(msg), kr, opts)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, r)
	r, _, err2 := NewDecrypter(context.Background(), bytes.NewReader(msg), kr, opts)
	if err2 != nil {
		return 0, err2
	}
	got, err2 := io.ReadAll(r)
	if int64(len(got)) != n || (err == nil) != (err2 == nil) {
		return 0, fmt.Errorf("io.Copy gave %d bytes and %v, Read %d bytes and %v", n, err, len(got), err2)
	}
	return int(n), err
}

// TestBufferConstantMemory decrypts with Buffer a signed message much
// larger than the memory the decrypter may use, written and read as a
// stream: nothing comes out before the whole message has been read, the
// heap stays small while the plaintext is spooled and while it is
// returned, and the plaintext comes back whole.
func TestBufferConstantMemory(t *testing.T) {
	size := 256 << 20
	if raceEnabled {
		size = 32 << 20
	}
	const limit = 48 << 20 // as TestConstantMemory: the spool adds 1 MiB
	kr := newMemKeyring(1)
	pr, pw := io.Pipe()
	go func() {
		w, err := NewEncrypter(context.Background(), pw, kr, EncryptOptions{Suite: SuiteCommitKeyECDSAP384})
		if err == nil {
			_, err = io.Copy(w, &patternReader{left: size})
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
	}()
	src := &heapInUseReader{r: pr}
	r, _, err := NewDecrypter(context.Background(), src, kr, DecryptOptions{Buffer: true, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sink := &checkingWriter{}
	first := &firstWrite{w: sink, src: src}
	n, err := io.Copy(first, r)
	if err != nil || n != int64(size) || sink.bad >= 0 {
		t.Fatalf("decrypted %d bytes, %v, first wrong byte %d", n, err, sink.bad)
	}
	if !first.afterEOF {
		t.Fatalf("plaintext came out after %d of the message's bytes, before its end", first.read)
	}
	if peak := max(sink.peak, src.peak); peak > limit {
		t.Errorf("heap in use reached %d MiB for a %d MiB message", peak>>20, size>>20)
	}
	t.Logf("peak heap in use %d MiB (spooling %d, returning %d)", max(sink.peak, src.peak)>>20, src.peak>>20, sink.peak>>20)
}

// heapInUseReader reads from r, notes when r has returned io.EOF, and
// samples the heap in use every 64 MiB read.
type heapInUseReader struct {
	r    io.Reader
	n    int
	eof  bool
	peak uint64
}

func (s *heapInUseReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if s.n += n; s.n>>26 != (s.n-n)>>26 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s.peak = max(s.peak, ms.HeapInuse)
	}
	if err == io.EOF {
		s.eof = true
	}
	return n, err
}

// firstWrite passes writes on to w, noting at the first whether src had
// been read to its end.
type firstWrite struct {
	w        io.Writer
	src      *heapInUseReader
	seen     bool
	afterEOF bool
	read     int
}

func (f *firstWrite) Write(p []byte) (int, error) {
	if !f.seen {
		f.seen, f.afterEOF, f.read = true, f.src.eof, f.src.n
	}
	return f.w.Write(p)
}
