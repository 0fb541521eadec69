package fault_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/openkms/kms/internal/fault"
)

func TestClassesMatchThroughWrapping(t *testing.T) {
	err := fmt.Errorf("while doing x: %w", fault.Newf(fault.NotFound, "Key '%s' does not exist", "k"))
	if !fault.Is(err, fault.NotFound) || fault.Is(err, fault.Disabled) {
		t.Fatalf("Is: wrong class for %v", err)
	}
	if !errors.Is(err, &fault.Error{Code: fault.NotFound}) {
		t.Fatal("errors.Is does not match the same class")
	}
	if got := fault.CodeOf(err); got != fault.NotFound {
		t.Fatalf("CodeOf = %d", got)
	}
	if err.Error() != "while doing x: Key 'k' does not exist" {
		t.Fatalf("message %q", err.Error())
	}
}

func TestPlainErrorsAreInternal(t *testing.T) {
	err := errors.New("disk on fire")
	if _, ok := fault.As(err); ok || fault.CodeOf(err) != fault.Internal {
		t.Fatal("a plain error is not a domain error")
	}
}

// A message may hold %.
func TestNewKeepsPercent(t *testing.T) {
	if got := fault.New(fault.Validation, "100% sure").Message; got != "100% sure" {
		t.Fatalf("message %q", got)
	}
}
