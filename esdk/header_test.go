package esdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// seedHeaders are fixed headers of every shape: both versions, every
// suite, signed and not, with and without an encryption context, several
// data keys.
func seedHeaders() []*Header {
	fill := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	edk := EncryptedDataKey{ProviderIDAWSKMS, "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", fill(184, 0xC1)}
	return []*Header{
		{Suite: SuiteCommitKey, MessageID: fill(32, 1), EncryptionContext: map[string]string{},
			EncryptedDataKeys: []EncryptedDataKey{edk}, FrameLength: 4096, CommitKey: fill(32, 2), AuthTag: fill(16, 3)},
		{Suite: SuiteCommitKeyECDSAP384, MessageID: fill(32, 4),
			EncryptionContext: map[string]string{"purpose": "seed", "aws-crypto-public-key": "AsG8gG9InLPu16YKlqXTOD+nykG8YqHAhqecj8aXfD2e5B4gtVE73dZkyClA+rAMOQ=="},
			EncryptedDataKeys: []EncryptedDataKey{edk, {"raw", "key\x00\x00\x00\x80", []byte{}}}, FrameLength: 1, CommitKey: fill(32, 5), AuthTag: fill(16, 6)},
		{Suite: SuiteHKDFSHA256, MessageID: fill(16, 7), EncryptionContext: map[string]string{"a": "", "": "b"},
			EncryptedDataKeys: []EncryptedDataKey{edk}, FrameLength: 0xFFFFFFFF, IV: fill(12, 8), AuthTag: fill(16, 9)},
		{Suite: SuiteHKDFSHA384ECDSAP384, MessageID: fill(16, 10), EncryptionContext: map[string]string{"aws-crypto-public-key": "x"},
			EncryptedDataKeys: []EncryptedDataKey{edk, edk, edk}, FrameLength: 65536, IV: fill(12, 11), AuthTag: fill(16, 12)},
		{Suite: SuiteAES128HKDFSHA256ECDSAP256, MessageID: fill(16, 13),
			EncryptionContext: map[string]string{"aws-crypto-public-key": "A2b5Ss2d0yT7vOcmtKSnsZsUxTnk/fnjUOCEPGXX8Ocs", "k": "v"},
			EncryptedDataKeys: []EncryptedDataKey{edk}, FrameLength: 4096, IV: fill(12, 14), AuthTag: fill(16, 15)},
		{Suite: SuiteAES192HKDFSHA384ECDSAP384, MessageID: fill(16, 16), EncryptionContext: map[string]string{},
			EncryptedDataKeys: []EncryptedDataKey{edk}, FrameLength: 100, IV: fill(12, 17), AuthTag: fill(16, 18)},
		{Suite: SuiteAES128HKDFSHA256, MessageID: fill(16, 19), EncryptionContext: map[string]string{},
			EncryptedDataKeys: []EncryptedDataKey{edk}, FrameLength: 4096, IV: fill(12, 20), AuthTag: fill(16, 21)},
		{Suite: SuiteAES192HKDFSHA256, MessageID: fill(16, 22), EncryptionContext: map[string]string{},
			EncryptedDataKeys: []EncryptedDataKey{edk}, FrameLength: 4096, IV: fill(12, 23), AuthTag: fill(16, 24)},
		{Suite: SuiteAES128NoKDF, MessageID: fill(16, 25), EncryptionContext: map[string]string{"purpose": "seed"},
			EncryptedDataKeys: []EncryptedDataKey{edk}, FrameLength: 4096, IV: fill(12, 26), AuthTag: fill(16, 27)},
		{Suite: SuiteAES192NoKDF, MessageID: fill(16, 28), EncryptionContext: map[string]string{},
			EncryptedDataKeys: []EncryptedDataKey{edk}, FrameLength: 1, IV: fill(12, 29), AuthTag: fill(16, 30)},
		{Suite: SuiteAES256NoKDF, MessageID: fill(16, 31), EncryptionContext: map[string]string{},
			EncryptedDataKeys: []EncryptedDataKey{edk, edk}, FrameLength: 4096, IV: fill(12, 32), AuthTag: fill(16, 33)},
		// Non-framed, in both header versions.
		{Suite: SuiteCommitKey, MessageID: fill(32, 34), EncryptionContext: map[string]string{},
			EncryptedDataKeys: []EncryptedDataKey{edk}, NonFramed: true, CommitKey: fill(32, 35), AuthTag: fill(16, 36)},
		{Suite: SuiteHKDFSHA384ECDSAP384, MessageID: fill(16, 37), EncryptionContext: map[string]string{"aws-crypto-public-key": "x"},
			EncryptedDataKeys: []EncryptedDataKey{edk}, NonFramed: true, IV: fill(12, 38), AuthTag: fill(16, 39)},
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range seedHeaders() {
		b := mustMarshal(t, h)
		got, err := ParseHeader(b)
		if err != nil {
			t.Fatalf("%v: %v", h.Suite, err)
		}
		if again := mustMarshal(t, got); !bytes.Equal(again, b) {
			t.Errorf("%v: parse then marshal changed the bytes", h.Suite)
		}
		got2, err := ReadHeader(bytes.NewReader(append(bytes.Clone(b), "body"...)))
		if err != nil || !bytes.Equal(mustMarshal(t, got2), b) {
			t.Errorf("%v: ReadHeader: %v", h.Suite, err)
		}
		if _, err := ParseHeader(append(bytes.Clone(b), 0)); !errors.Is(err, ErrMalformedHeader) {
			t.Errorf("%v: trailing byte: %v", h.Suite, err)
		}
	}
}

// TestContextOrderKept checks that an encryption context serialized out of
// byte order, as JavaScript SDKs before the fix sorted keys with
// localeCompare, parses and marshals back unchanged.
func TestContextOrderKept(t *testing.T) {
	h := seedHeaders()[0]
	h.EncryptionContext = map[string]string{"a": "1", "B": "2"}
	sorted := mustMarshal(t, h)
	if !bytes.Contains(sorted, []byte("\x00\x02\x00\x01B\x00\x012\x00\x01a\x00\x011")) {
		t.Fatalf("context not sorted by bytes: %q", sorted)
	}
	h.contextKeys = []string{"a", "B"}
	unsorted := mustMarshal(t, h)
	if !bytes.Contains(unsorted, []byte("\x00\x02\x00\x01a\x00\x011\x00\x01B\x00\x012")) {
		t.Fatalf("context order not kept: %q", unsorted)
	}
	got, err := ParseHeader(unsorted)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mustMarshal(t, got), unsorted) {
		t.Error("unsorted context did not round-trip")
	}
}

