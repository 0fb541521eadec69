package api_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/fault"
)

// panickingTrail is a log file's trail whose reads panic, as a bug in
// reading a damaged file would: Digests from its panicAt-th call on
// (0: never), Records whenever records is set.
type panickingTrail struct {
	key     []byte
	panicAt int32
	records bool
	digests atomic.Int32
}

func (t *panickingTrail) Chains(context.Context) ([]string, error) { return []string{""}, nil }

func (t *panickingTrail) Records(context.Context, string, int64, int, int) ([]audit.Row, bool, error) {
	if t.records {
		panic("injected fault reading records")
	}
	return nil, false, nil
}

func (t *panickingTrail) Digests(context.Context, string, int64, int, int) ([]audit.Row, bool, error) {
	if n := t.digests.Add(1); t.panicAt > 0 && n >= t.panicAt {
		panic("injected fault reading digests")
	}
	return nil, false, nil
}

func (t *panickingTrail) PublicKey(context.Context, string) ([]byte, error) { return t.key, nil }

// TestVerifyTrailPanicIsAnInternalError: a read of the trail that panics
// while VerifyTrail checks it, whether in the caller's goroutine or in the
// one that reads the digests beside the check (where nothing else would
// recover it and the process would end), makes VerifyTrail return the
// internal error; the console, which calls it outside a signed call's
// guard, answers with it.
func TestVerifyTrailPanicIsAnInternalError(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for name, trail := range map[string]*panickingTrail{
		"digests read beside the check": {key: key, panicAt: 2},
		"digests read first":            {key: key, panicAt: 1},
		"records":                       {key: key, records: true},
	} {
		t.Run(name, func(t *testing.T) {
			h := api.NewHandler(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).WithTrailReader(trail)
			reports, err := h.VerifyTrail(context.Background())
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Code != fault.Internal {
				t.Fatalf("VerifyTrail with a read that panics: %v, %v; want the internal error", reports, err)
			}
		})
	}
}
