package keyrepo_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// scanFailing is a transaction whose scans fail with err.
type scanFailing struct {
	store.Tx
	err error
}

func (tx scanFailing) Scan([]byte, []byte, func(k, v []byte) (bool, error)) error { return tx.err }

// A key AsRecorded makes reads its alias names in the change's
// transaction, and says when that read failed: a decision on
// kms:ResourceAliases must not take a failed read for a key with no
// alias.
func TestAsRecordedAliasNames(t *testing.T) {
	f := newFixture(t, keyrepo.Config{})
	rec := f.newKey(acctA, keys.SymmetricDefault)
	f.update(func(tx store.Tx) error {
		return tx.Put(keyrepo.KeyAliasKey(region, rec.ID, "alias/app"), nil)
	})
	k, err := f.repo.Load(f.ctx, region, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := k.AliasNames(); ok {
		t.Fatal("a cached key holds alias names")
	}
	f.update(func(tx store.Tx) error {
		recorded, _ := f.repo.AsRecorded(tx, k, &rec)
		names, ok, err := recorded.AliasNames()
		if !ok || err != nil || !slices.Equal(names, []string{"alias/app"}) {
			t.Errorf("AliasNames = %q, %v, %v; want [alias/app]", names, ok, err)
		}
		readErr := errors.New("the database is not reachable")
		failed, _ := f.repo.AsRecorded(scanFailing{tx, readErr}, k, &rec)
		if _, ok, err := failed.AliasNames(); !ok || err != readErr {
			t.Errorf("AliasNames of a failed read: %v, %v; want its error", ok, err)
		}
		return nil
	})
}
