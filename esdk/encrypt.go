package esdk

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"strings"
)

const (
	// DefaultFrameLength is the frame length of EncryptOptions, and of the
	// official SDKs.
	DefaultFrameLength = 4096
	// MaxFrameLength is the largest EncryptOptions.FrameLength, and the
	// default DecryptOptions.MaxFrameLength.
	MaxFrameLength = 64 << 20

	// batchTarget is how much plaintext the decrypter hands a goroutine
	// at once: small frames are opened in runs, so that the cost of a
	// goroutine and a channel is paid per 256 KiB, not per frame. (64 KiB
	// runs left decryption of 4 KiB frames a fifth slower; 1 MiB runs
	// more than doubled the CPU time of decrypting a 1 GiB file to a
	// file.)
	batchTarget = 256 << 10
	// sealRunTarget is the same for the encrypter, which seals larger
	// runs: with 1 MiB rather than 256 KiB, encrypting a 1 GiB file took
	// about a tenth less CPU and time, with four times fewer hand-offs
	// between goroutines and writes.
	sealRunTarget = 1 << 20
	// maxRunFrames caps the frames of a run, of either: each frame takes
	// 32 more bytes on the wire (sequence number, IV, tag) and, in the
	// decrypter, a record of it, which for frames of a few bytes outweigh
	// the plaintext. A run of 1-byte frames of batchTarget bytes of
	// plaintext held 8 MiB on the wire and 12 MiB of records, and a
	// message of them, which anyone who can make a header the victim
	// decrypts can forge, had the decrypter read gigabytes ahead before
	// any tag failed. Frames of 256 bytes or more (64 in the decrypter)
	// are not capped, so runs of the usual sizes keep a length that is a
	// power of two, which lets the encrypter seal writes of 1 MiB straight
	// from the caller's slice.
	maxRunFrames = 4096
	// sealAheadBytes bounds the runs the encrypter holds in flight,
	// whatever the frame length and however many workers seal: a run
	// holds at least one whole frame, and Concurrency runs of 64 MiB
	// frames would hold gigabytes on a machine of many cores. Runs of
	// 4 KiB frames (about 1 MiB) are held back only past 15 workers.
	sealAheadBytes = 16 << 20
)

// EncryptOptions configures NewEncrypter. The zero value is usable.
type EncryptOptions struct {
	// Suite is SuiteCommitKey (the default) or SuiteCommitKeyECDSAP384.
	Suite Suite
	// FrameLength is the plaintext length of each frame, 1 to
	// MaxFrameLength; DefaultFrameLength if zero.
	FrameLength int
	// EncryptionContext is authenticated with the message and stored in
	// its header in the clear. No key may start with "aws-crypto-".
	EncryptionContext map[string]string
	// Concurrency is how many runs of frames are sealed at once, no more
	// than fit in 16 MiB (at least one); runtime.GOMAXPROCS(0) if zero.
	Concurrency int
	// MaxPlaintextLength, if positive, bounds the plaintext: a Write that
	// would take it past this many bytes fails with ErrPlaintextTooLong
	// and writes nothing. It is the specification's "max plaintext
	// length", passed to the keyring with the data key request; a
	// CachingKeyring needs it to count the bytes a cached data key
	// encrypts, and does not cache without it. Zero means unknown.
	MaxPlaintextLength int64
}

// encrypter is the io.WriteCloser that NewEncrypter returns.
type encrypter struct {
	w        io.Writer
	fc       frameCipher
	frameLen int
	perBatch int
	conc     int
	depth    int // runs held in flight at most (sealDepth)
	sig      *signer

	seq      uint32     // sequence number of the next frame
	maxPlain int64      // EncryptOptions.MaxPlaintextLength, if positive
	written  int64      // plaintext accepted by Write
	cur      *sealBatch // plaintext not yet handed to a batch, laid out in place
	inflight []*sealBatch
	direct   []*sealBatch // batches reading the slice passed to Write
	pool     workers
	free     buffers

	err    error // sticky: the first error, returned by every later call
	closed bool
}

