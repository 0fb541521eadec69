package esdk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"
)

// Header limits. The format bounds every length field to 16 bits; the whole
// header is further capped so that a hostile header cannot make a decrypter
// buffer gigabytes before anything has been authenticated.
const (
	// MaxHeaderSize is the largest header ReadHeader, ParseHeader and
	// NewDecrypter accept, in bytes.
	MaxHeaderSize = 4 << 20
	// MaxEncryptionContextSize is the largest serialized encryption
	// context: the AAD field has a 2-byte length.
	MaxEncryptionContextSize = 0xFFFF
	maxField                 = 0xFFFF
)

const (
	contentTypeNonFramed = 0x01
	contentTypeFramed    = 0x02
	v1TypeCustomerAED    = 0x80
)

// Header is a parsed message header. NewDecrypter returns it only after it
// has been authenticated; ReadHeader and ParseHeader return it unchecked.
type Header struct {
	Suite Suite
	// MessageID is 32 random bytes (16 in version 1 messages).
	MessageID         []byte
	EncryptionContext map[string]string
	EncryptedDataKeys []EncryptedDataKey
	// FrameLength is the plaintext length of every regular frame; 0 in a
	// non-framed message.
	FrameLength uint32
	// NonFramed is set for content type 0x01: the body is one IV, a 64-bit
	// length, one ciphertext and one tag, and FrameLength is 0.
	NonFramed bool
	// CommitKey is the suite data of a version 2 header: the key
	// commitment, 32 bytes. Nil in version 1 headers.
	CommitKey []byte
	// IV is the header authentication IV of a version 1 header, 12 bytes.
	// Nil in version 2 headers, where it is implicitly zero.
	IV []byte
	// AuthTag is the AES-GCM tag over the header.
	AuthTag []byte

	// contextKeys is the order in which the encryption context was
	// serialized, as parsed: the specification asks for keys sorted by
	// their UTF-8 bytes, but older official SDKs sorted differently, and
	// the tag covers the order they chose.
	contextKeys []string
}

// Version is the message format version: 2 for committing suites, 1 for
// the others.
func (h *Header) Version() byte {
	i, _ := h.Suite.info()
	return i.version
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedHeader, fmt.Sprintf(format, args...))
}

// ParseHeader parses b, which must hold exactly one header: the header
// body followed by the header authentication. It authenticates nothing.
func ParseHeader(b []byte) (*Header, error) {
	r := bytes.NewReader(b)
	h, _, _, err := readHeader(r, 0)
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, malformed("%d bytes after the header", r.Len())
	}
	return h, nil
}

// ReadHeader reads one header from r, reading no byte past it, and
// authenticates nothing. It is for looking at a message, for example to
// see which keys can decrypt it, without a keyring.
func ReadHeader(r io.Reader) (*Header, error) {
	h, _, _, err := readHeader(r, 0)
	return h, err
}

// headerReader reads header fields one at a time, keeping every byte read,
// since the header bytes are the AAD of the header tag and the start of
// the signed message.
type headerReader struct {
	r   io.Reader
	raw []byte
	err error
}

func (hr *headerReader) next(n int) []byte {
	if hr.err != nil {
		return nil
	}
	if len(hr.raw)+n > MaxHeaderSize {
		hr.err = malformed("header longer than %d bytes", MaxHeaderSize)
		return nil
	}
	start := len(hr.raw)
	hr.raw = slices.Grow(hr.raw, n)[:start+n]
	if _, err := io.ReadFull(hr.r, hr.raw[start:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			hr.err = malformed("truncated")
		} else {
			hr.err = fmt.Errorf("esdk: reading header: %w", err)
		}
		return nil
	}
	return hr.raw[start:]
}

func (hr *headerReader) byte() byte {
	if b := hr.next(1); b != nil {
		return b[0]
	}
	return 0
}

