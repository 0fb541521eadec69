package api

import (
	"errors"
	"net/http"
	"testing"

	"github.com/openkms/kms/internal/service"
)

// Every domain error class has an AWS error type, and client errors are 400
// as real AWS KMS answers them.
func TestWireErrorCoversEveryCode(t *testing.T) {
	for c := service.CodeInternal; c <= service.CodeInvalidMac; c++ {
		status, typ, _ := wireError(&service.Error{Code: c, Message: "m"})
		if typ == "" {
			t.Errorf("code %d has no wire type", c)
		}
		want := http.StatusBadRequest
		if c == service.CodeInternal {
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
	_, _, msg = wireError(&service.Error{Code: service.CodeInternal, Message: "secret detail"})
	if msg == "secret detail" {
		t.Fatal("an internal error's message reached the client")
	}
	_, _, msg = wireError(&service.Error{Code: service.CodeInvalidCiphertext})
	if msg != "" {
		t.Fatalf("InvalidCiphertextException carries message %q, want none", msg)
	}
}
