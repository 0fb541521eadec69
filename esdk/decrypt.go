package esdk

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"runtime"
)

// DecryptOptions configures NewDecrypter. The zero value is usable: it
// decrypts committing suites only, with no limit on encrypted data keys.
type DecryptOptions struct {
	// AllowNonCommitting accepts messages in the version 1 suites
	// SuiteHKDFSHA256 and SuiteHKDFSHA384ECDSAP384, which do not commit to
	// their data key: such a message may decrypt to different plaintexts
	// under different data keys. Off, they fail with ErrNonCommitting.
	AllowNonCommitting bool
	// MaxEncryptedDataKeys, if positive, fails messages with more
	// encrypted data keys, before any is decrypted.
	MaxEncryptedDataKeys int
	// MaxFrameLength is the largest frame length accepted, since a whole
	// frame is buffered before it can be authenticated; MaxFrameLength if
	// zero, and at most 2^32 - 1.
	MaxFrameLength int
	// Concurrency is how many runs of frames are opened at once;
	// runtime.GOMAXPROCS(0) if zero.
	Concurrency int
}

type decrypter struct {
	r        *bufio.Reader
	fc       frameCipher
	frameLen int
	perBatch int
	conc     int
	ver      *verifier
	sigHash  hash.Hash // ver.hash, or nil

	nextSeq  uint32
	sawFinal bool // the final frame has been read
	inflight []*openBatch
	free     [][]byte

	out     []byte // authenticated plaintext not yet returned
	lastOut []byte // the buffer out points into, recycled once drained
	done    bool   // the message is fully verified; io.EOF after out
	err     error  // sticky
}

// NewDecrypter reads and authenticates the header of the message in r and
// returns a reader of its plaintext, and the header.
//
// ctx is used only for the keyring's DecryptDataKey call.
//
// The reader returns a frame's plaintext only after the frame's tag has
// verified, and returns io.EOF only once the whole message has been read
// and verified, including, for signed suites, the signature, and that
// nothing follows the message in r. For a signed suite the plaintext of
// the final frame, and of the last regular frame if the final frame is
// empty, is held back until the signature verifies, so a reader never sees
// the end of the plaintext of a message whose signature is bad. Plaintext
// returned earlier is authenticated but not yet known to be signed: a
// caller that must act only on signed data acts after io.EOF.
//
// Every failure after the header is read is ErrAuthentication, or an
// error from r; the reader then returns it on every call, and no more data.
// Memory use is bounded by about 2 × Concurrency runs of 64 KiB, or of one
// frame if frames are larger.
func NewDecrypter(ctx context.Context, r io.Reader, kr Keyring, opts DecryptOptions) (io.Reader, *Header, error) {
	maxFrame := opts.MaxFrameLength
	if maxFrame <= 0 {
		maxFrame = MaxFrameLength
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = runtime.GOMAXPROCS(0)
	}
	br := bufio.NewReaderSize(r, batchTarget)
	h, raw, bodyLen, err := readHeader(br, opts.MaxEncryptedDataKeys)
	if err != nil {
		return nil, nil, err
	}
	if !h.Suite.Committing() && !opts.AllowNonCommitting {
		return nil, nil, fmt.Errorf("%w (%v); set AllowNonCommitting to decrypt it", ErrNonCommitting, h.Suite)
	}
	if uint64(h.FrameLength) > uint64(maxFrame) {
		return nil, nil, fmt.Errorf("esdk: frame length %d exceeds the limit of %d", h.FrameLength, maxFrame)
	}
	pub, hasPub := h.EncryptionContext[PublicKeyContextKey]
	var ver *verifier
	switch {
	case h.Suite.Signed() && !hasPub:
		return nil, nil, malformed("signed suite without %q in the encryption context", PublicKeyContextKey)
	case !h.Suite.Signed() && hasPub:
		return nil, nil, malformed("unsigned suite with %q in the encryption context", PublicKeyContextKey)
	case hasPub:
		var ok bool
		if ver, ok = newVerifier(pub); !ok {
			return nil, nil, malformed("invalid %q", PublicKeyContextKey)
		}
	}

	dataKey, err := kr.DecryptDataKey(ctx, h.Suite, h.EncryptedDataKeys, maps.Clone(h.EncryptionContext))
	if err != nil {
		return nil, nil, fmt.Errorf("esdk: keyring: %w", err)
	}
	aead, commitKey, err := h.Suite.deriveKeys(dataKey, h.MessageID)
	if err != nil {
		return nil, nil, err
	}
	if h.Suite.Committing() && !commitmentMatches(commitKey, h.CommitKey) {
		return nil, nil, ErrAuthentication
	}
	iv := h.IV
	if iv == nil {
		iv = make([]byte, ivSize)
	}
	if _, err := aead.Open(nil, iv, h.AuthTag, raw[:bodyLen]); err != nil {
		return nil, nil, ErrAuthentication
	}

	d := &decrypter{
		r:        br,
		fc:       frameCipher{aead, h.MessageID},
		frameLen: int(h.FrameLength),
		perBatch: max(1, batchTarget/int(h.FrameLength)),
		conc:     conc,
		ver:      ver,
		nextSeq:  1,
	}
	if ver != nil {
		d.sigHash = ver.hash
		d.sigHash.Write(raw)
	}
	return d, h, nil
}

