package api

import (
	"errors"
	"net/http"

	"github.com/openkms/kms/internal/identity"
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
	service.CodeInvalidGrantID:          "InvalidGrantIdException",
	service.CodeInvalidSignature:        "KMSInvalidSignatureException",
	service.CodeInvalidMac:              "KMSInvalidMacException",
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
	if ie, ok := identity.AsError(err); ok {
		if typ, ok := jsonIdentityTypes[ie.Code]; ok {
			return http.StatusBadRequest, typ, ie.Message
		}
		return http.StatusInternalServerError, "KMSInternalException", "An internal error occurred. Retry the request."
	}
	e := service.AsError(err)
	typ, ok := wireTypes[e.Code]
	if !ok || e.Code == service.CodeInternal {
		return http.StatusInternalServerError, "KMSInternalException", "An internal error occurred. Retry the request."
	}
	return http.StatusBadRequest, typ, e.Message
}

// jsonIdentityTypes names authentication failures as AWS JSON services do.
var jsonIdentityTypes = map[identity.Code]string{
	identity.CodeMissingAuthenticationToken: "MissingAuthenticationTokenException",
	identity.CodeIncompleteSignature:        "IncompleteSignatureException",
	identity.CodeInvalidClientTokenID:       "UnrecognizedClientException",
	identity.CodeSignatureDoesNotMatch:      "InvalidSignatureException",
	identity.CodeExpiredToken:               "ExpiredTokenException",
	identity.CodeAccessDenied:               "AccessDeniedException",
}

// queryCodes names identity failures as IAM and STS do, with their statuses.
var queryCodes = map[identity.Code]struct {
	status int
	code   string
}{
	identity.CodeMissingAuthenticationToken: {http.StatusForbidden, "MissingAuthenticationToken"},
	identity.CodeIncompleteSignature:        {http.StatusBadRequest, "IncompleteSignature"},
	identity.CodeInvalidClientTokenID:       {http.StatusForbidden, "InvalidClientTokenId"},
	identity.CodeSignatureDoesNotMatch:      {http.StatusForbidden, "SignatureDoesNotMatch"},
	identity.CodeExpiredToken:               {http.StatusBadRequest, "ExpiredToken"},
	identity.CodeAccessDenied:               {http.StatusForbidden, "AccessDenied"},
	identity.CodeNoSuchEntity:               {http.StatusNotFound, "NoSuchEntity"},
	identity.CodeEntityAlreadyExists:        {http.StatusConflict, "EntityAlreadyExists"},
	identity.CodeDeleteConflict:             {http.StatusConflict, "DeleteConflict"},
	identity.CodeLimitExceeded:              {http.StatusConflict, "LimitExceeded"},
	identity.CodeMalformedPolicyDocument:    {http.StatusBadRequest, "MalformedPolicyDocument"},
	identity.CodeValidation:                 {http.StatusBadRequest, "ValidationError"},
}

// queryWireError is wireError for the IAM and STS query protocol.
func queryWireError(err error) (status int, code, message string) {
	var qe *queryError
	if errors.As(err, &qe) {
		return qe.status, qe.code, qe.message
	}
	var pe *protocolError
	if errors.As(err, &pe) {
		if pe.status == http.StatusRequestEntityTooLarge {
			return pe.status, "RequestEntityTooLarge", pe.message
		}
		if pe == errBodiesBusy {
			return pe.status, "Throttling", "Rate exceeded"
		}
		if pe.status >= 500 {
			return pe.status, "ServiceFailure", pe.message
		}
		return pe.status, "MalformedInput", pe.message
	}
	if ie, ok := identity.AsError(err); ok {
		if c, ok := queryCodes[ie.Code]; ok {
			return c.status, c.code, ie.Message
		}
	}
	return http.StatusInternalServerError, "ServiceFailure", "An internal error occurred. Retry the request."
}
