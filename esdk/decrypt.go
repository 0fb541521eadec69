package esdk

import (
	"bufio"
	"bytes"
	"context"
	"crypto/cipher"
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
	// AllowNonCommitting accepts messages in the version 1 suites (every
	// suite of the specification but SuiteCommitKey and
	// SuiteCommitKeyECDSAP384), which do not commit to their data key:
	// such a message may decrypt to different plaintexts under different
	// data keys. Off, they fail with ErrNonCommitting.
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
	// Buffer makes the reader return no plaintext at all until the whole
	// message has verified: every frame's tag, the final frame, the
	// signature of a signed suite, and that nothing follows the message.
	// It returns the plaintext only then, from a spool as for a
	// non-framed message (see TempDir), which needs about as much disk as
	// the message and costs one more AES-GCM pass each way. Without it a
	// framed message's plaintext is returned a run of frames at a time as
	// each authenticates (see NewDecrypter). Non-framed messages are
	// always read so.
	Buffer bool
	// TempDir is where the plaintext of a non-framed message, or with
	// Buffer of any message, sealed under a key held only in memory,
	// waits once past 1 MiB until the whole message has been
	// authenticated; the system's temporary directory if empty. Framed
	// messages without Buffer never use it.
	TempDir string
}

// NonCommittingError is the error of NewDecrypter for a message in a suite
// without key commitment when DecryptOptions.AllowNonCommitting is false,
// before the keyring is asked for its data key. It matches
// ErrNonCommitting, and names the suite, which the header gave without
// being authenticated.
type NonCommittingError struct {
	Suite Suite
}

func (e *NonCommittingError) Error() string {
	return fmt.Sprintf("%v (%v); set AllowNonCommitting to decrypt it", ErrNonCommitting, e.Suite)
}

// Unwrap returns ErrNonCommitting.
func (e *NonCommittingError) Unwrap() error { return ErrNonCommitting }

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
	free     buffers

	// The message is read from r a run of frames at a time, straight into
	// the run's buffer; carry is what was read past the end of the last
	// run, and rerr an error r returned with data, returned once the data
	// is used up.
	carry    []byte
	carryBuf []byte
	rerr     error
	pool     workers

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
// A non-framed message (Header.NonFramed) has one tag for its whole body,
// up to MaxNonFramedLength bytes: its reader returns no plaintext at all
// until the tag, the signature and the end of the message have verified.
// Until then the plaintext waits sealed under a random key held only in
// memory, in memory up to 1 MiB and beyond that in a temporary file in
// DecryptOptions.TempDir, removed once the reader returns io.EOF or an
// error of its own (on Linux an O_TMPFILE file that never has a name;
// elsewhere, where the system allows, unlinked from the start); it needs
// about as much disk as the message. A caller that stops reading before
// then, or whose writer fails under io.Copy (WriteTo), leaves the file
// open, and its disk used, until the reader is garbage collected (where
// the system could not unlink it, its name stays). MaxFrameLength and
// Concurrency do not apply to it. DecryptOptions.Buffer reads a framed
// message the same way: nothing before the whole message has verified.
//
// Every failure after the header is read is ErrAuthentication, or an
// error from r (or from the temporary file); the reader then returns it on
// every call, and no more data. Memory use is bounded by about 3 × Concurrency runs of 256 KiB of
// plaintext in at most 4096 frames, or of one frame if frames are larger,
// and by 16 MiB of runs read ahead (at least one run) whatever the
// concurrency, counted as they sit in memory: frames as on the wire, 32
// bytes more each, and a record of each; Buffer adds the spool's 1 MiB
// and a chunk of 64 KiB.
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
		return nil, nil, &NonCommittingError{h.Suite}
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
		info, _ := h.Suite.info()
		if ver, ok = newVerifier(info.sig, pub); !ok {
			return nil, nil, malformed("invalid %q", PublicKeyContextKey)
		}
	}

	dataKey, err := kr.DecryptDataKey(ctx, h.Suite, h.EncryptedDataKeys, maps.Clone(h.EncryptionContext))
	if err != nil {
		return nil, nil, fmt.Errorf("esdk: keyring: %w", err)
	}
	block, commitKey, err := h.Suite.deriveBlock(dataKey, h.MessageID)
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(block)
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
	if h.NonFramed {
		d := &nonFramedBody{r: br, block: block, messageID: h.MessageID, ver: ver, tempDir: opts.TempDir}
		if ver != nil {
			d.sigHash = ver.hash
			d.sigHash.Write(raw)
		}
		return &verifiedReader{fill: d.readBody}, h, nil
	}

	d := &decrypter{
		r:        br,
		fc:       frameCipher{aead, h.MessageID},
		frameLen: int(h.FrameLength),
		perBatch: runFrames(int(h.FrameLength)),
		conc:     conc,
		free:     buffers{keep: conc + 2},
		ver:      ver,
		nextSeq:  1,
		pool:     workers{n: conc},
	}
	if ver != nil {
		d.sigHash = ver.hash
		d.sigHash.Write(raw)
	}
	if opts.Buffer {
		return &verifiedReader{fill: func() (*spool, error) { return spoolAll(d, opts.TempDir) }}, h, nil
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
		if d.err = d.advance(); d.err != nil || d.done {
			d.pool.stop()
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// WriteTo writes the plaintext to w a run of frames at a time, straight
// from the buffer the run was opened in, with the guarantees of Read: io.Copy
// uses it, saving a copy of every byte.
func (d *decrypter) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for {
		if len(d.out) > 0 {
			k, err := w.Write(d.out)
			n += int64(k)
			d.out = d.out[k:]
			if err == nil && len(d.out) > 0 {
				err = io.ErrShortWrite
			}
			if err != nil {
				return n, err
			}
		}
		if d.err != nil {
			return n, d.err
		}
		if d.done {
			return n, nil
		}
		if d.err = d.advance(); d.err != nil || d.done {
			d.pool.stop()
		}
	}
}

// advance reads runs of frames until Concurrency of them are in flight,
// then waits for the oldest and makes its plaintext the next to return.
func (d *decrypter) advance() error {
	if d.lastOut != nil {
		d.free.put(d.lastOut)
		d.lastOut = nil
	}
	for !d.sawFinal && len(d.inflight) < d.depth() {
		b, err := d.readBatch()
		if err != nil {
			return err
		}
		b.task.run = b.run
		if d.conc > 1 {
			start(&d.pool, d, &b.task)
		}
		d.inflight = append(d.inflight, b)
	}
	b := d.inflight[0]
	d.inflight[0] = nil
	d.inflight = d.inflight[1:]
	b.wait()
	if !b.ok {
		d.free.put(b.buf)
		return ErrAuthentication
	}
	if b.final {
		if err := d.finish(); err != nil {
			d.free.put(b.buf)
			return err
		}
		d.done = true
	}
	d.out, d.lastOut = b.plain, b.buf
	return nil
}

// finish reads what follows the final frame: the footer of a signed suite,
// then nothing.
func (d *decrypter) finish() error { return readEnd(d.tail(), d.ver) }

// readEnd reads what follows the body: the footer of a signed suite,
// verified by ver, then nothing.
func readEnd(r io.Reader, ver *verifier) error {
	if ver != nil {
		var n [2]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return readErr(err)
		}
		sig := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(r, sig); err != nil {
			return readErr(err)
		}
		if !ver.verify(sig) {
			return ErrAuthentication
		}
	}
	var one [1]byte
	switch _, err := io.ReadFull(r, one[:]); {
	case err == nil:
		return ErrAuthentication // bytes after the end of the message
	case errors.Is(err, io.EOF):
		return nil
	default:
		return fmt.Errorf("esdk: reading message: %w", err)
	}
}

