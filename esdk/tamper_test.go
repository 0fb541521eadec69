package esdk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"
)

var allSuites = []Suite{SuiteCommitKey, SuiteCommitKeyECDSAP384, SuiteHKDFSHA256, SuiteHKDFSHA384ECDSAP384,
	SuiteAES128HKDFSHA256, SuiteAES192HKDFSHA256, SuiteAES128HKDFSHA256ECDSAP256, SuiteAES192HKDFSHA384ECDSAP384,
	SuiteAES128NoKDF, SuiteAES192NoKDF, SuiteAES256NoKDF}

// version1Suites are the suites without key commitment, every one the
// specification has.
var version1Suites = allSuites[2:]

// encryptSuite writes a message in any suite this package reads, including
// the version 1 suites that NewEncrypter refuses, with a raw AES keyring.
func encryptSuite(t testing.TB, kr Keyring, suite Suite, frameLen, conc int, ec map[string]string, pt []byte) []byte {
	t.Helper()
	ec = maps.Clone(ec)
	if ec == nil {
		ec = map[string]string{}
	}
	var sig *signer
	if info, _ := suite.info(); info.sig != nil {
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
	info, _ := suite.info()
	messageID := make([]byte, info.messageIDLen)
	rand.Read(messageID)
	var buf bytes.Buffer
	w, err := newEncrypter(&buf, suite, messageID, dataKey, ec, edks, frameLen, conc, sig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pt); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newRawAESKeyring() *rawAESKeyring {
	key := make([]byte, 32)
	rand.Read(key)
	return &rawAESKeyring{namespace: "test-namespace", name: "test-key", key: key}
}

var allowAll = DecryptOptions{AllowNonCommitting: true, Concurrency: 1}

func TestVersion1Suites(t *testing.T) {
	kr := newRawAESKeyring()
	for _, suite := range version1Suites {
		for _, size := range []int{0, 99, 100, 1234} {
			pt := testPlaintext(size)
			msg := encryptSuite(t, kr, suite, 100, 2, map[string]string{"k": "v"}, pt)
			if msg[0] != 1 || msg[1] != 0x80 {
				t.Fatalf("%v: starts % x", suite, msg[:2])
			}
			got, h, err := decrypt(kr, DecryptOptions{AllowNonCommitting: true}, msg)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%v size %d: %d bytes, %v", suite, size, len(got), err)
			}
			if h.Version() != 1 || len(h.MessageID) != 16 || h.CommitKey != nil || len(h.IV) != ivSize {
				t.Errorf("%v: header %+v", suite, h)
			}
			if !bytes.Equal(mustMarshal(t, h), msg[:len(mustMarshal(t, h))]) {
				t.Errorf("%v: header does not marshal back", suite)
			}
			// Refused by default, before the keyring is asked.
			_, _, err = decrypt(failingKeyring{}, DecryptOptions{}, msg)
			var nc *NonCommittingError
			if !errors.Is(err, ErrNonCommitting) || !errors.As(err, &nc) || nc.Suite != suite {
				t.Errorf("%v without AllowNonCommitting: %v", suite, err)
			}
		}
	}
}

// tamperMessages returns a small message of 2 regular frames and a final
// frame in every suite.
func tamperMessages(t *testing.T) (*rawAESKeyring, map[Suite][]byte) {
	kr := newRawAESKeyring()
	msgs := make(map[Suite][]byte)
	for _, suite := range allSuites {
		msgs[suite] = encryptSuite(t, kr, suite, 16, 1, map[string]string{"purpose": "tamper"}, testPlaintext(40))
	}
	return kr, msgs
}

// TestFlipEveryByte flips each byte of a small message in turn: every
// change must fail, with the header or while reading.
func TestFlipEveryByte(t *testing.T) {
	kr, msgs := tamperMessages(t)
	for suite, msg := range msgs {
		for i := range msg {
			for _, mask := range []byte{0x01, 0x80} {
				bad := bytes.Clone(msg)
				bad[i] ^= mask
				if _, err := decryptBoth(kr, allowAll, bad); err == nil {
					t.Errorf("%v: flipping byte %d of %d with %#x went unnoticed", suite, i, len(msg), mask)
				}
			}
		}
	}
}

func TestTruncation(t *testing.T) {
	kr, msgs := tamperMessages(t)
	for suite, msg := range msgs {
		for n := range len(msg) {
			if _, err := decryptBoth(kr, allowAll, msg[:n]); err == nil {
				t.Errorf("%v: message truncated to %d of %d bytes decrypted", suite, n, len(msg))
			}
		}
		for _, extra := range [][]byte{{0}, msg} {
			if _, err := decryptBoth(kr, allowAll, append(bytes.Clone(msg), extra...)); !errors.Is(err, ErrAuthentication) {
				t.Errorf("%v: %d trailing bytes: %v", suite, len(extra), err)
			}
		}
		if _, _, err := decrypt(kr, allowAll, msg); err != nil {
			t.Errorf("%v: the untouched message fails: %v", suite, err)
		}
	}
}

// TestFrameSurgery moves, repeats, drops and relabels whole frames.
func TestFrameSurgery(t *testing.T) {
	kr, msgs := tamperMessages(t)
	for suite, msg := range msgs {
		h, err := ParseHeader(msg[:headerLen(t, msg)])
		if err != nil {
			t.Fatal(err)
		}
		hl := len(mustMarshal(t, h))
		reg := regularFrameOverhead + 16
		f1, f2 := msg[hl:hl+reg], msg[hl+reg:hl+2*reg]
		final := msg[hl+2*reg : hl+2*reg+finalFrameOverhead+8]
		footer := msg[hl+2*reg+len(final):]
		head := msg[:hl]
		cat := func(parts ...[]byte) []byte { return bytes.Join(append([][]byte{head}, parts...), nil) }
		// Frame 1 relabelled as frame 2, IV and all.
		f1as2 := bytes.Clone(f1)
		copy(f1as2, f2[:4+ivSize])
		// The final frame written as a regular one.
		finalAsRegular := bytes.Clone(final[4:])

		for name, bad := range map[string][]byte{
			"swapped":            cat(f2, f1, final, footer),
			"frame 1 twice":      cat(f1, f1, final, footer),
			"frame 2 dropped":    cat(f1, final, footer),
			"final dropped":      cat(f1, f2, footer),
			"final moved up":     cat(f1, final, f2, footer),
			"relabelled":         cat(f1, f1as2, final, footer),
			"final as regular":   cat(f1, f2, finalAsRegular, footer),
			"footer dropped":     cat(f1, f2, final),
			"no body":            cat(),
			"another's final":    cat(f1, f2, otherFinal(t, kr, suite, msgs[suite]), footer),
			"footer after frame": cat(f1, footer),
		} {
			if suite.Signed() == false && name == "footer dropped" {
				continue // same as the original
			}
			if _, err := decryptBoth(kr, allowAll, bad); err == nil {
				t.Errorf("%v: %s: decrypted", suite, name)
			}
		}
	}
}

func headerLen(t *testing.T, msg []byte) int {
	t.Helper()
	h, err := ReadHeader(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return len(mustMarshal(t, h))
}

// otherFinal returns the final frame of another message of the same shape.
func otherFinal(t *testing.T, kr Keyring, suite Suite, like []byte) []byte {
	other := encryptSuite(t, kr, suite, 16, 1, map[string]string{"purpose": "tamper"}, testPlaintext(40))
	hl := headerLen(t, other)
	start := hl + 2*(regularFrameOverhead+16)
	return other[start : start+finalFrameOverhead+8]
}

func TestContextAndSuiteMismatch(t *testing.T) {
	kr := newRawAESKeyring()
	// An unsigned message claiming a public key.
	ec := map[string]string{PublicKeyContextKey: "AsG8gG9InLPu16YKlqXTOD+nykG8YqHAhqecj8aXfD2e5B4gtVE73dZkyClA+rAMOQ=="}
	msg := encryptSuite(t, kr, SuiteCommitKey, 16, 1, ec, []byte("x"))
	if _, _, err := decrypt(kr, allowAll, msg); !errors.Is(err, ErrMalformedHeader) {
		t.Errorf("unsigned suite with a public key: %v", err)
	}
	// A public key on the other curve: P-384 in a P-256 suite, and back.
	p384 := encryptSuite(t, kr, SuiteHKDFSHA384ECDSAP384, 16, 1, nil, []byte("x"))
	p256 := encryptSuite(t, kr, SuiteAES128HKDFSHA256ECDSAP256, 16, 1, nil, []byte("x"))
	for _, tc := range []struct {
		name      string
		msg       []byte
		asSuite   Suite
		keyLength int
	}{
		{"P-384 key in a P-256 suite", p384, SuiteAES128HKDFSHA256ECDSAP256, 68},
		{"P-256 key in a P-384 suite", p256, SuiteHKDFSHA384ECDSAP384, 44},
	} {
		h, err := ReadHeader(bytes.NewReader(tc.msg))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(h.EncryptionContext[PublicKeyContextKey]); n != tc.keyLength {
			t.Fatalf("%s: public key of %d characters, want %d", tc.name, n, tc.keyLength)
		}
		bad := bytes.Clone(tc.msg)
		binary.BigEndian.PutUint16(bad[2:], uint16(tc.asSuite))
		if _, _, err := decrypt(kr, allowAll, bad); !errors.Is(err, ErrMalformedHeader) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// A signed message whose public key is not a point.
	msg = encryptSuite(t, kr, SuiteCommitKeyECDSAP384, 16, 1, nil, []byte("x"))
	bad := bytes.Replace(msg, []byte(PublicKeyContextKey), []byte("aws-crypto-public-kez"), 1)
	if _, _, err := decrypt(kr, allowAll, bad); !errors.Is(err, ErrMalformedHeader) {
		t.Errorf("signed suite without a public key: %v", err)
	}
}

// TestSignedHoldsBackLastFrame checks that with a bad signature the
// plaintext of the last frame that has any is never returned.
func TestSignedHoldsBackLastFrame(t *testing.T) {
	kr := newRawAESKeyring()
	const frame = batchTarget // one frame per run
	for _, tc := range []struct{ size, released int }{
		{3*frame + 100, 3 * frame}, // final frame of 100 bytes held back
		{3 * frame, 2 * frame},     // empty final frame: frame 3 held back with it
		{100, 0},
	} {
		for _, conc := range []int{1, 2} {
			pt := testPlaintext(tc.size)
			msg := encryptSuite(t, kr, SuiteCommitKeyECDSAP384, frame, 1, nil, pt)
			msg[len(msg)-1] ^= 1 // the signature
			r, _, err := NewDecrypter(context.Background(), bytes.NewReader(msg), kr, DecryptOptions{Concurrency: conc})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(r)
			if !errors.Is(err, ErrAuthentication) {
				t.Errorf("size %d: err = %v", tc.size, err)
			}
			if len(got) != tc.released || !bytes.Equal(got, pt[:len(got)]) {
				t.Errorf("size %d conc %d: released %d bytes before the signature failed, want %d", tc.size, conc, len(got), tc.released)
			}
			// The same through WriteTo, as io.Copy to a file does.
			r, _, err = NewDecrypter(context.Background(), bytes.NewReader(msg), kr, DecryptOptions{Concurrency: conc})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			n, err := io.Copy(&out, r)
			if !errors.Is(err, ErrAuthentication) || n != int64(tc.released) || !bytes.Equal(out.Bytes(), pt[:n]) {
				t.Errorf("size %d conc %d: WriteTo wrote %d bytes (%v), want %d and an authentication error", tc.size, conc, n, err, tc.released)
			}
		}
	}
}

// TestWrongDataKey checks key commitment: a data key that is not the
// message's fails before any frame is read, whatever the keyring says.
func TestWrongDataKey(t *testing.T) {
	kr := newRawAESKeyring()
	msg := encryptSuite(t, kr, SuiteCommitKey, 16, 1, nil, []byte("secret"))
	liar := &constKeyring{key: make([]byte, 32)}
	if _, _, err := decrypt(liar, allowAll, msg); !errors.Is(err, ErrAuthentication) {
		t.Errorf("wrong data key: %v", err)
	}
	liar.key = make([]byte, 31)
	if _, _, err := decrypt(liar, allowAll, msg); err == nil {
		t.Error("short data key accepted")
	}
}

// TestDataKeyLength checks that in every suite a data key of another
// length than the suite's fails the message before it is used: no
// plaintext, and not an authentication failure, which would mean the key
// had been tried. The data key of a message in the NO_KDF suites is the
// AES key itself, so a key of the wrong length must not reach AES.
func TestDataKeyLength(t *testing.T) {
	kr := newRawAESKeyring()
	for _, suite := range allSuites {
		msg := encryptSuite(t, kr, suite, 16, 1, nil, []byte("secret"))
		want := suite.DataKeyLength()
		if want != 16 && want != 24 && want != 32 {
			t.Fatalf("%v: data key length %d", suite, want)
		}
		if h, err := ReadHeader(bytes.NewReader(msg)); err != nil || len(h.EncryptedDataKeys) != 1 {
			t.Fatalf("%v: %v", suite, err)
		}
		for _, n := range []int{0, 15, 16, 17, 24, 31, 32, 33, 64} {
			if n == want {
				continue
			}
			pt, _, err := decrypt(&constKeyring{key: make([]byte, n)}, allowAll, msg)
			if err == nil || errors.Is(err, ErrAuthentication) || pt != nil ||
				!strings.Contains(err.Error(), fmt.Sprintf("data key is %d bytes, want %d", n, want)) {
				t.Errorf("%v with a %d-byte data key: %d bytes, %v", suite, n, len(pt), err)
			}
		}
	}
}

type constKeyring struct{ key []byte }

func (k *constKeyring) GenerateDataKey(context.Context, Suite, map[string]string) ([]byte, []EncryptedDataKey, error) {
	return k.key, []EncryptedDataKey{{"p", "i", []byte("c")}}, nil
}

func (k *constKeyring) DecryptDataKey(context.Context, Suite, []EncryptedDataKey, map[string]string) ([]byte, error) {
	return k.key, nil
}

// errReader returns its data, then an error other than EOF.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadError(t *testing.T) {
	kr := newMemKeyring(1)
	msg := encrypt(t, kr, EncryptOptions{FrameLength: 100}, testPlaintext(1000))
	ioErr := errors.New("connection reset")
	for _, n := range []int{10, len(msg) - 500, len(msg)} {
		r, _, err := NewDecrypter(context.Background(), &errReader{msg[:n], ioErr}, kr, DecryptOptions{})
		if err == nil {
			_, err = io.ReadAll(r)
		}
		if !errors.Is(err, ioErr) {
			t.Errorf("cut at %d: %v, want the read error", n, err)
		}
	}
}
