package service_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
)

// A stored record that does not decode does not keep a service from
// starting: binding the records stored without principal ids logs it and
// leaves it for the operations that read it to report.
func TestBindingAtStartSkipsACorruptRecord(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"key/us-east-1/00000000-0000-0000-0000-000000000bad", "grant/us-east-1/00000000-0000-0000-0000-000000000bad/ab"} {
		err := f.st.Update(f.ctx, func(tx store.Tx) error {
			return tx.Put([]byte(name), []byte(`{"policy":"arn:aws:iam::111122223333:user/alice"`))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var logged bytes.Buffer
	dir := identity.New(identity.Config{Store: f.st, RootKey: f.rk, Region: region})
	f.newService(service.Config{PrincipalID: dir.PrincipalID, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if n := strings.Count(logged.String(), "left unbound"); n != 2 {
		t.Fatalf("%d records logged as left unbound, want the key and the grant:\n%s", n, logged.String())
	}
}
