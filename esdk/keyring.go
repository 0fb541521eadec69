package esdk

import (
	"context"
	"errors"
)

// ProviderIDAWSKMS is the key provider ID of data keys encrypted by AWS KMS
// (or by this service). The provider info of such a key is the ARN of the
// KMS key that encrypted it.
const ProviderIDAWSKMS = "aws-kms"

// EncryptedDataKey is one encryption of a message's data key, as stored in
// the message header.
type EncryptedDataKey struct {
	// ProviderID names the kind of key that encrypted the data key,
	// ProviderIDAWSKMS for a KMS key.
	ProviderID string
	// ProviderInfo says which key of that kind: for KMS, the key ARN. The
	// format calls it bytes; a Go string holds any bytes.
	ProviderInfo string
	// Ciphertext is the encrypted data key: for KMS, the CiphertextBlob.
	Ciphertext []byte
}

// Keyring gets and unwraps data keys. The package calls it once per message,
// from the goroutine that calls NewEncrypter or NewDecrypter; it need not be
// safe for concurrent use unless the caller shares it between goroutines.
//
// The encryption context passed to both methods is the message's full
// context, including the reserved "aws-crypto-public-key" pair of signed
// suites: a KMS keyring passes it to KMS as the EncryptionContext, exactly as
// the official AWS Encryption SDKs do, or their messages will not decrypt
// here nor ours there. The keyring must not modify it.
type Keyring interface {
	// GenerateDataKey returns a fresh data key of suite.DataKeyLength()
	// bytes and its encryption under every key of the keyring (at least
	// one). Each ProviderID, ProviderInfo and Ciphertext must fit in 65535
	// bytes.
	GenerateDataKey(ctx context.Context, suite Suite, ec map[string]string) (plaintext []byte, edks []EncryptedDataKey, err error)

	// DecryptDataKey returns the data key from any of edks it can decrypt.
	// It returns an error wrapping ErrNoDataKey when it can decrypt none of
	// them. The returned key is checked against the header's commitment
	// and authentication tag, so a keyring need not authenticate it; a key
	// of another length than suite.DataKeyLength() fails the message
	// before it is used, but a keyring that can tell should skip such a
	// key and try the next.
	DecryptDataKey(ctx context.Context, suite Suite, edks []EncryptedDataKey, ec map[string]string) ([]byte, error)
}

// Errors. Every failure to authenticate a message, whatever its cause, is
// ErrAuthentication; the others describe a message that was never going to
// decrypt, or the caller's configuration.
var (
	// ErrAuthentication is returned for a message that fails
	// authentication: a wrong header tag or key commitment, a frame that
	// does not verify, frames missing, reordered, duplicated or truncated,
	// bytes after the end of the message, or a bad signature. It never
	// says which check failed.
	ErrAuthentication = errors.New("esdk: message authentication failed")

	// ErrMalformedHeader wraps every reason a message header could not be
	// parsed; the header has not been authenticated at that point.
	ErrMalformedHeader = errors.New("esdk: malformed message header")

	// ErrNonCommitting is what a NonCommittingError matches: a message in
	// a suite without key commitment when DecryptOptions.AllowNonCommitting
	// is false.
	ErrNonCommitting = errors.New("esdk: message uses an algorithm suite without key commitment")

	// ErrTooManyEncryptedDataKeys is returned, before any key is used, for a
	// message with more encrypted data keys than
	// DecryptOptions.MaxEncryptedDataKeys.
	ErrTooManyEncryptedDataKeys = errors.New("esdk: message has too many encrypted data keys")

	// ErrNoDataKey is what a Keyring's DecryptDataKey wraps when it can
	// decrypt none of the message's encrypted data keys.
	ErrNoDataKey = errors.New("esdk: no encrypted data key could be decrypted")
)