func (hr *headerReader) uint16() int {
	if b := hr.next(2); b != nil {
		return int(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (hr *headerReader) uint32() uint32 {
	if b := hr.next(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// field reads a 2-byte length and that many bytes, copied.
func (hr *headerReader) field() []byte {
	n := hr.uint16()
	return bytes.Clone(hr.next(n))
}

// readHeader reads a header from r. It returns the header, all its bytes,
// and the length of the header body (the bytes the tag authenticates). A
// positive maxEDKs fails the read as soon as the count is known.
func readHeader(r io.Reader, maxEDKs int) (*Header, []byte, int, error) {
	hr := &headerReader{r: r}
	h := new(Header)

	version := hr.byte()
	if hr.err != nil {
		return nil, nil, 0, hr.err
	}
	switch version {
	case 2:
	case 1:
		if t := hr.byte(); hr.err == nil && t != v1TypeCustomerAED {
			return nil, nil, 0, malformed("unknown message type 0x%02X", t)
		}
	case 'A':
		return nil, nil, 0, malformed("unknown version 0x41; is the message base64-encoded?")
	default:
		return nil, nil, 0, malformed("unknown version 0x%02X", version)
	}
	h.Suite = Suite(hr.uint16())
	if hr.err != nil {
		return nil, nil, 0, hr.err
	}
	info, ok := h.Suite.info()
	if !ok {
		return nil, nil, 0, malformed("unsupported algorithm suite 0x%04X", uint16(h.Suite))
	}
	if info.version != version {
		return nil, nil, 0, malformed("algorithm suite %v in a version %d header", h.Suite, version)
	}
	h.MessageID = bytes.Clone(hr.next(info.messageIDLen))

	aad := hr.next(hr.uint16())
	if hr.err != nil {
		return nil, nil, 0, hr.err
	}
	var err error
	if h.EncryptionContext, h.contextKeys, err = parseContext(aad); err != nil {
		return nil, nil, 0, err
	}

	count := hr.uint16()
	if hr.err != nil {
		return nil, nil, 0, hr.err
	}
	if count == 0 {
		return nil, nil, 0, malformed("no encrypted data keys")
	}
	if maxEDKs > 0 && count > maxEDKs {
		return nil, nil, 0, fmt.Errorf("%w: %d, at most %d allowed", ErrTooManyEncryptedDataKeys, count, maxEDKs)
	}
	for range count {
		id, info, ct := hr.field(), hr.field(), hr.field()
		if hr.err != nil {
			return nil, nil, 0, hr.err
		}
		h.EncryptedDataKeys = append(h.EncryptedDataKeys, EncryptedDataKey{string(id), string(info), ct})
	}

	switch ct := hr.byte(); {
	case hr.err != nil:
	case ct == contentTypeNonFramed:
		h.NonFramed = true
	case ct != contentTypeFramed:
		return nil, nil, 0, malformed("unknown content type 0x%02X", ct)
	}
	if version == 1 {
		if reserved := hr.uint32(); hr.err == nil && reserved != 0 {
			return nil, nil, 0, malformed("reserved field is not zero")
		}
		if n := hr.byte(); hr.err == nil && n != ivSize {
			return nil, nil, 0, malformed("IV length %d, want %d", n, ivSize)
		}
	}
	h.FrameLength = hr.uint32()
	if hr.err == nil && h.FrameLength == 0 && !h.NonFramed {
		return nil, nil, 0, malformed("frame length 0")
	}
	if hr.err == nil && h.FrameLength != 0 && h.NonFramed {
		return nil, nil, 0, malformed("non-framed content with frame length %d, want 0", h.FrameLength)
	}
	if version == 2 {
		h.CommitKey = bytes.Clone(hr.next(commitKeySize))
	}
	bodyLen := len(hr.raw)
	if version == 1 {
		h.IV = bytes.Clone(hr.next(ivSize))
	}
	h.AuthTag = bytes.Clone(hr.next(tagSize))
	if hr.err != nil {
		return nil, nil, 0, hr.err
	}
	return h, hr.raw, bodyLen, nil
}

// parseContext parses the Key Value Pairs of the AAD field: empty, or a
// 2-byte count of at least one and the pairs, each a 2-byte length and a
// UTF-8 key, a 2-byte length and a UTF-8 value, no key twice.
func parseContext(b []byte) (map[string]string, []string, error) {
	ec := make(map[string]string)
	if len(b) == 0 {
		return ec, nil, nil
	}
	field := func() (string, bool) {
		if len(b) < 2 {
			return "", false
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return "", false
		}
		s := string(b[2 : 2+n])
		b = b[2+n:]
		return s, utf8.ValidString(s)
	}
	if len(b) < 2 {
		return nil, nil, malformed("encryption context truncated")
	}
	count := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if count == 0 {
		return nil, nil, malformed("encryption context with zero pairs")
	}
	keys := make([]string, 0, count)
	for range count {
		k, ok1 := field()
		v, ok2 := field()
		if !ok1 || !ok2 {
			return nil, nil, malformed("encryption context truncated or not UTF-8")
		}
		if _, dup := ec[k]; dup {
			return nil, nil, malformed("encryption context key %q twice", k)
		}
		ec[k] = v
		keys = append(keys, k)
	}
	if len(b) != 0 {
		return nil, nil, malformed("%d bytes after the encryption context", len(b))
	}
	return ec, keys, nil
}

// serializeContext returns the Key Value Pairs serialization of ec (without
// the 2-byte AAD length): nothing for an empty context, otherwise the count
// and the pairs, in the order of keys if it names exactly ec's keys, else
// sorted by key bytes as the specification asks.
func serializeContext(ec map[string]string, keys []string) ([]byte, error) {
	if len(ec) == 0 {
		return nil, nil
	}
	if len(ec) > maxField {
		return nil, fmt.Errorf("esdk: encryption context has %d pairs, at most %d", len(ec), maxField)
	}
	if !sameKeys(ec, keys) {
		keys = make([]string, 0, len(ec))
		for k := range ec {
			keys = append(keys, k)
		}
		slices.Sort(keys)
	}
	b := binary.BigEndian.AppendUint16(nil, uint16(len(ec)))
	for _, k := range keys {
		v := ec[k]
		if len(k) > maxField || len(v) > maxField || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("esdk: encryption context pair %q is longer than %d bytes or not UTF-8", k, maxField)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
		if len(b) > MaxEncryptionContextSize {
			return nil, fmt.Errorf("esdk: encryption context serializes to more than %d bytes", MaxEncryptionContextSize)
		}
	}
	return b, nil
}

func sameKeys(ec map[string]string, keys []string) bool {
	if len(keys) != len(ec) {
		return false
	}
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if _, ok := ec[k]; !ok || seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}

// MarshalBinary returns the header's bytes: the body, then the IV (version 1)
// and the tag. A header from ParseHeader, ReadHeader or NewDecrypter
// marshals back to exactly the bytes it was parsed from.
func (h *Header) MarshalBinary() ([]byte, error) {
	b, err := h.marshalBody()
	if err != nil {
		return nil, err
	}
	if h.Version() == 1 {
		if len(h.IV) != ivSize {
			return nil, fmt.Errorf("esdk: header IV is %d bytes, want %d", len(h.IV), ivSize)
		}
		b = append(b, h.IV...)
	}
	if len(h.AuthTag) != tagSize {
		return nil, fmt.Errorf("esdk: header tag is %d bytes, want %d", len(h.AuthTag), tagSize)
	}
	return append(b, h.AuthTag...), nil
}

// marshalBody returns the header body, the bytes the header tag covers.
func (h *Header) marshalBody() ([]byte, error) {
	info, ok := h.Suite.info()
	if !ok {
		return nil, fmt.Errorf("esdk: unsupported algorithm suite %v", h.Suite)
	}
	if len(h.MessageID) != info.messageIDLen {
		return nil, fmt.Errorf("esdk: message ID is %d bytes, want %d", len(h.MessageID), info.messageIDLen)
	}
	if n := len(h.EncryptedDataKeys); n == 0 || n > maxField {
		return nil, fmt.Errorf("esdk: %d encrypted data keys, want 1 to %d", n, maxField)
	}
	if (h.FrameLength == 0) != h.NonFramed {
		return nil, fmt.Errorf("esdk: frame length %d with NonFramed %v", h.FrameLength, h.NonFramed)
	}
	aad, err := serializeContext(h.EncryptionContext, h.contextKeys)
	if err != nil {
		return nil, err
	}

	b := []byte{info.version}
	if info.version == 1 {
		b = append(b, v1TypeCustomerAED)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(h.Suite))
	b = append(b, h.MessageID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(aad)))
	b = append(b, aad...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.EncryptedDataKeys)))
	for _, k := range h.EncryptedDataKeys {
		if len(k.ProviderID) > maxField || len(k.ProviderInfo) > maxField || len(k.Ciphertext) > maxField {
			return nil, fmt.Errorf("esdk: encrypted data key field longer than %d bytes", maxField)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(k.ProviderID)))
		b = append(b, k.ProviderID...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(k.ProviderInfo)))
		b = append(b, k.ProviderInfo...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(k.Ciphertext)))
		b = append(b, k.Ciphertext...)
	}
	if h.NonFramed {
		b = append(b, contentTypeNonFramed)
	} else {
		b = append(b, contentTypeFramed)
	}
	if info.version == 1 {
		b = append(b, 0, 0, 0, 0, ivSize)
	}
	b = binary.BigEndian.AppendUint32(b, h.FrameLength)
	if info.version == 2 {
		if len(h.CommitKey) != commitKeySize {
			return nil, fmt.Errorf("esdk: commit key is %d bytes, want %d", len(h.CommitKey), commitKeySize)
		}
		b = append(b, h.CommitKey...)
	}
	if len(b) > MaxHeaderSize-tagSize-ivSize {
		return nil, fmt.Errorf("esdk: header longer than %d bytes", MaxHeaderSize)
	}
	return b, nil
}
