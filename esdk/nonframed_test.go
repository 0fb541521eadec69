package esdk

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"os"
	"runtime"
	"testing"
)

// nonFramedMessage writes, as the specification describes it and as the
// official SDKs do given a frame length of 0, a non-framed message of pt in
// suite: the header with content type 0x01 and frame length 0, the body
// (IV of sequence number 1, uint64 length, ciphertext, tag, under the
// "AWSKMSEncryptionClient Single Block" body AAD), and for signed suites
// the footer. It returns the message and the length of its header.
func nonFramedMessage(t testing.TB, kr Keyring, suite Suite, ec map[string]string, pt []byte) ([]byte, int) {
	t.Helper()
	msg, block, messageID, sig := nonFramedHeader(t, kr, suite, ec)
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	headerLen := len(msg)
	iv := append(make([]byte, ivSize-1), 1)
	msg = append(msg, iv...)
	msg = binary.BigEndian.AppendUint64(msg, uint64(len(pt)))
	msg = aead.Seal(msg, iv, pt, nonFramedAAD(messageID, len(pt)))
	if sig != nil {
		sig.hash.Write(msg)
		s, err := sig.sign()
		if err != nil {
			t.Fatal(err)
		}
		msg = binary.BigEndian.AppendUint16(msg, uint16(len(s)))
		msg = append(msg, s...)
	}
	return msg, headerLen
}

// nonFramedAAD is the body AAD of a non-framed body of n bytes.
func nonFramedAAD(messageID []byte, n int) []byte {
	aad := append(bytes.Clone(messageID), "AWSKMSEncryptionClient Single Block"...)
	aad = binary.BigEndian.AppendUint32(aad, 1)
	return binary.BigEndian.AppendUint64(aad, uint64(n))
}

// nonFramedHeader returns the header of a non-framed message in suite,
// with the AES block cipher of its derived key, its message ID, and for signed
// suites the signer of the message, which has not seen the header yet.
func nonFramedHeader(t testing.TB, kr Keyring, suite Suite, ec map[string]string) ([]byte, cipher.Block, []byte, *signer) {
	t.Helper()
	ec = maps.Clone(ec)
	if ec == nil {
		ec = map[string]string{}
	}
	info, _ := suite.info()
	var sig *signer
	if info.sig != nil {
		var pub string
		var err error
		if sig, pub, err = newSigner(info.sig); err != nil {
			t.Fatal(err)
		}
		ec[PublicKeyContextKey] = pub
	}
	dataKey, edks, err := kr.GenerateDataKey(context.Background(), suite, ec)
	if err != nil {
		t.Fatal(err)
	}
	messageID := make([]byte, info.messageIDLen)
	rand.Read(messageID)
	block, commitKey, err := suite.deriveBlock(dataKey, messageID)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	h := &Header{Suite: suite, MessageID: messageID, EncryptionContext: ec, EncryptedDataKeys: edks,
		NonFramed: true, CommitKey: commitKey}
	msg, err := h.marshalBody()
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, ivSize)
	tag := aead.Seal(nil, zero, nil, msg)
	if info.version == 1 {
		msg = append(msg, zero...)
	}
	return append(msg, tag...), block, messageID, sig
}

func TestNonFramedEverySuite(t *testing.T) {
	kr := newRawAESKeyring()
	for _, suite := range allSuites {
		for _, size := range []int{0, 1, 15, 16, 17, spoolChunk - 1, spoolChunk, spoolChunk + 1, spoolMemory + 3*spoolChunk + 5} {
			pt := testPlaintext(size)
			msg, hl := nonFramedMessage(t, kr, suite, map[string]string{"purpose": "non-framed"}, pt)
			got, err := decryptBoth(kr, allowAll, msg)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%v, %d bytes: %d bytes back, %v", suite, size, len(got), err)
			}
			_, h, err := decrypt(kr, DecryptOptions{AllowNonCommitting: true, TempDir: t.TempDir()}, msg)
			if err != nil || !h.NonFramed || h.FrameLength != 0 {
				t.Fatalf("%v: header %+v, %v", suite, h, err)
			}
			if !bytes.Equal(mustMarshal(t, h), msg[:hl]) {
				t.Fatalf("%v: the header does not marshal back", suite)
			}
		}
	}
}

