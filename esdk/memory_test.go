package esdk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"unsafe"
)

// TestConstantMemory streams a message much larger than any buffer the
// package keeps through the encrypter and, at the same time, the decrypter,
// and checks that the heap never grows with the message: memory is bounded
// by the window of runs in flight, so 1 GiB here (256 MiB under the race
// detector) stands for 10 GB.
func TestConstantMemory(t *testing.T) {
	size := 1 << 30
	if raceEnabled {
		size = 256 << 20
	}
	const limit = 48 << 20 // heap in use, whatever the message size
	for _, suite := range suites {
		t.Run(fmt.Sprint(suite), func(t *testing.T) {
			kr := newMemKeyring(1)
			src := &patternReader{left: size}
			pr, pw := io.Pipe()
			go func() {
				w, err := NewEncrypter(context.Background(), pw, kr, EncryptOptions{Suite: suite})
				if err == nil {
					_, err = io.Copy(w, src)
				}
				if err == nil {
					err = w.Close()
				}
				pw.CloseWithError(err)
			}()
			r, _, err := NewDecrypter(context.Background(), pr, kr, DecryptOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sink := &checkingWriter{}
			n, err := io.Copy(sink, r)
			if err != nil || n != int64(size) {
				t.Fatalf("decrypted %d bytes, %v", n, err)
			}
			if sink.bad >= 0 {
				t.Fatalf("the plaintext differs at byte %d", sink.bad)
			}
			if sink.peak > limit {
				t.Errorf("heap in use reached %d MiB for a %d MiB message", sink.peak>>20, size>>20)
			}
			t.Logf("peak heap in use %d MiB", sink.peak>>20)
		})
	}
}

// pattern is the plaintext, repeated: its length is no multiple of any
// frame or buffer size, so a frame out of place would not match.
var pattern = func() []byte {
	p := make([]byte, 1<<20+13)
	for i := range p {
		p[i] = byte(i*7 + i>>9)
	}
	return p
}()

// patternReader yields left bytes of the repeated pattern without holding
// them.
type patternReader struct{ off, left int }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(len(p), r.left)]
	n := 0
	for n < len(p) {
		n += copy(p[n:], pattern[(r.off+n)%len(pattern):])
	}
	r.off += n
	r.left -= n
	return n, nil
}

// checkingWriter compares what it is given with the pattern, recording
// the first byte that differs in bad, and samples the heap every 64 MiB.
type checkingWriter struct {
	off  int
	bad  int
	peak uint64
}

func (w *checkingWriter) Write(p []byte) (int, error) {
	if w.off == 0 {
		w.bad = -1
	}
	for i := 0; i < len(p) && w.bad < 0; {
		at := (w.off + i) % len(pattern)
		n := min(len(p)-i, len(pattern)-at)
		if !bytes.Equal(p[i:i+n], pattern[at:at+n]) {
			w.bad = w.off + i
		}
		i += n
	}
	if (w.off+len(p))>>26 != w.off>>26 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.peak = max(w.peak, ms.HeapInuse)
	}
	w.off += len(p)
	return len(p), nil
}

