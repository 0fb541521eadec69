package identity_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/openkms/kms/internal/identity"
)

func TestErrors(t *testing.T) {
	f := newFixture(t)
	_, notFound := f.d.GetUser(f.ctx, f.root1, "ghost")
	wrapped := fmt.Errorf("calling IAM: %w", notFound)
	for _, tc := range []struct {
		name     string
		err      error
		sentinel error
		is       bool
	}{
		{"a returned error is its code's sentinel", notFound, identity.ErrNoSuchEntity, true},
		{"wrapped, too", wrapped, identity.ErrNoSuchEntity, true},
		{"not another code's", notFound, identity.ErrAccessDenied, false},
		{"not the internal code's", notFound, &identity.Error{Code: identity.CodeInternal}, false},
		{"a plain error is no sentinel", errors.New("The user with name ghost cannot be found."), identity.ErrNoSuchEntity, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(tc.err, tc.sentinel); got != tc.is {
				t.Fatalf("errors.Is(%v, code %d) = %v, want %v", tc.err, tc.sentinel.(*identity.Error).Code, got, tc.is)
			}
		})
	}
	e, ok := identity.AsError(wrapped)
	if !ok || e.Code != identity.CodeNoSuchEntity || e.Error() != "The user with name ghost cannot be found." {
		t.Fatalf("AsError(wrapped) = %v, %v", e, ok)
	}
	if e, ok := identity.AsError(errors.New("disk on fire")); ok || e != nil {
		t.Fatalf("AsError of a plain error = %v, %v", e, ok)
	}
	if _, ok := identity.AsError(nil); ok {
		t.Fatal("AsError(nil) reports an error")
	}
	// Every sentinel has its own code.
	seen := map[identity.Code]bool{}
	for _, s := range []*identity.Error{identity.ErrMissingAuthenticationToken, identity.ErrIncompleteSignature, identity.ErrInvalidClientTokenID,
		identity.ErrSignatureDoesNotMatch, identity.ErrExpiredToken, identity.ErrAccessDenied, identity.ErrNoSuchEntity,
		identity.ErrEntityAlreadyExists, identity.ErrDeleteConflict, identity.ErrLimitExceeded, identity.ErrMalformedPolicyDocument, identity.ErrValidation} {
		if seen[s.Code] || s.Code == identity.CodeInternal {
			t.Fatalf("sentinel code %d reused", s.Code)
		}
		seen[s.Code] = true
	}
}