var errClosed = errors.New("esdk: write to a closed encrypter")

// ErrPlaintextTooLong is returned by the encrypter's Write when the
// plaintext would exceed EncryptOptions.MaxPlaintextLength.
var ErrPlaintextTooLong = errors.New("esdk: plaintext exceeds EncryptOptions.MaxPlaintextLength")

// NewEncrypter writes a message header to w and returns a writer that
// encrypts what is written to it into the message body. Close writes the
// final frame and, for a signed suite, the footer; it does not close w.
//
// ctx is used only for the keyring's GenerateDataKey call.
//
// The writer buffers up to Concurrency runs of about 1 MiB (or one
// frame, if frames are larger), no more of them than fit in 16 MiB (at
// least one), and writes them to w in order. It is not safe for
// concurrent use. After any error, every call returns that error.
func NewEncrypter(ctx context.Context, w io.Writer, kr Keyring, opts EncryptOptions) (io.WriteCloser, error) {
	suite := opts.Suite
	if suite == 0 {
		suite = SuiteCommitKey
	}
	if suite != SuiteCommitKey && suite != SuiteCommitKeyECDSAP384 {
		return nil, fmt.Errorf("esdk: cannot encrypt with %v; use SuiteCommitKey or SuiteCommitKeyECDSAP384", suite)
	}
	frameLen := opts.FrameLength
	if frameLen == 0 {
		frameLen = DefaultFrameLength
	}
	if frameLen < 1 || frameLen > MaxFrameLength {
		return nil, fmt.Errorf("esdk: frame length %d out of range 1 to %d", frameLen, MaxFrameLength)
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = runtime.GOMAXPROCS(0)
	}

	ec := maps.Clone(opts.EncryptionContext)
	if ec == nil {
		ec = make(map[string]string)
	}
	for k := range ec {
		if strings.HasPrefix(k, reservedPrefix) {
			return nil, fmt.Errorf("esdk: encryption context key %q uses the reserved prefix %q", k, reservedPrefix)
		}
	}
	var sig *signer
	if info, _ := suite.info(); info.sig != nil {
		var pub string
		var err error
		if sig, pub, err = newSigner(info.sig); err != nil {
			return nil, err
		}
		ec[PublicKeyContextKey] = pub
	}
	// Fail on an oversized context before asking the keyring for a key.
	if _, err := serializeContext(ec, nil); err != nil {
		return nil, err
	}

	dataKey, edks, err := kr.GenerateDataKey(withMaxPlaintextLength(ctx, opts.MaxPlaintextLength), suite, maps.Clone(ec))
	if err != nil {
		return nil, fmt.Errorf("esdk: keyring: %w", err)
	}
	if len(edks) == 0 {
		return nil, errors.New("esdk: keyring returned no encrypted data keys")
	}
	messageID := make([]byte, 32)
	if _, err := rand.Read(messageID); err != nil {
		return nil, err
	}
	e, err := newEncrypter(w, suite, messageID, dataKey, ec, edks, frameLen, conc, sig)
	if err != nil {
		return nil, err
	}
	e.maxPlain = opts.MaxPlaintextLength
	return e, nil
}

// newEncrypter writes the header of a message with the given materials and
// returns the writer of its body. Tests call it with fixed materials.
func newEncrypter(w io.Writer, suite Suite, messageID, dataKey []byte, ec map[string]string, edks []EncryptedDataKey, frameLen, conc int, sig *signer) (*encrypter, error) {
	aead, commitKey, err := suite.deriveKeys(dataKey, messageID)
	if err != nil {
		return nil, err
	}
	h := &Header{
		Suite:             suite,
		MessageID:         messageID,
		EncryptionContext: ec,
		EncryptedDataKeys: edks,
		FrameLength:       uint32(frameLen),
		CommitKey:         commitKey,
	}
	header, err := h.marshalBody()
	if err != nil {
		return nil, err
	}
	// The header tag: AES-GCM of nothing, the header body as AAD, a zero
	// IV (written out in version 1 headers, which only tests write).
	var zeroIV [ivSize]byte
	tag := aead.Seal(nil, zeroIV[:], nil, header)
	if h.Version() == 1 {
		header = append(header, zeroIV[:]...)
	}
	header = append(header, tag...)
	if _, err := w.Write(header); err != nil {
		return nil, err
	}
	if sig != nil {
		sig.hash.Write(header)
	}

	perBatch := sealFrames(frameLen)
	depth := sealDepth(conc, perBatch, frameLen)
	return &encrypter{
		w:        w,
		fc:       frameCipher{aead, messageID},
		frameLen: frameLen,
		perBatch: perBatch,
		conc:     conc,
		depth:    depth,
		free:     buffers{keep: depth + 2},
		sig:      sig,
		seq:      1,
		pool:     workers{n: conc},
	}, nil
}