// TestSmallFramesMemory checks that the runs a decrypter reads ahead are
// bounded by what they hold, not by their plaintext: a frame of one byte
// is 33 on the wire and a record in memory, and a message of such frames,
// forged by anyone who can make a header the victim can decrypt, must not
// make the decrypter hold hundreds of MiB before the first tag fails.
func TestSmallFramesMemory(t *testing.T) {
	const (
		conc   = 16
		frames = 1 << 20
		limit  = readAheadBytes + 8<<20 // live heap growth while reading
	)
	if size := unsafe.Sizeof(rawFrame{}); size > frameRecordSize {
		t.Fatalf("a rawFrame is %d bytes, more than frameRecordSize", size)
	}
	kr := newMemKeyring(1)
	empty := encrypt(t, kr, EncryptOptions{FrameLength: 1, Concurrency: 1}, nil)
	header := empty[:len(empty)-finalFrameOverhead]

	t.Run("forged", func(t *testing.T) {
		// Regular frames in sequence, with the right IVs, whose tags are
		// garbage, and no final frame.
		src := &heapSampler{r: io.MultiReader(bytes.NewReader(header), &forgedFrames{left: frames})}
		src.start()
		r, _, err := NewDecrypter(context.Background(), src, kr, DecryptOptions{Concurrency: conc})
		if err != nil {
			t.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); n != 0 || !errors.Is(err, ErrAuthentication) {
			t.Fatalf("decrypted %d bytes, %v", n, err)
		}
		t.Logf("read %d KiB, live heap grew by at most %d KiB", src.n>>10, src.peak>>10)
		if src.peak > limit {
			t.Errorf("live heap grew by %d MiB reading frames of 1 byte, want at most %d MiB", src.peak>>20, limit>>20)
		}
	})

	t.Run("genuine", func(t *testing.T) {
		size := frames
		if raceEnabled {
			size = frames / 4
		}
		pt := testPlaintext(size)
		msg := encrypt(t, kr, EncryptOptions{FrameLength: 1, Concurrency: conc}, pt)
		src := &heapSampler{r: bytes.NewReader(msg)}
		src.start()
		r, _, err := NewDecrypter(context.Background(), src, kr, DecryptOptions{Concurrency: conc})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		out.Grow(size)
		src.start() // after the buffer it decrypts into
		if _, err := io.Copy(&out, r); err != nil || !bytes.Equal(out.Bytes(), pt) {
			t.Fatalf("decrypted %d bytes (%v), want %d", out.Len(), err, size)
		}
		t.Logf("live heap grew by at most %d KiB", src.peak>>10)
		if src.peak > limit {
			t.Errorf("live heap grew by %d MiB decrypting frames of 1 byte, want at most %d MiB", src.peak>>20, limit>>20)
		}
	})
}

// forgedFrames yields left regular frames of one byte, numbered from 1,
// with the IVs their numbers imply and tags of zeros.
type forgedFrames struct {
	seq, left int
	pending   []byte
}

func (f *forgedFrames) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(f.pending) == 0 {
			if f.left == 0 {
				break
			}
			f.left--
			f.seq++
			frame := make([]byte, regularFrameOverhead+1)
			binary.BigEndian.PutUint32(frame, uint32(f.seq))
			iv := frameIV(uint32(f.seq))
			copy(frame[4:], iv[:])
			f.pending = frame
		}
		k := copy(p[n:], f.pending)
		f.pending = f.pending[k:]
		n += k
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// heapSampler reads from r and, every 256 KiB read, collects garbage and
// records how far the live heap has grown since start.
type heapSampler struct {
	r       io.Reader
	n, next int
	base    uint64
	peak    uint64
}

func (s *heapSampler) start() {
	s.base = liveHeap()
	s.peak = 0
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func (s *heapSampler) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += n
	if s.n >= s.next {
		s.next = s.n + 256<<10
		if h := liveHeap(); h > s.base {
			s.peak = max(s.peak, h-s.base)
		}
	}
	return n, err
}

// TestLargeFramesEncryptMemory checks that the runs an encrypter holds in
// flight are bounded by their size, not only by Concurrency: a run holds
// at least one whole frame, and Concurrency runs of 8 MiB frames (of
// 64 MiB frames, on a machine of many cores) would make memory grow with
// the number of workers.
func TestLargeFramesEncryptMemory(t *testing.T) {
	const (
		conc     = 16
		frameLen = 8 << 20
		size     = 20 * frameLen
		// the runs in flight, the run being filled, and live heap growth
		limit = sealAheadBytes + 2*frameLen + 8<<20
	)
	kr := newMemKeyring(1)
	sink := &heapSink{}
	w, err := NewEncrypter(context.Background(), sink, kr, EncryptOptions{FrameLength: frameLen, Concurrency: conc})
	if err != nil {
		t.Fatal(err)
	}
	sink.base = liveHeap()
	// Writes of 1 MiB, as kms encrypt makes them (2 MiB), so that runs
	// are filled from copies rather than sealed in the caller's slice.
	if _, err := io.CopyBuffer(w, &patternReader{left: size}, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("live heap grew by at most %d MiB", sink.peak>>20)
	if sink.peak > limit {
		t.Errorf("live heap grew by %d MiB encrypting %d MiB frames with Concurrency %d, want at most %d MiB", sink.peak>>20, frameLen>>20, conc, limit>>20)
	}
}

// heapSink discards what is written to it and records, at each write,
// how far the live heap has grown since base.
type heapSink struct{ base, peak uint64 }

func (s *heapSink) Write(p []byte) (int, error) {
	if h := liveHeap(); h > s.base {
		s.peak = max(s.peak, h-s.base)
	}
	return len(p), nil
}
