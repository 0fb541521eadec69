package esdk_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/openkms/kms/esdk"
)

// localKeyring wraps data keys under one local AES key. A real keyring
// calls KMS GenerateDataKey and Decrypt with the key ARN and the
// encryption context it is given, and returns EncryptedDataKeys with
// ProviderID esdk.ProviderIDAWSKMS, ProviderInfo the key ARN and
// Ciphertext the CiphertextBlob.
type localKeyring struct {
	arn  string
	aead cipher.AEAD
}

func newLocalKeyring() *localKeyring {
	key := make([]byte, 32)
	rand.Read(key)
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	return &localKeyring{"arn:aws:kms:us-east-1:111122223333:key/example", aead}
}

func (k *localKeyring) GenerateDataKey(_ context.Context, _ esdk.Suite, _ map[string]string) ([]byte, []esdk.EncryptedDataKey, error) {
	dataKey := make([]byte, 32)
	rand.Read(dataKey)
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	return dataKey, []esdk.EncryptedDataKey{{
		ProviderID: esdk.ProviderIDAWSKMS, ProviderInfo: k.arn, Ciphertext: k.aead.Seal(nonce, nonce, dataKey, nil),
	}}, nil
}

func (k *localKeyring) DecryptDataKey(_ context.Context, _ esdk.Suite, edks []esdk.EncryptedDataKey, _ map[string]string) ([]byte, error) {
	for _, edk := range edks {
		n := k.aead.NonceSize()
		if edk.ProviderInfo != k.arn || len(edk.Ciphertext) < n {
			continue
		}
		if dk, err := k.aead.Open(nil, edk.Ciphertext[:n], edk.Ciphertext[n:], nil); err == nil {
			return dk, nil
		}
	}
	return nil, esdk.ErrNoDataKey
}

func Example() {
	ctx := context.Background()
	kr := newLocalKeyring()

	var msg bytes.Buffer
	w, err := esdk.NewEncrypter(ctx, &msg, kr, esdk.EncryptOptions{
		EncryptionContext: map[string]string{"purpose": "example"},
	})
	if err != nil {
		panic(err)
	}
	io.WriteString(w, "attack at dawn\n")
	if err := w.Close(); err != nil { // writes the final frame
		panic(err)
	}

	r, h, err := esdk.NewDecrypter(ctx, &msg, kr, esdk.DecryptOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(h.Suite, h.EncryptionContext["purpose"], h.EncryptedDataKeys[0].ProviderInfo)
	// Use the plaintext only once io.Copy has returned without error.
	if _, err := io.Copy(os.Stdout, r); err != nil {
		panic(err)
	}
	// Output:
	// ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY example arn:aws:kms:us-east-1:111122223333:key/example
	// attack at dawn
}

func ExampleNewDecrypter_tampered() {
	ctx := context.Background()
	kr := newLocalKeyring()
	var msg bytes.Buffer
	w, _ := esdk.NewEncrypter(ctx, &msg, kr, esdk.EncryptOptions{})
	io.WriteString(w, "attack at dawn")
	w.Close()
	b := msg.Bytes()
	b[len(b)-1] ^= 1 // the last byte of the final frame's tag

	r, _, err := esdk.NewDecrypter(ctx, bytes.NewReader(b), kr, esdk.DecryptOptions{})
	if err != nil {
		panic(err)
	}
	_, err = io.ReadAll(r)
	fmt.Println(errors.Is(err, esdk.ErrAuthentication), err)
	// Output: true esdk: message authentication failed
}