func (d *decrypter) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if d.done {
			return 0, io.EOF
		}
		d.err = d.advance()
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// advance reads runs of frames until Concurrency of them are in flight,
// then waits for the oldest and makes its plaintext the next to return.
func (d *decrypter) advance() error {
	if d.lastOut != nil {
		d.recycle(d.lastOut)
		d.lastOut = nil
	}
	for !d.sawFinal && len(d.inflight) < d.conc {
		b, err := d.readBatch()
		if err != nil {
			return err
		}
		if d.conc > 1 {
			b.done = make(chan struct{})
			go b.run()
		} else {
			b.run()
		}
		d.inflight = append(d.inflight, b)
	}
	b := d.inflight[0]
	d.inflight = d.inflight[1:]
	if b.done != nil {
		<-b.done
	}
	d.recycle(b.sealed)
	if !b.ok {
		return ErrAuthentication
	}
	if b.final {
		if err := d.finish(); err != nil {
			return err
		}
		d.done = true
	}
	d.out, d.lastOut = b.out, b.out
	return nil
}

// finish reads what follows the final frame: the footer of a signed suite,
// then nothing.
func (d *decrypter) finish() error {
	if d.ver != nil {
		var n [2]byte
		if err := d.readFull(n[:]); err != nil {
			return err
		}
		sig := make([]byte, binary.BigEndian.Uint16(n[:]))
		if err := d.readFull(sig); err != nil {
			return err
		}
		if !d.ver.verify(sig) {
			return ErrAuthentication
		}
	}
	switch _, err := d.r.Peek(1); {
	case err == nil:
		return ErrAuthentication // bytes after the end of the message
	case errors.Is(err, io.EOF):
		return nil
	default:
		return fmt.Errorf("esdk: reading message: %w", err)
	}
}

// readFull reads exactly len(p) bytes; the message ending first is an
// authentication failure, since it means the message was truncated.
func (d *decrypter) readFull(p []byte) error {
	if _, err := io.ReadFull(d.r, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ErrAuthentication
		}
		return fmt.Errorf("esdk: reading message: %w", err)
	}
	return nil
}

