package service

import "github.com/openkms/kms/internal/fault"

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
)
