package esdk

import (
	"crypto/cipher"
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
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

// sealAt writes the frame seq holding n bytes of plaintext at the start of
// dst, which has room for it, and returns the frame's length. The
// plaintext is src, or if src is nil already sits in dst where the
// ciphertext goes (after the sequence number and IV, and for the final
// frame the length), and is sealed in place.
func (fc *frameCipher) sealAt(dst []byte, final bool, seq uint32, n int, src []byte, aadBuf []byte) (int, []byte) {
	iv := frameIV(seq)
	h := 0
	if final {
		binary.BigEndian.PutUint32(dst, finalFrameMarker)
		h = 4
	}
	binary.BigEndian.PutUint32(dst[h:], seq)
	h += 4
	h += copy(dst[h:], iv[:])
	if final {
		binary.BigEndian.PutUint32(dst[h:], uint32(n))
		h += 4
	}
	body := dst[h : h+n]
	if src == nil {
		src = body
	}
	aadBuf = fc.aad(aadBuf, final, seq, n)
	fc.aead.Seal(body[:0], iv[:], src[:n], aadBuf)
	return h + n + tagSize, aadBuf
}

// rawFrame is one frame as read from a message, not yet authenticated.
type rawFrame struct {
	final bool
	seq   uint32
	iv    [ivSize]byte
	// sealed is the ciphertext followed by the tag. Opening the frame
	// replaces its ciphertext with the plaintext.
	sealed []byte
}

// openInPlace authenticates f and decrypts it over its ciphertext,
// returning the plaintext. It fails if the frame's IV is not the one its
// sequence number implies.
func (fc *frameCipher) openInPlace(f *rawFrame, aadBuf []byte) ([]byte, []byte, bool) {
	iv := frameIV(f.seq)
	if iv != f.iv {
		return nil, aadBuf, false
	}
	aadBuf = fc.aad(aadBuf, f.final, f.seq, len(f.sealed)-tagSize)
	out, err := fc.aead.Open(f.sealed[:0], iv[:], f.sealed, aadBuf)
	if err != nil {
		return nil, aadBuf, false
	}
	return out, aadBuf, true
}

// task is a unit of work of the pipeline: handed to a worker, but run by
// whoever claims it first, so that a caller waiting for a task that no
// worker has picked up yet runs it itself instead of idling.
type task struct {
	claimed atomic.Bool
	run     func()
	done    chan struct{}
}

// wait returns once t has run: it runs it if nobody has claimed it, or
// else waits for the worker that has.
func (t *task) wait() {
	if t.claimed.CompareAndSwap(false, true) {
		t.run()
		if t.done == nil {
			t.done = closedChan
		} else {
			close(t.done)
		}
		return
	}
	<-t.done
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// workers is a message's pool of goroutines that run tasks. They exit when
// the pool is stopped, or when what owns it is garbage collected.
type workers struct {
	n       int
	jobs    *jobQueue
	stopped bool
}

type jobQueue struct {
	ch   chan *task
	once sync.Once
}

func (q *jobQueue) close() { q.once.Do(func() { close(q.ch) }) }

// start hands t to a worker, or leaves it to whoever waits for it. It
// starts the workers the first time, to stop when owner is collected
// unless stop comes first.
func start[T any](w *workers, owner *T, t *task) {
	if w.stopped {
		return
	}
	if w.jobs == nil {
		w.jobs = &jobQueue{ch: make(chan *task, 2*w.n+2)}
		for range w.n {
			go work(w.jobs.ch)
		}
		runtime.AddCleanup(owner, (*jobQueue).close, w.jobs)
	}
	t.done = make(chan struct{})
	select {
	case w.jobs.ch <- t:
	default: // the workers are behind
	}
}

// stop lets the workers exit once they have run what they were handed.
func (w *workers) stop() {
	w.stopped = true
	if w.jobs != nil {
		w.jobs.close()
	}
}

func work(jobs chan *task) {
	for t := range jobs {
		if t.claimed.CompareAndSwap(false, true) {
			t.run()
			close(t.done)
		}
	}
}
