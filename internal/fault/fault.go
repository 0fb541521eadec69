// Package fault is the one domain error type of the layers below the wire
// (identity and service): a class and the message a client reads. Each
// protocol maps a class to its own error type and status in exactly one
// place (internal/api); the domain never speaks of HTTP or of the wire's
// names for its errors.
package fault

import (
	"errors"
	"fmt"
)

// Code classifies a failure. Most are named after the AWS KMS exception
// they become; the authentication and IAM classes after IAM's codes.
type Code int

// The failure classes.
const (
	Internal Code = iota
	Validation
	NotFound
	Disabled
	InvalidState
	InvalidCiphertext
	IncorrectKey
	InvalidKeyUsage
	AlreadyExists
	LimitExceeded
	UnsupportedOperation
	InvalidAliasName
	InvalidArn
	InvalidMarker
	Tag
	DryRun
	NotAuthorized
	AccessDenied
	MalformedPolicyDocument
	InvalidGrantToken
	IncorrectKeyMaterial
	InvalidImportToken
	ExpiredImportToken
	Conflict
	InvalidGrantID
	InvalidSignature
	InvalidMac
	CustomKeyStoreNotFound
	CloudHsmClusterNotFound
	XksProxyUriUnreachable

	// Authentication (SigV4, access keys, session tokens).
	MissingAuthenticationToken
	IncompleteSignature
	InvalidClientTokenID // unknown or inactive access key, bad session token
	SignatureDoesNotMatch
	ExpiredToken

	// IAM entities.
	NoSuchEntity
	EntityAlreadyExists
	DeleteConflict
	PasswordPolicyViolation
)

// Error is a domain error: a class and the message a client should read.
// Errors of the same Code match with errors.Is.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("error class %d", e.Code)
	}
	return e.Message
}

// Is reports whether target is an *Error of the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// New returns an Error of class c with message msg.
func New(c Code, msg string) *Error { return &Error{Code: c, Message: msg} }

// Newf returns an Error of class c whose message is formatted as fmt does;
// without args, format is the message as it stands.
func Newf(c Code, format string, args ...any) *Error {
	if len(args) == 0 {
		return New(c, format)
	}
	return New(c, fmt.Sprintf(format, args...))
}

// As returns err as a domain error, and false if it is none (a failure
// whose text clients must not see).
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// CodeOf is err's class: Internal for anything that is not a domain error.
func CodeOf(err error) Code {
	if e, ok := As(err); ok {
		return e.Code
	}
	return Internal
}

// Is reports whether err is a domain error of class c.
func Is(err error, c Code) bool {
	e, ok := As(err)
	return ok && e.Code == c
}