// readBatch reads the next run of frames: perBatch frames, or fewer if the
// final frame comes first. An empty final frame right after a full run
// joins it, so that a signed message's last regular frame is held back with
// it until the signature verifies.
func (d *decrypter) readBatch() (*openBatch, error) {
	b := &openBatch{fc: &d.fc, sealed: d.buffer(d.perBatch * (d.frameLen + tagSize))}
	for {
		f, err := d.readFrame(b)
		if err != nil {
			d.recycle(b.sealed)
			return nil, err
		}
		b.frames = append(b.frames, f)
		if f.final {
			b.final, d.sawFinal = true, true
			break
		}
		if len(b.frames) >= d.perBatch && !d.emptyFinalFrameNext() {
			break
		}
	}
	size := 0
	for _, f := range b.frames {
		size += len(f.sealed) - tagSize
	}
	b.out = d.buffer(size)
	return b, nil
}

// emptyFinalFrameNext reports whether the next frame is an empty final
// frame, without reading it.
func (d *decrypter) emptyFinalFrameNext() bool {
	next, err := d.r.Peek(finalFrameOverhead - tagSize)
	return err == nil && binary.BigEndian.Uint32(next) == finalFrameMarker &&
		binary.BigEndian.Uint32(next[len(next)-4:]) == 0
}

// readFrame reads one frame into b.sealed and checks its place in the
// sequence. Every byte read goes into the signature hash.
func (d *decrypter) readFrame(b *openBatch) (rawFrame, error) {
	var hdr [4 + 4 + ivSize + 4]byte
	if err := d.readFull(hdr[:4]); err != nil {
		return rawFrame{}, err
	}
	f := rawFrame{seq: binary.BigEndian.Uint32(hdr[:4])}
	n, contentLen := 4, d.frameLen
	if f.seq == finalFrameMarker {
		f.final = true
		if err := d.readFull(hdr[4 : 8+ivSize+4]); err != nil {
			return rawFrame{}, err
		}
		f.seq = binary.BigEndian.Uint32(hdr[4:8])
		copy(f.iv[:], hdr[8:8+ivSize])
		contentLen = int(binary.BigEndian.Uint32(hdr[8+ivSize:]))
		n = 8 + ivSize + 4
		if uint64(contentLen) > uint64(d.frameLen) {
			return rawFrame{}, ErrAuthentication
		}
	} else {
		if err := d.readFull(hdr[4 : 4+ivSize]); err != nil {
			return rawFrame{}, err
		}
		copy(f.iv[:], hdr[4:4+ivSize])
		n = 4 + ivSize
	}
	if f.seq != d.nextSeq {
		return rawFrame{}, ErrAuthentication
	}
	d.nextSeq++

	start := len(b.sealed)
	b.sealed = growLen(b.sealed, contentLen+tagSize)
	if err := d.readFull(b.sealed[start:]); err != nil {
		return rawFrame{}, err
	}
	f.sealed = b.sealed[start:]
	if d.sigHash != nil {
		d.sigHash.Write(hdr[:n])
		d.sigHash.Write(f.sealed)
	}
	return f, nil
}

// growLen extends b by n bytes. A reallocation leaves earlier frames'
// slices pointing into the old array, which stays valid: they are only
// read.
func growLen(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// openBatch is a run of frames opened together.
type openBatch struct {
	fc     *frameCipher
	frames []rawFrame
	final  bool
	sealed []byte
	out    []byte
	ok     bool
	done   chan struct{}
}

func (b *openBatch) run() {
	var aad []byte
	b.ok = true
	for i := range b.frames {
		var ok bool
		if b.out, aad, ok = b.fc.open(b.out, &b.frames[i], aad); !ok {
			b.ok = false
			break
		}
	}
	if b.done != nil {
		close(b.done)
	}
}

func (d *decrypter) buffer(size int) []byte {
	for i, buf := range d.free {
		if cap(buf) >= size {
			d.free[i] = d.free[len(d.free)-1]
			d.free = d.free[:len(d.free)-1]
			return buf[:0]
		}
	}
	return make([]byte, 0, size)
}

func (d *decrypter) recycle(buf []byte) {
	if len(d.free) < 2*d.conc+2 {
		d.free = append(d.free, buf[:0])
	}
}
