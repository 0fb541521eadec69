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
