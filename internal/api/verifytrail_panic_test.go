package api_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/openkms/kms/internal/api"
	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/identity"
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
	auditor := &identity.Principal{Type: identity.TypeRoot, Account: "111122223333", ARN: identity.RootARN("111122223333")}
	for name, trail := range map[string]*panickingTrail{
		"digests read beside the check": {key: key, panicAt: 2},
		"digests read first":            {key: key, panicAt: 1},
		"records":                       {key: key, records: true},
	} {
		t.Run(name, func(t *testing.T) {
			h := api.NewHandler(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).WithTrailReader(trail).WithAuditorAccounts(auditor.Account)
			reports, err := h.VerifyTrail(context.Background(), auditor)
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Code != fault.Internal {
				t.Fatalf("VerifyTrail with a read that panics: %v, %v; want the internal error", reports, err)
			}
		})
	}
}

// TestVerifyTrailOnlyForAuditors: the check reads and reports on every
// account's records, so only a principal who reads them all over the API
// may run it: not the root of an account that is not an auditor account,
// before anything of the trail is read.
func TestVerifyTrailOnlyForAuditors(t *testing.T) {
	trail := &panickingTrail{records: true, panicAt: 1} // any read fails the test's way
	h := api.NewHandler(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil))).WithTrailReader(trail).WithAuditorAccounts("111122223333")
	other := &identity.Principal{Type: identity.TypeRoot, Account: "444455556666", ARN: identity.RootARN("444455556666")}
	_, err := h.VerifyTrail(context.Background(), other)
	var ce *api.CallError
	if !errors.As(err, &ce) || ce.Type != "AccessDeniedException" || !strings.Contains(ce.Message, "arn:aws:iam::444455556666:root") {
		t.Fatalf("VerifyTrail by another account's root: %v, want AccessDeniedException", err)
	}
}
