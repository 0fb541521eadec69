package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/openkms/kms/internal/fault"
)

// protocolError is a failure of the request itself, found before it
// reaches the service: an unknown operation, a body that is not JSON; or
// errCallTimeout.
type protocolError struct {
	status  int
	typ     string
	message string
}

func (e *protocolError) Error() string { return e.typ + ": " + e.message }

// wireTypes names the AWS error type of each domain error class.
var wireTypes = map[fault.Code]string{
	fault.Internal:                "KMSInternalException",
	fault.Validation:              "ValidationException",
	fault.NotFound:                "NotFoundException",
	fault.Disabled:                "DisabledException",
	fault.InvalidState:            "KMSInvalidStateException",
	fault.InvalidCiphertext:       "InvalidCiphertextException",
	fault.IncorrectKey:            "IncorrectKeyException",
	fault.InvalidKeyUsage:         "InvalidKeyUsageException",
	fault.AlreadyExists:           "AlreadyExistsException",
	fault.LimitExceeded:           "LimitExceededException",
	fault.UnsupportedOperation:    "UnsupportedOperationException",
	fault.InvalidAliasName:        "InvalidAliasNameException",
	fault.InvalidArn:              "InvalidArnException",
	fault.InvalidMarker:           "InvalidMarkerException",
	fault.Tag:                     "TagException",
	fault.DryRun:                  "DryRunOperationException",
	fault.NotAuthorized:           "NotAuthorizedException",
	fault.AccessDenied:            "AccessDeniedException",
	fault.MalformedPolicyDocument: "MalformedPolicyDocumentException",
	fault.InvalidGrantToken:       "InvalidGrantTokenException",
	fault.IncorrectKeyMaterial:    "IncorrectKeyMaterialException",
	fault.InvalidImportToken:      "InvalidImportTokenException",
	fault.ExpiredImportToken:      "ExpiredImportTokenException",
	fault.Conflict:                "ConflictException",
	fault.InvalidGrantID:          "InvalidGrantIdException",
	fault.InvalidSignature:        "KMSInvalidSignatureException",
	fault.InvalidMac:              "KMSInvalidMacException",
	fault.CustomKeyStoreNotFound:  "CustomKeyStoreNotFoundException",
	fault.CloudHsmClusterNotFound: "CloudHsmClusterNotFoundException",
	fault.XksProxyUriUnreachable:  "XksProxyUriUnreachableException",
	// authentication, as AWS JSON services name it
	fault.MissingAuthenticationToken: "MissingAuthenticationTokenException",
	fault.IncompleteSignature:        "IncompleteSignatureException",
	fault.InvalidClientTokenID:       "UnrecognizedClientException",
	fault.SignatureDoesNotMatch:      "InvalidSignatureException",
	fault.ExpiredToken:               "ExpiredTokenException",
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
	e, ok := fault.As(err)
	if !ok {
		return http.StatusInternalServerError, "KMSInternalException", "An internal error occurred. Retry the request."
	}
	typ, known := wireTypes[e.Code]
	if !known || e.Code == fault.Internal {
		return http.StatusInternalServerError, "KMSInternalException", "An internal error occurred. Retry the request."
	}
	return http.StatusBadRequest, typ, e.Message
}

// queryCodes names identity failures as IAM and STS do, with their statuses.
var queryCodes = map[fault.Code]struct {
	status int
	code   string
}{
	fault.MissingAuthenticationToken: {http.StatusForbidden, "MissingAuthenticationToken"},
	fault.IncompleteSignature:        {http.StatusBadRequest, "IncompleteSignature"},
	fault.InvalidClientTokenID:       {http.StatusForbidden, "InvalidClientTokenId"},
	fault.SignatureDoesNotMatch:      {http.StatusForbidden, "SignatureDoesNotMatch"},
	fault.ExpiredToken:               {http.StatusForbidden, "ExpiredToken"},
	fault.AccessDenied:               {http.StatusForbidden, "AccessDenied"},
	fault.NoSuchEntity:               {http.StatusNotFound, "NoSuchEntity"},
	fault.EntityAlreadyExists:        {http.StatusConflict, "EntityAlreadyExists"},
	fault.DeleteConflict:             {http.StatusConflict, "DeleteConflict"},
	fault.PasswordPolicyViolation:    {http.StatusBadRequest, "PasswordPolicyViolation"},
	fault.LimitExceeded:              {http.StatusConflict, "LimitExceeded"},
	fault.MalformedPolicyDocument:    {http.StatusBadRequest, "MalformedPolicyDocument"},
	fault.Validation:                 {http.StatusBadRequest, "ValidationError"},
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
		if pe == errBodiesBusy || pe == errThrottled {
			return pe.status, "Throttling", "Rate exceeded"
		}
		if pe.status >= 500 {
			return pe.status, "ServiceFailure", pe.message
		}
		return pe.status, "MalformedInput", pe.message
	}
	if ie, ok := fault.As(err); ok {
		if c, ok := queryCodes[ie.Code]; ok {
			return c.status, c.code, ie.Message
		}
	}
	return http.StatusInternalServerError, "ServiceFailure", "An internal error occurred. Retry the request."
}

