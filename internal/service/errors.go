package service

import (
	"errors"
	"fmt"
)

// Code classifies a failure. The protocol layer maps each Code to the AWS
// error type and HTTP status in exactly one place; the service never speaks
// of either.
type Code int

// The failure classes, named after the AWS KMS exceptions they become.
const (
	CodeInternal Code = iota
	CodeValidation
	CodeNotFound
	CodeDisabled
	CodeInvalidState
	CodeInvalidCiphertext
	CodeIncorrectKey
	CodeInvalidKeyUsage
	CodeAlreadyExists
	CodeLimitExceeded
	CodeUnsupportedOperation
	CodeInvalidAliasName
	CodeInvalidArn
	CodeInvalidMarker
	CodeTag
	CodeDryRun
	CodeNotAuthorized
	CodeAccessDenied
	CodeMalformedPolicyDocument
	CodeInvalidGrantToken
	CodeIncorrectKeyMaterial
	CodeInvalidImportToken
	CodeExpiredImportToken
	CodeConflict
	CodeInvalidGrantID
	CodeInvalidSignature
	CodeInvalidMac
)

// Error is a domain error: a class and the message a client should read.
// Errors of the same Code match with errors.Is, so the sentinels below can
// be used to test for a class.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("kms error %d", e.Code)
	}
	return e.Message
}

// Is reports whether target is an *Error of the same Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrInternal                = &Error{Code: CodeInternal}
	ErrValidation              = &Error{Code: CodeValidation}
	ErrNotFound                = &Error{Code: CodeNotFound}
	ErrDisabled                = &Error{Code: CodeDisabled}
	ErrInvalidState            = &Error{Code: CodeInvalidState}
	ErrInvalidCiphertext       = &Error{Code: CodeInvalidCiphertext}
	ErrIncorrectKey            = &Error{Code: CodeIncorrectKey}
	ErrInvalidKeyUsage         = &Error{Code: CodeInvalidKeyUsage}
	ErrAlreadyExists           = &Error{Code: CodeAlreadyExists}
	ErrLimitExceeded           = &Error{Code: CodeLimitExceeded}
	ErrUnsupportedOperation    = &Error{Code: CodeUnsupportedOperation}
	ErrInvalidMarker           = &Error{Code: CodeInvalidMarker}
	ErrTag                     = &Error{Code: CodeTag}
	ErrDryRun                  = &Error{Code: CodeDryRun}
	ErrNotAuthorized           = &Error{Code: CodeNotAuthorized}
	ErrMalformedPolicyDocument = &Error{Code: CodeMalformedPolicyDocument}
	ErrIncorrectKeyMaterial    = &Error{Code: CodeIncorrectKeyMaterial}
	ErrInvalidImportToken      = &Error{Code: CodeInvalidImportToken}
	ErrExpiredImportToken      = &Error{Code: CodeExpiredImportToken}
)

func newErr(c Code, format string, args ...any) *Error {
	if len(args) == 0 {
		return &Error{Code: c, Message: format}
	}
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as a domain error. Anything that is not one already is
// an internal error, whose text is not shown to clients.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal}
}

// Messages AWS KMS uses verbatim (reference §4).
func errDisabled(arn string) error { return newErr(CodeDisabled, "%s is disabled.", arn) }
func errPendingDeletion(arn string) error {
	return newErr(CodeInvalidState, "%s is pending deletion.", arn)
}
func errPendingImport(arn string) error {
	return newErr(CodeInvalidState, "%s is pending import.", arn)
}
func errKeyDoesNotExist(arn string) error {
	return newErr(CodeNotFound, "Key '%s' does not exist", arn)
}
func errInvalidKeyID(id string) error { return newErr(CodeNotFound, "Invalid keyId '%s'", id) }
func errOrigin(arn, origin string) error {
	return newErr(CodeUnsupportedOperation, "%s origin is %s which is not valid for this operation.", arn, origin)
}
func errKeyUsage(arn, usage, op string) error {
	return newErr(CodeInvalidKeyUsage, "%s key usage is %s which is not valid for %s.", arn, usage, op)
}

var (
	errInvalidCiphertext = &Error{Code: CodeInvalidCiphertext}
	errIncorrectKey      = newErr(CodeIncorrectKey, "The key ID in the request does not identify a CMK that can perform this operation.")
	errDryRun            = newErr(CodeDryRun, "The request would have succeeded, but the DryRun option is set.")
)