// tail reads what follows the runs read so far.
func (d *decrypter) tail() io.Reader {
	var rest io.Reader = d.r
	if d.rerr != nil {
		rest = &stickyErrReader{d.rerr}
	}
	if len(d.carry) == 0 {
		return rest
	}
	carry := d.carry
	d.carry = nil
	return io.MultiReader(bytes.NewReader(carry), rest)
}

type stickyErrReader struct{ err error }

func (r *stickyErrReader) Read([]byte) (int, error) { return 0, r.err }

// readErr is the error of a read of the message: its ending early is an
// authentication failure, since it means the message was truncated.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrAuthentication
	}
	return fmt.Errorf("esdk: reading message: %w", err)
}

// runBuffer is the buffer of one run of frames as read from the message:
// frames as on the wire, back to back, then possibly the start of what
// follows them.
type runBuffer struct {
	buf []byte // what has been read; cap(buf) is all it may hold
}

// need makes sure that the first n bytes of the run have been read,
// reading as much as r returns at once, up to the buffer's capacity.
func (d *decrypter) need(rb *runBuffer, n int) error {
	for len(rb.buf) < n {
		if d.rerr != nil {
			return readErr(d.rerr)
		}
		k, err := d.r.Read(rb.buf[len(rb.buf):cap(rb.buf)])
		rb.buf = rb.buf[:len(rb.buf)+k]
		if err != nil {
			d.rerr = err
		}
	}
	return nil
}

// readBatch reads the next run of frames: perBatch frames, or fewer if the
// final frame comes first. An empty final frame right after a full run
// joins it, so that a signed message's last regular frame is held back with
// it until the signature verifies.
func (d *decrypter) readBatch() (*openBatch, error) {
	// Room for perBatch regular frames and an empty final frame, the most
	// a run holds.
	size := d.perBatch*(d.frameLen+regularFrameOverhead) + finalFrameOverhead
	rb := &runBuffer{buf: d.free.get(size)}
	rb.buf = append(rb.buf, d.carry...)
	d.carry = nil
	b := &openBatch{fc: d.fc, frames: make([]rawFrame, 0, d.perBatch+1)}
	pos := 0
	for {
		f, end, err := d.readFrame(rb, pos)
		if err != nil {
			d.free.put(rb.buf)
			return nil, err
		}
		b.frames = append(b.frames, f)
		pos = end
		if f.final {
			b.final, d.sawFinal = true, true
			break
		}
		if len(b.frames) >= d.perBatch && !d.emptyFinalFrameNext(rb, pos) {
			break
		}
	}
	if pos < len(rb.buf) {
		d.carry = append(d.carryBuf[:0], rb.buf[pos:]...)
		d.carryBuf = d.carry
	}
	b.buf = rb.buf[:pos]
	return b, nil
}

