package esdk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"
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
