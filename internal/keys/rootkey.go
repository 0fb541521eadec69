package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// RootKeySize is the size of a root key in bytes (AES-256).
const RootKeySize = 32

// RootKey encrypts key material and other secrets before they are stored.
// It is safe for concurrent use. A RootKey with a random nonce per call is
// good for 2^32 seals, far beyond the number of records a store holds.
type RootKey struct {
	aead      cipher.AEAD
	backupKey []byte
	recordKey []byte
}

// NewRootKey returns a RootKey for 32 bytes of key.
func NewRootKey(key []byte) (*RootKey, error) {
	if len(key) != RootKeySize {
		return nil, fmt.Errorf("root key must be %d bytes, got %d", RootKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &RootKey{aead: aead, backupKey: derive(key, "openkms backup authentication key v1"),
		recordKey: derive(key, "openkms record authentication key v1")}, nil
}

// derive returns HMAC-SHA-256(key, label): a key of its own for each
// label, from which neither key nor another label's key can be found.
func derive(key []byte, label string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(label))
	return mac.Sum(nil)
}

// BackupKey is the key that authenticates backup files of a store under
// this root key (internal/backup): derived from the root key with
// HMAC-SHA-256 and a label of its own, so that it opens nothing and no
// one without the root key can make it.
func (r *RootKey) BackupKey() []byte { return r.backupKey }

// RecordKey is the key that authenticates the records of a store under
// this root key (internal/store/authstore), derived as BackupKey is with
// a label of its own.
func (r *RootKey) RecordKey() []byte { return r.recordKey }

// GenerateRootKey returns 32 random bytes encoded as the root key file holds
// them: standard base64 and a newline.
func GenerateRootKey() []byte {
	k := make([]byte, RootKeySize)
	rand.Read(k)
	return []byte(base64.StdEncoding.EncodeToString(k) + "\n")
}

// RootCheckRecord names the store record a server seals under its root key
// on first start, so that a server or tool given another root key finds
// out at once, before it touches key material.
var RootCheckRecord = []byte("meta/rootkey-check")

// WrappedRootRecord names the store record that holds the store's root
// key sealed by a key in a PKCS#11 token, when the root key is kept there
// (internal/rootkey). A store whose root key comes from a file has none.
// It is not sealed under the root key, and a rotation replaces or
// removes it with the records it rewraps.
var WrappedRootRecord = []byte("meta/rootkey-wrapped")

// ReadRootKeyFile reads and parses the root key file at path.
func ReadRootKeyFile(path string) (*RootKey, error) {
	b, err := ReadRootKeyText(path)
	if err != nil {
		return nil, fmt.Errorf("root key file: %w", err)
	}
	rk, err := ParseRootKey(b)
	if err != nil {
		return nil, fmt.Errorf("root key file %s: %w", path, err)
	}
	return rk, nil
}

// ReadRootKeyText reads the text of the root key file at path, unparsed.
// A path that is a root key itself (given where its file goes, as in
// --root-key-file KEY) is refused without being quoted, as an error about
// a missing file would quote it, so that the key does not reach a log.
func ReadRootKeyText(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if _, perr := ParseRootKey([]byte(path)); perr == nil {
			return nil, errors.New("the path given is a root key, not the name of a file holding one: give the key in KMS_ROOT_KEY instead (it is not shown here)")
		}
		return nil, err
	}
	return b, nil
}

// ParseRootKey decodes a root key as written in a file or an environment
// variable: 32 bytes as base64 (44 characters) or hex (64 characters),
// surrounding white space ignored.
func ParseRootKey(text []byte) (*RootKey, error) {
	s := strings.TrimSpace(string(text))
	var key []byte
	var err error
	switch len(s) {
	case 64:
		key, err = hex.DecodeString(s)
	case 44:
		key, err = base64.StdEncoding.DecodeString(s)
	default:
		return nil, errors.New("root key must be 32 bytes written as base64 (44 characters) or hex (64 characters)")
	}
	if err != nil {
		return nil, fmt.Errorf("root key is not valid base64 or hex: %w", err)
	}
	return NewRootKey(key)
}

// Seal encrypts plaintext, binding it to aad (which names the record it is
// stored in, so that a sealed value moved to another record fails to open).
// The result is nonce ‖ AES-256-GCM output.
func (r *RootKey) Seal(aad, plaintext []byte) []byte {
	ns := r.aead.NonceSize()
	out := make([]byte, ns, ns+len(plaintext)+r.aead.Overhead())
	rand.Read(out)
	return r.aead.Seal(out, out[:ns], plaintext, aad)
}

// Open reverses Seal. Any failure is ErrInvalidCiphertext.
func (r *RootKey) Open(aad, sealed []byte) ([]byte, error) {
	ns := r.aead.NonceSize()
	if len(sealed) < ns+r.aead.Overhead() {
		return nil, ErrInvalidCiphertext
	}
	pt, err := r.aead.Open(nil, sealed[:ns], sealed[ns:], aad)
	if err != nil {
		return nil, ErrInvalidCiphertext
	}
	return pt, nil
}
