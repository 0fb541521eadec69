package identity

import "github.com/openkms/kms/internal/fault"

// Failures are *fault.Error values (the one domain error type, shared with
// service); the protocol layer renders each in its own protocol's words
// (KMS's JSON exceptions, IAM's and STS's XML error codes). The messages
// are AWS's.

func errf(c fault.Code, format string, args ...any) *fault.Error {
	return fault.Newf(c, format, args...)
}

var (
	errInvalidToken = &fault.Error{Code: fault.InvalidClientTokenID, Message: "The security token included in the request is invalid."}
	errBadSignature = &fault.Error{Code: fault.SignatureDoesNotMatch, Message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	errNoAuth       = &fault.Error{Code: fault.MissingAuthenticationToken, Message: "Missing Authentication Token"}
	errExpiredToken = &fault.Error{Code: fault.ExpiredToken, Message: "The security token included in the request is expired"}
)
