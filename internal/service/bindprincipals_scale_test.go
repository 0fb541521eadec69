package service_test

import (
	"context"
	"testing"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
)

// A start reads the mark of a store whose key policies and grants are
// bound already, not every key and grant again: the pass at each start
// would grow with the store (100,000 keys, grants by the thousand).
func TestStartOnABoundStoreReadsNoKeyOrGrant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ids := func(context.Context, string) (string, error) { return "AIDAEXAMPLE", nil }
	start := func() *service.Service {
		t.Helper()
		svc, err := service.New(service.Config{Store: e.st, RootKey: e.root, Region: "us-east-1", Now: e.clock.Now, PrincipalID: ids})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	svc := start()
	const keys = 40
	for range keys {
		out, err := svc.CreateKey(ctx, root, &kmsapi.CreateKeyInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.CreateGrant(ctx, root, &kmsapi.CreateGrantInput{KeyID: out.KeyMetadata.KeyID, GranteePrincipal: "arn:aws:iam::111122223333:user/alice",
			Operations: []string{"Decrypt"}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.reads(t, func() { start() }); n > 2 {
		t.Errorf("a start on a store of %d bound keys and grants read %d records, want its mark alone", keys, n)
	}
}

// A pass that leaves a record unbound (it does not decode) does not mark
// the store: the next start looks at every record again.
func TestStartLeavingARecordUnboundDoesNotMark(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.createKey(t)
	bad := keyrepo.GrantKey("us-east-1", id, "0000000000000000000000000000000000000000000000000000000000000000")
	if err := e.st.Update(ctx, func(tx store.Tx) error { return tx.Put(bad, []byte("{not json")) }); err != nil {
		t.Fatal(err)
	}
	ids := func(context.Context, string) (string, error) { return "AIDAEXAMPLE", nil }
	for i := range 2 {
		n := e.reads(t, func() {
			if _, err := service.New(service.Config{Store: e.st, RootKey: e.root, Region: "us-east-1", Now: e.clock.Now, PrincipalID: ids}); err != nil {
				t.Fatal(err)
			}
		})
		if n < 2 {
			t.Errorf("start %d read %d records: the store was marked bound with a grant left unbound", i+1, n)
		}
	}
}