// TestNonFramedTampered changes each field of the body, cuts the message
// short and declares lengths beyond what follows: every case fails with
// ErrAuthentication and returns no plaintext at all, since the decrypter
// releases none before the whole message has verified.
func TestNonFramedTampered(t *testing.T) {
	kr := newRawAESKeyring()
	for _, suite := range allSuites {
		pt := testPlaintext(3*spoolChunk + 100)
		msg, hl := nonFramedMessage(t, kr, suite, nil, pt)
		bodyEnd := hl + ivSize + 8 + len(pt) + tagSize
		flip := func(off int, bit byte) []byte {
			m := bytes.Clone(msg)
			m[off] ^= bit
			return m
		}
		setLen := func(n uint64) []byte {
			m := bytes.Clone(msg)
			binary.BigEndian.PutUint64(m[hl+ivSize:], n)
			return m
		}
		cases := map[string][]byte{
			"IV first byte":           flip(hl, 0x80),
			"IV last byte":            flip(hl+ivSize-1, 0x01),
			"length high bit":         flip(hl+ivSize, 0x80),
			"length one less":         setLen(uint64(len(pt) - 1)),
			"length one more":         setLen(uint64(len(pt) + 1)),
			"length far beyond":       setLen(1 << 35),
			"length at the bound":     setLen(MaxNonFramedLength),
			"length past the bound":   setLen(MaxNonFramedLength + 1),
			"length max":              setLen(^uint64(0)),
			"ciphertext first byte":   flip(hl+ivSize+8, 0x01),
			"ciphertext last byte":    flip(hl+ivSize+8+len(pt)-1, 0x40),
			"tag":                     flip(bodyEnd-1, 0x01),
			"truncated in the body":   msg[:hl+ivSize+8+spoolChunk+3],
			"truncated before tag":    msg[:bodyEnd-tagSize],
			"truncated in the tag":    msg[:bodyEnd-1],
			"truncated in the length": msg[:hl+ivSize+3],
			"trailing byte":           append(bytes.Clone(msg), 0),
		}
		if suite.Signed() {
			cases["signature"] = flip(len(msg)-1, 0x01)
			cases["no footer"] = msg[:bodyEnd]
		} else {
			cases["truncated at the end"] = msg[:len(msg)-1]
		}
		for name, m := range cases {
			r, _, err := NewDecrypter(context.Background(), bytes.NewReader(m), kr, allowAll)
			if err != nil {
				t.Fatalf("%v, %s: NewDecrypter: %v", suite, name, err)
			}
			got, err := io.ReadAll(r)
			if !errors.Is(err, ErrAuthentication) || len(got) != 0 {
				t.Errorf("%v, %s: %d bytes, %v; want none and ErrAuthentication", suite, name, len(got), err)
			}
			if _, err := r.Read(make([]byte, 1)); !errors.Is(err, ErrAuthentication) {
				t.Errorf("%v, %s: error not sticky: %v", suite, name, err)
			}
		}
	}
}

// TestNonFramedHeader checks what the header of a non-framed message may
// say: content type 0x01 needs a frame length of 0, and 0x02 one above 0.
func TestNonFramedHeader(t *testing.T) {
	kr := newRawAESKeyring()
	for _, suite := range []Suite{SuiteCommitKey, SuiteHKDFSHA256} {
		msg, hl := nonFramedMessage(t, kr, suite, nil, testPlaintext(10))
		h, err := ParseHeader(msg[:hl])
		if err != nil {
			t.Fatal(err)
		}
		ctPos := hl - tagSize - 4 - 1
		if h.Version() == 2 {
			ctPos -= commitKeySize
		} else {
			ctPos -= ivSize + 5
		}
		if msg[ctPos] != contentTypeNonFramed {
			t.Fatalf("%v: content type at %d is %#x", suite, ctPos, msg[ctPos])
		}
		withFrame := bytes.Clone(msg[:hl])
		withFrame[hl-tagSize-1-func() int {
			if h.Version() == 2 {
				return commitKeySize
			}
			return ivSize
		}()] = 1
		if _, err := ParseHeader(withFrame); !errors.Is(err, ErrMalformedHeader) {
			t.Errorf("%v: non-framed with frame length 1: %v", suite, err)
		}
		framed := bytes.Clone(msg[:hl])
		framed[ctPos] = contentTypeFramed
		if _, err := ParseHeader(framed); !errors.Is(err, ErrMalformedHeader) {
			t.Errorf("%v: framed with frame length 0: %v", suite, err)
		}
	}
}

