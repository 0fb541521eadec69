package main_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"
)

// TestKeyQuotaFlag: --key-quota bounds the keys of an account in a region
// in the built server: the CreateKey past it gets LimitExceededException.
func TestKeyQuotaFlag(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), baseEnv(), "--dev", "--key-quota", "1")
	c := s.client(t)
	ctx := context.Background()
	if _, err := c.CreateKey(ctx, &kms.CreateKeyInput{}); err != nil {
		t.Fatalf("the first CreateKey: %v", err)
	}
	_, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "LimitExceededException" {
		t.Fatalf("the CreateKey past --key-quota 1: %v, want LimitExceededException", err)
	}
}
