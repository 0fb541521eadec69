package e2e_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/openkms/kms/internal/store"
)

// panickingStore panics in Update while armed, as a bug below the
// protocol layer would: outside the store's own recovery, in the
// request's goroutine.
type panickingStore struct {
	store.Store
	armed atomic.Bool
}

func (s *panickingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if s.armed.Load() {
		panic("injected fault")
	}
	return s.Store.Update(ctx, fn)
}

// TestPanicInACallIsAnsweredAndRecorded: a call that panics gets AWS's
// internal error with its request id, not a dropped connection; its
// record is in the trail with that error (it may have changed something
// before it failed); and the server goes on serving. KMS, IAM and STS
// calls are each answered in their own protocol.
func TestPanicInACallIsAnsweredAndRecorded(t *testing.T) {
	t.Parallel()
	var ps *panickingStore
	e, logPath := newAuditedEnvWith(t, func(st store.Store) store.Store {
		ps = &panickingStore{Store: st}
		return ps
	})
	ctx := context.Background()
	id := e.newKey(t)
	assumer := e.assumerSTS(t)
	e.createRole(t, "panics", trustAccount)

	ps.armed.Store(true)
	_, kmsErr := e.client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/panics"), TargetKeyId: aws.String(id)})
	var ae smithy.APIError
	if !errors.As(kmsErr, &ae) || ae.ErrorCode() != "KMSInternalException" || httpStatus(kmsErr) != http.StatusInternalServerError {
		t.Fatalf("CreateAlias that panicked: %v (status %d), want KMSInternalException, 500", kmsErr, httpStatus(kmsErr))
	}
	kmsReq := errRequestID(t, kmsErr)
	// An IAM call is answered in its own protocol (XML), which its SDK
	// reads as ServiceFailure.
	_, iamErr := e.rootIAM().CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("panics")})
	if !errors.As(iamErr, &ae) || ae.ErrorCode() != "ServiceFailure" || httpStatus(iamErr) != http.StatusInternalServerError {
		t.Fatalf("CreateUser that panicked: %v (status %d), want ServiceFailure, 500", iamErr, httpStatus(iamErr))
	}
	iamReq := errRequestID(t, iamErr)
	_, stsErr := assumer.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARNOf("panics")), RoleSessionName: aws.String("s1")})
	if !errors.As(stsErr, &ae) || ae.ErrorCode() != "ServiceFailure" || httpStatus(stsErr) != http.StatusInternalServerError {
		t.Fatalf("AssumeRole that panicked: %v (status %d), want ServiceFailure, 500", stsErr, httpStatus(stsErr))
	}
	stsReq := errRequestID(t, stsErr)
	ps.armed.Store(false)

	// The server still serves, and nothing was made.
	e.createAlias(t, "alias/panics", id)
	if _, err := e.rootIAM().CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("panics")}); err != nil {
		t.Fatalf("CreateUser after the panic: %v", err)
	}

	recs, _ := auditRecords(t, logPath)
	found := map[string]string{}
	for _, r := range recs {
		found[r.RequestID] = r.EventName + " " + r.ErrorCode
	}
	for reqID, want := range map[string]string{kmsReq: "CreateAlias KMSInternalException", iamReq: "CreateUser ServiceFailure", stsReq: "AssumeRole ServiceFailure"} {
		got, ok := found[reqID]
		if !ok {
			t.Errorf("no record of the call that panicked (request %s, want %q)", reqID, want)
		} else if len(got) < len(want) || got[:len(want)] != want {
			t.Errorf("record of request %s: %q, want %q...", reqID, got, want)
		}
	}
}
