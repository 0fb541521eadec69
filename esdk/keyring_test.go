package esdk

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// memKeyring is the fake Keyring of the tests: AES-256-GCM wrapping keys
// held in memory, named like KMS keys, binding the encryption context as
// AAD the way KMS does.
type memKeyring struct {
	arns []string
	keys map[string][]byte
	// calls counts keyring calls, to check that rejected messages never
	// reach the keyring.
	calls int
}

var _ Keyring = (*memKeyring)(nil)

func newMemKeyring(n int) *memKeyring {
	kr := &memKeyring{keys: make(map[string][]byte)}
	for i := range n {
		arn := fmt.Sprintf("arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-%012d", i)
		key := make([]byte, 32)
		rand.Read(key)
		kr.arns = append(kr.arns, arn)
		kr.keys[arn] = key
	}
	return kr
}

func contextAAD(ec map[string]string) []byte {
	b, err := serializeContext(ec, nil)
	if err != nil {
		panic(err)
	}
	return b
}

func (kr *memKeyring) GenerateDataKey(_ context.Context, suite Suite, ec map[string]string) ([]byte, []EncryptedDataKey, error) {
	kr.calls++
	dataKey := make([]byte, suite.DataKeyLength())
	rand.Read(dataKey)
	var edks []EncryptedDataKey
	for _, arn := range kr.arns {
		aead := gcm(kr.keys[arn])
		nonce := make([]byte, 12)
		rand.Read(nonce)
		edks = append(edks, EncryptedDataKey{ProviderIDAWSKMS, arn, aead.Seal(nonce, nonce, dataKey, contextAAD(ec))})
	}
	return dataKey, edks, nil
}

func (kr *memKeyring) DecryptDataKey(_ context.Context, _ Suite, edks []EncryptedDataKey, ec map[string]string) ([]byte, error) {
	kr.calls++
	for _, edk := range edks {
		key, ok := kr.keys[edk.ProviderInfo]
		if edk.ProviderID != ProviderIDAWSKMS || !ok || len(edk.Ciphertext) < 12 {
			continue
		}
		if dk, err := gcm(key).Open(nil, edk.Ciphertext[:12], edk.Ciphertext[12:], contextAAD(ec)); err == nil {
			return dk, nil
		}
	}
	return nil, ErrNoDataKey
}

func gcm(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// rawAESKeyring unwraps and wraps data keys as the official SDKs' raw AES
// keyring does, so that messages written by the JavaScript SDK with it
// decrypt in the tests:
//
//	provider ID   = key namespace
//	provider info = key name | uint32 tag bits (128) | uint32 IV length (12) | IV
//	ciphertext    = AES-256-GCM(wrapping key, IV, data key, AAD) | tag
//
// where AAD is the encryption context serialized as in the header,
// without the 2-byte length.
type rawAESKeyring struct {
	namespace, name string
	key             []byte
	// iv, if set, is used for every wrap, to write fixed test vectors.
	iv []byte
	// dataKey, if set, is the data key GenerateDataKey returns.
	dataKey []byte
}

var _ Keyring = (*rawAESKeyring)(nil)

func (kr *rawAESKeyring) GenerateDataKey(_ context.Context, suite Suite, ec map[string]string) ([]byte, []EncryptedDataKey, error) {
	dataKey, iv := kr.dataKey, kr.iv
	if dataKey == nil {
		dataKey = make([]byte, suite.DataKeyLength())
		rand.Read(dataKey)
	}
	if iv == nil {
		iv = make([]byte, 12)
		rand.Read(iv)
	}
	info := []byte(kr.name)
	info = binary.BigEndian.AppendUint32(info, 128)
	info = binary.BigEndian.AppendUint32(info, 12)
	info = append(info, iv...)
	ct := gcm(kr.key).Seal(nil, iv, dataKey, contextAAD(ec))
	return dataKey, []EncryptedDataKey{{kr.namespace, string(info), ct}}, nil
}

func (kr *rawAESKeyring) DecryptDataKey(_ context.Context, _ Suite, edks []EncryptedDataKey, ec map[string]string) ([]byte, error) {
	for _, edk := range edks {
		rest, ok := strings.CutPrefix(edk.ProviderInfo, kr.name)
		if edk.ProviderID != kr.namespace || !ok || len(rest) != 4+4+12 ||
			binary.BigEndian.Uint32([]byte(rest[:4])) != 128 || binary.BigEndian.Uint32([]byte(rest[4:8])) != 12 {
			continue
		}
		if dk, err := gcm(kr.key).Open(nil, []byte(rest[8:]), edk.Ciphertext, contextAAD(ec)); err == nil {
			return dk, nil
		}
	}
	return nil, ErrNoDataKey
}

// failingKeyring fails every call.
type failingKeyring struct{}

var errKeyringDown = errors.New("keyring down")

func (failingKeyring) GenerateDataKey(context.Context, Suite, map[string]string) ([]byte, []EncryptedDataKey, error) {
	return nil, nil, errKeyringDown
}

func (failingKeyring) DecryptDataKey(context.Context, Suite, []EncryptedDataKey, map[string]string) ([]byte, error) {
	return nil, errKeyringDown
}