// The protocol errors: failures of the request itself, found before it
// reaches the domain.
var (
	errNotPost        = &protocolError{http.StatusBadRequest, "UnknownOperationException", "AWS KMS operations are called with POST."}
	errNoTarget       = &protocolError{http.StatusBadRequest, "UnknownOperationException", "The request has no X-Amz-Target header."}
	errNotJSONObject  = &protocolError{http.StatusBadRequest, "SerializationException", "The request body must be a JSON object."}
	errNotUTF8        = &protocolError{http.StatusBadRequest, "SerializationException", "The request body is not valid UTF-8 text."}
	errBodyUnreadable = &protocolError{http.StatusBadRequest, "SerializationException", "The request body could not be read."}
	errTooLarge       = errBodyTooLarge(MaxBodyBytes)
	errTrailNotServed = &protocolError{http.StatusBadRequest, "UnsupportedOperationException", "This server does not serve its audit trail."}
	errAuditFailed    = &protocolError{http.StatusInternalServerError, "KMSInternalException", "An internal error occurred. Retry the request."}
	// errNotServing answers as AWS does when a host fails: the SDKs retry
	// it, and a load balancer watching /readyz has moved on.
	errNotServing = &protocolError{http.StatusInternalServerError, "KMSInternalException", "An internal error occurred. Retry the request."}
	errThrottled  = &protocolError{http.StatusBadRequest, "ThrottlingException", "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."}
	// errBodiesBusy is errThrottled for a server out of memory for bodies.
	errBodiesBusy = &protocolError{http.StatusBadRequest, "ThrottlingException", "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."}
)

// errNoPrincipal refuses a front end's call that names no principal
// (Invoke).
var errNoPrincipal = &protocolError{http.StatusForbidden, "AccessDeniedException", "The call has no signed-in principal."}

// errBodyTooLarge refuses a body of more than maxBytes bytes.
func errBodyTooLarge(maxBytes int64) *protocolError {
	return bodyRefused(fmt.Sprintf("The request body exceeds %d bytes.", maxBytes))
}

func bodyRefused(reason string) *protocolError {
	return &protocolError{http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", reason}
}

func errUnknownOperation(target string) error {
	return &protocolError{http.StatusBadRequest, "UnknownOperationException", fmt.Sprintf("Unknown operation %q.", target)}
}

func errContentType(ct string) error {
	return &protocolError{http.StatusBadRequest, "SerializationException", fmt.Sprintf("Unsupported Content-Type %q: send application/x-amz-json-1.1.", ct)}
}

func errSerialization(msg string) error {
	return &protocolError{http.StatusBadRequest, "SerializationException", msg}
}

func errValidation(format string, args ...any) error {
	return &protocolError{http.StatusBadRequest, "ValidationException", fmt.Sprintf(format, args...)}
}

func errMalformedQuery(err error) error {
	return &queryError{http.StatusBadRequest, "MalformedQueryString", "The request body is not a valid form: " + err.Error()}
}

func errInvalidAction(action, version string) error {
	return &queryError{http.StatusBadRequest, "InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", action, version)}
}

// errCallTimeout answers a KMS call that failed on the server's side
// once its time (WithCallTimeout) ran out: the store did not answer in
// time. As AWS KMS answers when a dependency times out; SDKs retry it.
var errCallTimeout = &protocolError{status: http.StatusServiceUnavailable, typ: "DependencyTimeoutException",
	message: "The system timed out while trying to fulfill the request. You can retry the request."}

// callError is err as the KMS JSON protocol answers it, or as the IAM
// and STS query protocol does (query), for a front end that calls
// through Invoke or ReadBody.
func callError(err error, query bool) *CallError {
	ce := &CallError{}
	if query {
		ce.Status, ce.Type, ce.Message = queryWireError(err)
	} else {
		ce.Status, ce.Type, ce.Message = wireError(err)
	}
	return ce
}

// The API's answers to failures another front end (the console) finds in
// requests it reads itself, so that it answers them as the API would,
// and names no AWS error type of its own.

// NotJSONObject answers a body that is not a JSON object.
func NotJSONObject() *CallError { return callError(errNotJSONObject, false) }

// CallTimedOut answers a request whose work on the server's side did not
// end within its time (WithCallTimeout).
func CallTimedOut() *CallError { return callError(errCallTimeout, false) }

// BodyRefused answers a body too large, or too slow, to read; reason is
// the message.
func BodyRefused(reason string) *CallError { return callError(bodyRefused(reason), false) }