// sealFrames is how many frames of frameLen bytes a run of the encrypter
// holds: sealRunTarget bytes of plaintext, at most maxRunFrames frames,
// and at least one; so a run is at most 1.125 MiB on the wire, or one
// frame.
func sealFrames(frameLen int) int {
	return max(1, min(sealRunTarget/frameLen, maxRunFrames))
}

// sealDepth is how many runs of perBatch frames of frameLen bytes the
// encrypter holds in flight: one per worker, no more than fit in
// sealAheadBytes, and at least one.
func sealDepth(conc, perBatch, frameLen int) int {
	run := perBatch * (frameLen + regularFrameOverhead)
	return max(1, min(conc, sealAheadBytes/run))
}

// Write encrypts p. Plaintext is written out a run of frames at a time, so
// some of it stays buffered until later writes or Close.
//
// Whole runs of p are sealed straight from p, and Write returns only once
// they are; the rest is copied into the buffer of the next run, at the
// place each frame's ciphertext will take, and sealed there in place.
// With Concurrency above one the last runs of a large p are copied too,
// so that they are sealed while the caller prepares its next Write.
func (e *encrypter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.maxPlain > 0 {
		if int64(len(p)) > e.maxPlain-e.written {
			e.err = ErrPlaintextTooLong
			return 0, e.err
		}
		e.written += int64(len(p))
	}
	runLen := e.perBatch * e.frameLen
	n := 0
	for len(p) > 0 && e.err == nil {
		if (e.cur == nil || e.cur.n == 0) && len(p) >= runLen*e.depth {
			e.dispatch(e.newBatch(p[:runLen]))
			p, n = p[runLen:], n+runLen
			continue
		}
		if e.cur == nil {
			e.cur = e.newBatch(nil)
		}
		k := e.cur.fill(p, runLen)
		p, n = p[k:], n+k
		if e.cur.n == runLen {
			b := e.cur
			e.cur = nil
			e.dispatch(b)
		}
	}
	// p must not be used after Write returns.
	for _, b := range e.direct {
		b.wait()
		b.src = nil
	}
	clear(e.direct)
	e.direct = e.direct[:0]
	if e.err != nil {
		return n, e.err
	}
	return n, nil
}

// Close encrypts what is buffered, writes the final frame (empty when the
// plaintext is a multiple of the frame length, which every version of the
// official SDKs accepts) and the footer of a signed suite. It does not
// close the underlying writer. Calling Close again returns the same result.
func (e *encrypter) Close() error {
	if e.closed || e.err != nil {
		if e.err == errClosed {
			return nil
		}
		return e.err
	}
	e.closed = true
	defer e.pool.stop()
	b := e.cur
	if b == nil {
		b = e.newBatch(nil)
	}
	e.cur = nil
	b.final = true
	e.dispatch(b)
	for len(e.inflight) > 0 && e.err == nil {
		e.writeHead()
	}
	if e.err != nil {
		return e.err
	}
	if e.sig != nil {
		signature, err := e.sig.sign()
		if err != nil {
			e.err = err
			return err
		}
		footer := binary.BigEndian.AppendUint16(nil, uint16(len(signature)))
		if _, err := e.w.Write(append(footer, signature...)); err != nil {
			e.err = err
			return err
		}
	}
	e.err = errClosed
	return nil
}

