package api

import (
	"errors"
	"net/http"

	"github.com/openkms/kms/internal/service"
)

// protocolError is a failure of the request itself, found before it
// reaches the service: an unknown operation, a body that is not JSON.
type protocolError struct {
	status  int
	typ     string
	message string
}

func (e *protocolError) Error() string { return e.typ + ": " + e.message }

// wireTypes names the AWS error type of each domain error class.
var wireTypes = map[service.Code]string{
	service.CodeInternal:                "KMSInternalException",
	service.CodeValidation:              "ValidationException",
	service.CodeNotFound:                "NotFoundException",
	service.CodeDisabled:                "DisabledException",
	service.CodeInvalidState:            "KMSInvalidStateException",
	service.CodeInvalidCiphertext:       "InvalidCiphertextException",
	service.CodeIncorrectKey:            "IncorrectKeyException",
	service.CodeInvalidKeyUsage:         "InvalidKeyUsageException",
	service.CodeAlreadyExists:           "AlreadyExistsException",
	service.CodeLimitExceeded:           "LimitExceededException",
	service.CodeUnsupportedOperation:    "UnsupportedOperationException",
	service.CodeInvalidAliasName:        "InvalidAliasNameException",
	service.CodeInvalidArn:              "InvalidArnException",
	service.CodeInvalidMarker:           "InvalidMarkerException",
	service.CodeTag:                     "TagException",
	service.CodeDryRun:                  "DryRunOperationException",
	service.CodeNotAuthorized:           "NotAuthorizedException",
	service.CodeAccessDenied:            "AccessDeniedException",
	service.CodeMalformedPolicyDocument: "MalformedPolicyDocumentException",
	service.CodeInvalidGrantToken:       "InvalidGrantTokenException",
	service.CodeIncorrectKeyMaterial:    "IncorrectKeyMaterialException",
	service.CodeInvalidImportToken:      "InvalidImportTokenException",
	service.CodeExpiredImportToken:      "ExpiredImportTokenException",
	service.CodeConflict:                "ConflictException",
}

// wireError is the one place where an error becomes what a client sees: the
// HTTP status, the AWS error type (__type) and the message. Real AWS KMS
// answers every client error with 400 whatever its model declares
// (reference §1.4); only our own failures are 5xx, which SDKs retry.
// The text of an internal error is never shown.
func wireError(err error) (status int, typ, message string) {
	var pe *protocolError
	if errors.As(err, &pe) {
		return pe.status, pe.typ, pe.message
	}
	e := service.AsError(err)
	typ, ok := wireTypes[e.Code]
	if !ok || e.Code == service.CodeInternal {
		return http.StatusInternalServerError, "KMSInternalException", "An internal error occurred. Retry the request."
	}
	return http.StatusBadRequest, typ, e.Message
}
