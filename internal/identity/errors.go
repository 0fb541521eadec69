package identity

import (
	"errors"
	"fmt"
)

// Code classifies an identity failure. The protocol layer renders each in
// its own protocol's words (KMS's JSON exceptions, IAM's and STS's XML error
// codes); the messages are AWS's.
type Code int

const (
	CodeInternal Code = iota
	CodeMissingAuthenticationToken
	CodeIncompleteSignature
	CodeInvalidClientTokenID // unknown or inactive access key, bad session token
	CodeSignatureDoesNotMatch
	CodeExpiredToken
	CodeAccessDenied
	CodeNoSuchEntity
	CodeEntityAlreadyExists
	CodeDeleteConflict
	CodeLimitExceeded
	CodeMalformedPolicyDocument
	CodeValidation
)

// Error is an identity failure with the message a client reads.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is matches errors of the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrMissingAuthenticationToken = &Error{Code: CodeMissingAuthenticationToken}
	ErrIncompleteSignature        = &Error{Code: CodeIncompleteSignature}
	ErrInvalidClientTokenID       = &Error{Code: CodeInvalidClientTokenID}
	ErrSignatureDoesNotMatch      = &Error{Code: CodeSignatureDoesNotMatch}
	ErrExpiredToken               = &Error{Code: CodeExpiredToken}
	ErrAccessDenied               = &Error{Code: CodeAccessDenied}
	ErrNoSuchEntity               = &Error{Code: CodeNoSuchEntity}
	ErrEntityAlreadyExists        = &Error{Code: CodeEntityAlreadyExists}
	ErrDeleteConflict             = &Error{Code: CodeDeleteConflict}
	ErrLimitExceeded              = &Error{Code: CodeLimitExceeded}
	ErrMalformedPolicyDocument    = &Error{Code: CodeMalformedPolicyDocument}
	ErrValidation                 = &Error{Code: CodeValidation}
)

func errf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error; anything else is internal.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

var (
	errInvalidToken = &Error{Code: CodeInvalidClientTokenID, Message: "The security token included in the request is invalid."}
	errBadSignature = &Error{Code: CodeSignatureDoesNotMatch, Message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."}
	errNoAuth       = &Error{Code: CodeMissingAuthenticationToken, Message: "Missing Authentication Token"}
	errExpiredToken = &Error{Code: CodeExpiredToken, Message: "The security token included in the request is expired"}
)