// TestNonFramedSpoolFile decrypts a body larger than the in-memory spool
// through a temporary file, and leaves no file behind in its directory,
// whether the message verifies or not.
func TestNonFramedSpoolFile(t *testing.T) {
	kr := newRawAESKeyring()
	pt := testPlaintext(2*spoolMemory + 7)
	msg, _ := nonFramedMessage(t, kr, SuiteCommitKeyECDSAP384, nil, pt)
	dir := t.TempDir()
	opts := DecryptOptions{TempDir: dir}
	got, _, err := decrypt(kr, opts, msg)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	bad := bytes.Clone(msg)
	bad[len(bad)-1] ^= 1
	if _, _, err := decrypt(kr, opts, bad); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("bad signature: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left %d files in the spool directory", len(ents))
	}
	// A spool directory that does not exist fails the read, and says why.
	_, _, err = decrypt(kr, DecryptOptions{TempDir: dir + "/missing"}, msg)
	if err == nil || errors.Is(err, ErrAuthentication) {
		t.Fatalf("missing spool directory: %v", err)
	}
}

// TestSpoolTamperedFile changes a byte of the spool's file: reading it
// back fails instead of returning altered plaintext.
func TestSpoolTamperedFile(t *testing.T) {
	sp, err := newSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	chunk := testPlaintext(spoolChunk)
	for range spoolMemory/spoolChunk + 2 {
		if err := sp.write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if sp.f == nil {
		t.Fatal("no file")
	}
	if err := sp.w.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.f.WriteAt([]byte{0xff}, 10); err != nil {
		t.Fatal(err)
	}
	if err := sp.rewind(); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.next(); err == nil {
		t.Fatal("a changed spool read back")
	}
}

// TestNonFramedConstantMemory decrypts a non-framed message much larger
// than the memory the decrypter may use, written and read as a stream: the
// heap stays small while the body is read and spooled and while it is
// returned, and the plaintext comes back whole.
func TestNonFramedConstantMemory(t *testing.T) {
	size := 256 << 20
	if raceEnabled {
		size = 32 << 20
	}
	const limit = 16 << 20
	kr := newRawAESKeyring()
	header, block, messageID, _ := nonFramedHeader(t, kr, SuiteCommitKey, nil)
	iv := frameIV(1)
	src := &nonFramedSource{pt: &patternReader{left: size}, g: newGCMStream(block, iv[:], nonFramedAAD(messageID, size))}
	src.head = append(header, iv[:]...)
	src.head = binary.BigEndian.AppendUint64(src.head, uint64(size))
	r, _, err := NewDecrypter(context.Background(), src, kr, DecryptOptions{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sink := &checkingWriter{}
	n, err := io.Copy(sink, r)
	if err != nil || n != int64(size) || sink.bad >= 0 {
		t.Fatalf("decrypted %d bytes, %v, first wrong byte %d", n, err, sink.bad)
	}
	if peak := max(sink.peak, src.peak); peak > limit {
		t.Errorf("heap in use reached %d MiB for a %d MiB body", peak>>20, size>>20)
	}
	t.Logf("peak heap in use %d MiB (reading %d, returning %d)", max(sink.peak, src.peak)>>20, src.peak>>20, sink.peak>>20)
}

// nonFramedSource yields a non-framed message: head, then the pattern
// encrypted as it is read, then the tag, without holding the message.
type nonFramedSource struct {
	head []byte
	pt   *patternReader
	g    *gcmStream
	tag  []byte
	n    int
	peak uint64
}

func (s *nonFramedSource) Read(p []byte) (int, error) {
	if len(s.head) > 0 {
		n := copy(p, s.head)
		s.head = s.head[n:]
		return n, nil
	}
	if s.pt.left > 0 {
		// Whole blocks, but for the last piece, as gcmStream needs.
		p = p[:min(len(p)&^15, s.pt.left)]
		n, _ := s.pt.Read(p)
		s.g.ctr.XORKeyStream(p[:n], p[:n])
		s.g.absorb(p[:n])
		if s.n += n; s.n>>26 != (s.n-n)>>26 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			s.peak = max(s.peak, ms.HeapInuse)
		}
		if s.pt.left == 0 {
			tag := s.g.sum()
			s.tag = tag[:]
		}
		return n, nil
	}
	if len(s.tag) > 0 {
		n := copy(p, s.tag)
		s.tag = s.tag[n:]
		return n, nil
	}
	return 0, io.EOF
}