func TestParseHeaderErrors(t *testing.T) {
	good := mustMarshal(t, seedHeaders()[0])
	v1 := mustMarshal(t, seedHeaders()[2])
	aadAt := 1 + 2 + 32
	edkAt := aadAt + 2 // empty context
	set := func(b []byte, at int, v ...byte) []byte {
		b = bytes.Clone(b)
		copy(b[at:], v)
		return b
	}
	contextHeader := func(aad []byte) []byte {
		b := bytes.Clone(good[:aadAt])
		b = binary.BigEndian.AppendUint16(b, uint16(len(aad)))
		b = append(b, aad...)
		return append(b, good[edkAt:]...)
	}
	ctPos := len(good) - 16 - 32 - 4 - 1
	for _, tc := range []struct {
		name, want string
		b          []byte
	}{
		{"empty", "truncated", nil},
		{"base64", "base64", []byte("AYAAF")},
		{"version 3", "unknown version", set(good, 0, 3)},
		{"v1 type", "message type", set(v1, 1, 0x81)},
		{"unknown suite", "unsupported algorithm suite", set(good, 1, 0x00, 0x15)},
		{"suite 0x0000", "unsupported algorithm suite", set(good, 1, 0x00, 0x00)},
		{"v1 suite in v2", "version 2 header", set(good, 1, 0x01, 0x78)},
		{"no EDKs", "no encrypted data keys", append(bytes.Clone(good[:edkAt]), 0, 0)},
		{"non-framed", "non-framed", set(good, ctPos, 1)},
		{"content type 3", "content type", set(good, ctPos, 3)},
		{"frame length 0", "frame length 0", set(good, ctPos+1, 0, 0, 0, 0)},
		{"v1 reserved", "reserved", set(v1, len(v1)-28-4-1-4, 0, 0, 0, 1)},
		{"v1 IV length", "IV length", set(v1, len(v1)-28-4-1, 16)},
		{"zero pairs", "zero pairs", contextHeader([]byte{0, 0})},
		{"duplicate key", "twice", contextHeader([]byte{0, 2, 0, 1, 'k', 0, 0, 0, 1, 'k', 0, 0})},
		{"bad UTF-8", "UTF-8", contextHeader([]byte{0, 1, 0, 1, 0xff, 0, 0})},
		{"pair overruns", "truncated", contextHeader([]byte{0, 1, 0, 9, 'k'})},
		{"bytes after pairs", "after the encryption context", contextHeader([]byte{0, 1, 0, 1, 'k', 0, 0, 7})},
		{"truncated tag", "truncated", good[:len(good)-1]},
	} {
		_, err := ParseHeader(tc.b)
		if !errors.Is(err, ErrMalformedHeader) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestHeaderSizeLimit(t *testing.T) {
	h := seedHeaders()[0]
	big := EncryptedDataKey{"p", "i", make([]byte, 0xFFFF)}
	for range MaxHeaderSize / 0xFFFF {
		h.EncryptedDataKeys = append(h.EncryptedDataKeys, big)
	}
	if _, err := h.MarshalBinary(); err == nil {
		t.Error("oversized header marshalled")
	}
	h.EncryptedDataKeys = h.EncryptedDataKeys[:MaxHeaderSize/0xFFFF-1]
	b := mustMarshal(t, h)
	// Claim one more key than there is; the reader stops at the limit,
	// not at the end of its input.
	binary.BigEndian.PutUint16(b[1+2+32+2:], uint16(len(h.EncryptedDataKeys)+2))
	tail := bytes.Clone(b[len(b)-(1+4+32+16):])
	b = b[:len(b)-len(tail)]
	for range 2 {
		b = append(b, 0, 1, 'p', 0, 1, 'i', 0xFF, 0xFF)
		b = append(b, make([]byte, 0xFFFF)...)
	}
	b = append(b, tail...)
	if _, err := ParseHeader(b); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("oversized header: %v", err)
	}
}

func TestMarshalErrors(t *testing.T) {
	for name, mutate := range map[string]func(*Header){
		"unknown suite":  func(h *Header) { h.Suite = 0x0015 },
		"message ID":     func(h *Header) { h.MessageID = h.MessageID[:16] },
		"no EDKs":        func(h *Header) { h.EncryptedDataKeys = nil },
		"frame length":   func(h *Header) { h.FrameLength = 0 },
		"commit key":     func(h *Header) { h.CommitKey = nil },
		"tag":            func(h *Header) { h.AuthTag = h.AuthTag[:15] },
		"EDK field":      func(h *Header) { h.EncryptedDataKeys[0].Ciphertext = make([]byte, 0x10000) },
		"context length": func(h *Header) { h.EncryptionContext = map[string]string{"k": strings.Repeat("v", 0xFFFF)} },
	} {
		h := seedHeaders()[0]
		mutate(h)
		if _, err := h.MarshalBinary(); err == nil {
			t.Errorf("%s: marshalled", name)
		}
	}
	h := seedHeaders()[2]
	h.IV = nil
	if _, err := h.MarshalBinary(); err == nil {
		t.Error("v1 without IV marshalled")
	}
}

// FuzzParseHeader checks that whatever ParseHeader accepts marshals back to
// exactly the bytes it was parsed from, and that ReadHeader agrees.
func FuzzParseHeader(f *testing.F) {
	for _, h := range seedHeaders() {
		b, err := h.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			if h != nil {
				t.Fatal("error with a partial header")
			}
			return
		}
		out, err := h.MarshalBinary()
		if err != nil {
			t.Fatalf("parsed header does not marshal: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("parse then marshal changed the bytes:\n in  %x\n out %x", b, out)
		}
		h2, err := ReadHeader(bytes.NewReader(b))
		if err != nil || !bytes.Equal(mustMarshal(t, h2), b) {
			t.Fatalf("ReadHeader disagrees: %v", err)
		}
	})
}
