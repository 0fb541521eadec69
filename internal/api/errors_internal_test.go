package api

import (
	"errors"
	"net/http"
	"testing"

	"github.com/openkms/kms/internal/fault"
)

// Every domain error class has an AWS error type, and client errors are 400
// as real AWS KMS answers them.
func TestWireErrorCoversEveryCode(t *testing.T) {
	for c := fault.Internal; c <= fault.ExpiredToken; c++ {
		status, typ, _ := wireError(&fault.Error{Code: c, Message: "m"})
		if typ == "" {
			t.Errorf("code %d has no wire type", c)
		}
		want := http.StatusBadRequest
		if c == fault.Internal {
			want = http.StatusInternalServerError
		}
		if status != want {
			t.Errorf("code %d (%s): status %d, want %d", c, typ, status, want)
		}
	}
}

func TestWireErrorHidesInternalDetail(t *testing.T) {
	status, typ, msg := wireError(errors.New("open /var/lib/kms/kms.db: disk on fire"))
	if status != http.StatusInternalServerError || typ != "KMSInternalException" || msg == "" || msg == "open /var/lib/kms/kms.db: disk on fire" {
		t.Fatalf("wireError of a plain error = %d %s %q", status, typ, msg)
	}
	_, _, msg = wireError(&fault.Error{Code: fault.Internal, Message: "secret detail"})
	if msg == "secret detail" {
		t.Fatal("an internal error's message reached the client")
	}
	_, _, msg = wireError(&fault.Error{Code: fault.InvalidCiphertext})
	if msg != "" {
		t.Fatalf("InvalidCiphertextException carries message %q, want none", msg)
	}
}

// Every identity class has an IAM/STS code.
func TestQueryWireErrorCoversIdentityCodes(t *testing.T) {
	for _, c := range []fault.Code{fault.MissingAuthenticationToken, fault.IncompleteSignature, fault.InvalidClientTokenID,
		fault.SignatureDoesNotMatch, fault.ExpiredToken, fault.AccessDenied, fault.NoSuchEntity, fault.EntityAlreadyExists,
		fault.DeleteConflict, fault.LimitExceeded, fault.MalformedPolicyDocument, fault.Validation} {
		status, code, msg := queryWireError(&fault.Error{Code: c, Message: "m"})
		if status >= 500 || code == "ServiceFailure" || msg != "m" {
			t.Errorf("class %d: %d %s %q", c, status, code, msg)
		}
	}
}
