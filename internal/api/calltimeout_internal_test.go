package api

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
)

// A call that failed on the server's side after its time ran out is
// answered DependencyTimeoutException (503); an answer about the request
// itself, and a call whose time has not run out, keep theirs.
func TestTimedOut(t *testing.T) {
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	internal := errors.New("pgstore: get: context deadline exceeded")
	notFound := fault.New(fault.NotFound, "Key 'k' does not exist")
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		want error
	}{
		{"internal error past the deadline", expired, internal, errCallTimeout},
		{"internal fault past the deadline", expired, &fault.Error{Code: fault.Internal}, errCallTimeout},
		{"client fault past the deadline", expired, notFound, notFound},
		{"protocol error past the deadline", expired, errThrottled, errThrottled},
		{"internal error, client gone", canceled, internal, internal},
		{"internal error in time", context.Background(), internal, internal},
		{"success past the deadline", expired, nil, nil},
	}
	for _, c := range cases {
		if got := timedOut(c.ctx, c.err); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	status, typ, msg := wireError(errCallTimeout)
	if status != http.StatusServiceUnavailable || typ != "DependencyTimeoutException" || msg != "The system timed out while trying to fulfill the request. You can retry the request." {
		t.Errorf("wireError(errCallTimeout) = %d %s %q", status, typ, msg)
	}
}
