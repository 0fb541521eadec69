package identity_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/openkms/kms/internal/fault"
)

// Identity's failures are domain errors of their class, through wrapping.
func TestErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, notFound := f.d.GetUser(f.ctx, f.root1, "ghost")
	wrapped := fmt.Errorf("calling IAM: %w", notFound)
	for _, tc := range []struct {
		name string
		err  error
		code fault.Code
		is   bool
	}{
		{"a returned error is of its class", notFound, fault.NoSuchEntity, true},
		{"wrapped, too", wrapped, fault.NoSuchEntity, true},
		{"not of another class", notFound, fault.AccessDenied, false},
		{"not internal", notFound, fault.Internal, false},
		{"a plain error is of no class", errors.New("The user with name ghost cannot be found."), fault.NoSuchEntity, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(tc.err, &fault.Error{Code: tc.code}); got != tc.is {
				t.Fatalf("errors.Is(%v, class %d) = %v, want %v", tc.err, tc.code, got, tc.is)
			}
		})
	}
	e, ok := fault.As(wrapped)
	if !ok || e.Code != fault.NoSuchEntity || e.Error() != "The user with name ghost cannot be found." {
		t.Fatalf("fault.As(wrapped) = %v, %v", e, ok)
	}
}
