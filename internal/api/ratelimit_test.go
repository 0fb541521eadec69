package api_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/identity"
)

// An account past its limit stays throttled whatever the console asks in
// its name: a call naming a service the API does not have takes no bucket
// of its own, so that a session cannot fill the table of buckets until it
// is cleared, which would give every account, its own included, a fresh
// burst.
func TestUnknownConsoleServiceTakesNoBucket(t *testing.T) {
	h, _ := benchHandler(t)
	handler := h.(*api.Handler).WithRateLimit(0.001, 1) // no token comes back during the test
	root := &identity.Principal{Type: identity.TypeRoot, Account: "111122223333", ARN: identity.RootARN("111122223333"), UserID: "111122223333"}
	req := httptest.NewRequest(http.MethodPost, "/console/api/call", nil)
	call := func(service, op string) error {
		_, err := handler.Invoke(req, api.Call{Principal: root, UserAgent: "openkms-console/1", Service: service, Operation: op, Input: json.RawMessage(`{}`)})
		return err
	}
	errType := func(err error) string {
		var ce *api.CallError
		if errors.As(err, &ce) {
			return ce.Type
		}
		return ""
	}
	if err := call(api.ServiceKMS, "ListKeys"); err != nil {
		t.Fatalf("the call within the burst: %v", err)
	}
	if got := errType(call(api.ServiceKMS, "ListKeys")); got != "ThrottlingException" {
		t.Fatalf("the call past the burst: %q, want ThrottlingException", got)
	}
	// More distinct names than the limiter keeps buckets for.
	for i := range 100_001 {
		if got := errType(call("svc"+strconv.Itoa(i), "ListKeys")); got != "UnknownOperationException" {
			t.Fatalf("a call to an unknown service: %q, want UnknownOperationException", got)
		}
	}
	if got := errType(call(api.ServiceKMS, "ListKeys")); got != "ThrottlingException" {
		t.Errorf("after calls to unknown services, the account's KMS call: %q, want ThrottlingException", got)
	}
}
