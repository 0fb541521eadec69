package console_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/store"
)

// panickingStore panics in Update while armed, as a bug below the
// protocol layer would.
type panickingStore struct {
	store.Store
	armed *atomic.Bool
}

func (s panickingStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	if s.armed.Load() {
		panic("injected fault")
	}
	return s.Store.Update(ctx, fn)
}

// TestPanicInAConsoleCall: a console call that panics is answered with
// the API's internal error, not a dropped connection, and recorded with
// it, as a signed call is; the console goes on serving.
func TestPanicInAConsoleCall(t *testing.T) {
	t.Parallel()
	var armed atomic.Bool
	e := newEnv(t, func(c *identity.Config) { c.Store = panickingStore{Store: c.Store, armed: &armed} })
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)

	armed.Store(true)
	status, out := b.post("call/iam/CreateUser", map[string]string{"UserName": "carol"})
	armed.Store(false)
	if status != http.StatusInternalServerError || out["__type"] != "ServiceFailure" {
		t.Fatalf("CreateUser that panicked: %d %v, want 500 ServiceFailure", status, out)
	}
	if ev := e.rec.last(); ev == nil || ev.Operation != "CreateUser" || ev.ErrorCode != "ServiceFailure" {
		t.Fatalf("record of the call that panicked: %+v", ev)
	}
	if status, out := b.post("call/iam/CreateUser", map[string]string{"UserName": "carol"}); status != http.StatusOK {
		t.Fatalf("CreateUser after the panic: %d %v", status, out)
	}
}

// panickingReads panics in View while armed: a session's check reads
// its principal from the store.
type panickingReads struct {
	store.Store
	armed *atomic.Bool
}

func (s panickingReads) View(ctx context.Context, fn func(store.Tx) error) error {
	if s.armed.Load() {
		panic("injected fault")
	}
	return s.Store.View(ctx, fn)
}

// TestPanicInASessionCheck: a request whose session's check, which the
// console makes itself rather than through the API's guard, panics is
// answered with the internal error as JSON, not a dropped connection;
// the console goes on serving.
func TestPanicInASessionCheck(t *testing.T) {
	t.Parallel()
	var armed atomic.Bool
	e := newEnv(t, func(c *identity.Config) { c.Store = panickingReads{Store: c.Store, armed: &armed} })
	b := e.browser()
	b.signInWithKey(e.creds.ID, e.creds.Secret)

	armed.Store(true)
	status, out := b.post("session", nil)
	armed.Store(false)
	if status != http.StatusInternalServerError || out["__type"] != "InternalError" {
		t.Fatalf("session check that panicked: %d %v, want 500 InternalError", status, out)
	}
	if status, out := b.post("session", nil); status != http.StatusOK {
		t.Fatalf("session after the panic: %d %v", status, out)
	}
}