// sealBatch is a run of frames sealed together, into out: perBatch
// regular frames, or fewer and a final frame. Its plaintext is src, or if
// src is nil it has been copied into out at the place of each frame's
// ciphertext, as if the run were regular frames (room for the 8 more
// bytes of a final frame's header is made when it is sealed).
type sealBatch struct {
	task
	fc       frameCipher
	frameLen int
	firstSeq uint32
	final    bool
	n        int // bytes of plaintext
	src      []byte
	out      []byte
}

func (e *encrypter) newBatch(src []byte) *sealBatch {
	b := &sealBatch{
		fc:       e.fc,
		frameLen: e.frameLen,
		firstSeq: e.seq,
		n:        len(src),
		src:      src,
		// A final frame is 8 bytes longer than a regular one.
		out: e.free.get(e.perBatch*(e.frameLen+regularFrameOverhead) + 8),
	}
	b.task.run = b.run
	return b
}

// fill copies as much of p as the run, of runLen bytes, has room for
// into out, and returns how much that was.
func (b *sealBatch) fill(p []byte, runLen int) int {
	stride := b.frameLen + regularFrameOverhead
	room := runLen - b.n
	total := 0
	for len(p) > 0 && room > 0 {
		i, off := b.n/b.frameLen, b.n%b.frameLen
		at := i*stride + regularFrameOverhead - tagSize + off
		k := copy(b.out[at:at+min(b.frameLen-off, room)], p)
		p, b.n, room, total = p[k:], b.n+k, room-k, total+k
	}
	return total
}

func (b *sealBatch) run() {
	var aad []byte
	out := b.out[:cap(b.out)]
	seq, regular := b.firstSeq, b.n/b.frameLen
	at := 0
	for i := range regular {
		var src []byte
		if b.src != nil {
			src = b.src[i*b.frameLen:]
		}
		var k int
		k, aad = b.fc.sealAt(out[at:], false, seq, b.frameLen, src, aad)
		seq, at = seq+1, at+k
	}
	if b.final {
		rest := b.n - regular*b.frameLen
		var src []byte
		if b.src != nil {
			src = b.src[regular*b.frameLen:]
		} else {
			// Make room for the final frame's marker and length.
			h := regularFrameOverhead - tagSize
			copy(out[at+h+8:at+h+8+rest], out[at+h:at+h+rest])
		}
		var k int
		k, _ = b.fc.sealAt(out[at:], true, seq, rest, src, aad)
		at += k
	}
	b.out = out[:at]
}

// dispatch hands a run to be sealed, then writes out runs while
// Concurrency of them are in flight.
func (e *encrypter) dispatch(b *sealBatch) {
	regular := b.n / e.frameLen
	frames := regular
	if b.final {
		frames++
	}
	// Regular frames must stay below the final-frame marker; the final
	// frame may use it, the 2^32 - 1st frame.
	if uint64(e.seq)+uint64(regular) > maxSequence || uint64(e.seq)+uint64(frames)-1 > maxSequence {
		e.err = errors.New("esdk: message too long: more than 2^32 - 1 frames")
		e.free.put(b.out)
		return
	}
	b.firstSeq = e.seq
	e.seq += uint32(regular)
	if b.src != nil {
		e.direct = append(e.direct, b)
	}
	if e.conc > 1 {
		start(&e.pool, e, &b.task)
	}
	e.inflight = append(e.inflight, b)
	for len(e.inflight) >= e.depth && e.err == nil {
		e.writeHead()
	}
}

// writeHead waits for the oldest batch, sealing it if no goroutine has
// started to, and writes it out.
func (e *encrypter) writeHead() {
	b := e.inflight[0]
	e.inflight[0] = nil
	e.inflight = e.inflight[1:]
	b.wait()
	if _, err := e.w.Write(b.out); err != nil {
		e.err = err
		return
	}
	if e.sig != nil {
		e.sig.hash.Write(b.out)
	}
	e.free.put(b.out)
	b.out = nil
}
