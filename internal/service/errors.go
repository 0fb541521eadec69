package service

import (
	"strings"

	"github.com/openkms/kms/internal/fault"
)

// Failures are *fault.Error values (the one domain error type, shared with
// identity); the protocol layer maps each class to the wire. The helpers
// below hold the messages AWS KMS uses verbatim (reference §4).

func newErr(c fault.Code, format string, args ...any) *fault.Error {
	return fault.Newf(c, format, args...)
}

// Messages AWS KMS uses verbatim (reference §4). Those of key states are
// keyrepo.State.Err, those of unknown keys keyrepo.ErrKeyDoesNotExist.
func errOrigin(arn, origin string) error {
	return newErr(fault.UnsupportedOperation, "%s origin is %s which is not valid for this operation.", arn, origin)
}
func errKeyUsage(arn, usage, op string) error {
	return newErr(fault.InvalidKeyUsage, "%s key usage is %s which is not valid for %s.", arn, usage, op)
}

var (
	errInvalidCiphertext = &fault.Error{Code: fault.InvalidCiphertext}
	errIncorrectKey      = newErr(fault.IncorrectKey, "The key ID in the request does not identify a CMK that can perform this operation.")
	errDryRun            = newErr(fault.DryRun, "The request would have succeeded, but the DryRun option is set.")
	// errCiphertextKey is what Decrypt and ReEncrypt answer when the KeyId
	// (or SourceKeyId) names a key that does not exist (reference §4.6).
	errCiphertextKey = newErr(fault.AccessDenied, "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.")
)

// keyMissing reports whether err is keyrepo's answer for a well-formed key
// id or key ARN that names no key (keyrepo.ErrKeyDoesNotExist), as opposed
// to a malformed identifier or an unknown alias.
func keyMissing(err error) bool {
	e, ok := fault.As(err)
	return ok && e.Code == fault.NotFound && strings.HasPrefix(e.Message, "Key '")
}