// emptyFinalFrameNext reports whether the next frame, at pos, is an empty
// final frame, without consuming it.
func (d *decrypter) emptyFinalFrameNext(rb *runBuffer, pos int) bool {
	const n = finalFrameOverhead - tagSize
	if d.need(rb, pos+n) != nil {
		return false
	}
	next := rb.buf[pos : pos+n]
	return binary.BigEndian.Uint32(next) == finalFrameMarker &&
		binary.BigEndian.Uint32(next[n-4:]) == 0
}

// readFrame reads the frame at pos of the run and checks its place in the
// sequence, and returns it and where it ends. Every byte read goes into
// the signature hash.
func (d *decrypter) readFrame(rb *runBuffer, pos int) (rawFrame, int, error) {
	if err := d.need(rb, pos+4); err != nil {
		return rawFrame{}, 0, err
	}
	f := rawFrame{seq: binary.BigEndian.Uint32(rb.buf[pos:])}
	h, contentLen := 4+ivSize, d.frameLen
	if f.seq == finalFrameMarker {
		f.final = true
		h = 8 + ivSize + 4
		if err := d.need(rb, pos+h); err != nil {
			return rawFrame{}, 0, err
		}
		f.seq = binary.BigEndian.Uint32(rb.buf[pos+4:])
		copy(f.iv[:], rb.buf[pos+8:])
		contentLen = int(binary.BigEndian.Uint32(rb.buf[pos+8+ivSize:]))
		if uint64(contentLen) > uint64(d.frameLen) {
			return rawFrame{}, 0, ErrAuthentication
		}
	} else {
		if err := d.need(rb, pos+h); err != nil {
			return rawFrame{}, 0, err
		}
		copy(f.iv[:], rb.buf[pos+4:])
	}
	if f.seq != d.nextSeq {
		return rawFrame{}, 0, ErrAuthentication
	}
	d.nextSeq++

	end := pos + h + contentLen + tagSize
	if end > cap(rb.buf) {
		// Only a final frame in a run of perBatch frames can come to
		// this, and then fails: its place is for an empty final frame.
		return rawFrame{}, 0, ErrAuthentication
	}
	if err := d.need(rb, end); err != nil {
		return rawFrame{}, 0, err
	}
	f.sealed = rb.buf[pos+h : end]
	if d.sigHash != nil {
		d.sigHash.Write(rb.buf[pos:end])
	}
	return f, end, nil
}

// openBatch is a run of frames opened together, in place.
type openBatch struct {
	task
	fc     frameCipher
	frames []rawFrame
	final  bool
	buf    []byte // the run as read; frames point into it
	plain  []byte // once opened, the run's plaintext, at the start of buf
	ok     bool
}

// run opens the run's frames in place and moves their plaintexts together
// at the start of the buffer (while they are still in this core's cache),
// so that the reader hands them on in one piece.
func (b *openBatch) run() {
	var aad []byte
	n := 0
	for i := range b.frames {
		pt, a, ok := b.fc.openInPlace(&b.frames[i], aad)
		if !ok {
			return
		}
		aad = a
		n += copy(b.buf[n:], pt)
	}
	b.plain = b.buf[:n]
	b.ok = true
}

// readAheadBytes bounds the runs read ahead, whatever the frame length
// the message sets and however many workers decrypt: a run holds at least
// one whole frame, and a sender's 64 MiB frames times three runs per
// worker would hold gigabytes on a large machine.
const readAheadBytes = 16 << 20

// frameRecordSize is the memory a run keeps for each of its frames besides
// the frame's bytes: the size of a rawFrame on 64-bit platforms (checked by
// the tests), and less on others.
const frameRecordSize = 48

// runFrames is how many regular frames of frameLen bytes a run of the
// decrypter holds: batchTarget bytes of plaintext, at most maxRunFrames
// frames, and at least one. With their overhead and records, a run is at
// most 576 KiB in memory (frames of 64 bytes), or one frame and 80 bytes.
func runFrames(frameLen int) int {
	return max(1, min(batchTarget/frameLen, maxRunFrames))
}

// runBytes is the most memory a run holds: perBatch regular frames and an
// empty final frame, as on the wire, and a record of each.
func (d *decrypter) runBytes() int {
	return d.perBatch*(d.frameLen+regularFrameOverhead+frameRecordSize) + finalFrameOverhead + frameRecordSize
}

// depth is how many runs are read ahead: with Concurrency above one,
// three per worker, so that the workers always have the next runs ready
// while the caller reads the message and hands out plaintext (with two,
// the workers idled and 4 KiB frames decrypted a fifth slower); no more
// than fit in readAheadBytes, counted by runBytes, and at least one.
func (d *decrypter) depth() int {
	if d.conc == 1 {
		return 1
	}
	return max(1, min(3*d.conc, readAheadBytes/d.runBytes()))
}
