package sigv4

import (
	"net/http"
	"testing"
)

// canonicalKey's shortcuts are what net/http stores the headers under.
func TestCanonicalKey(t *testing.T) {
	for _, name := range []string{"content-type", "x-amz-date", "x-amz-target", "x-amz-content-sha256", "x-amz-security-token",
		"x-amz-user-agent", "amz-sdk-invocation-id", "amz-sdk-request", "x-amz-api-version", "x-custom-header", "host"} {
		if got, want := canonicalKey(name), http.CanonicalHeaderKey(name); got != want {
			t.Errorf("canonicalKey(%q) = %q, want %q", name, got, want)
		}
	}
}
