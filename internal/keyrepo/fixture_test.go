package keyrepo_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/testsupport"
)

// The repository tests write records with the store directly, as the
// service does, and read them back through a Repo over the same store.

const (
	acctA  = "111122223333"
	acctB  = "444455556666"
	region = "us-east-1"
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t     testing.TB
	ctx   context.Context
	st    *hookStore
	rk    *keys.RootKey
	clock *testsupport.Clock
	logs  *bytes.Buffer
	repo  *keyrepo.Repo
}

// hookStore is a bbolt store that can run a function once, right after a
// read transaction ends: the moment another writer may commit and
// invalidate while a reader is about to fill the cache. Its hooks are set
// while no other goroutine reads.
// It also counts read transactions, and can fail the next one (viewErr).
type hookStore struct {
	store.Store
	afterView func()
	viewErr   error
	views     atomic.Int64
}

func (h *hookStore) View(ctx context.Context, fn func(store.Tx) error) error {
	h.views.Add(1)
	if err := h.viewErr; err != nil {
		h.viewErr = nil
		return err
	}
	err := h.Store.View(ctx, fn)
	if f := h.afterView; f != nil {
		h.afterView = nil
		f()
	}
	return err
}

func newRootKey(t testing.TB) *keys.RootKey {
	t.Helper()
	rk, err := keys.ParseRootKey(keys.GenerateRootKey())
	if err != nil {
		t.Fatal(err)
	}
	return rk
}

// newFixture opens a fresh store and a Repo over it with cfg's cache
// settings.
func newFixture(t testing.TB, cfg keyrepo.Config) *fixture {
	t.Helper()
	bs, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	f := &fixture{t: t, ctx: context.Background(), st: &hookStore{Store: bs}, rk: newRootKey(t),
		clock: testsupport.NewClock(start), logs: new(bytes.Buffer)}
	f.repo = f.newRepo(cfg)
	return f
}

// newRepo is another Repo on the fixture's store and clock.
func (f *fixture) newRepo(cfg keyrepo.Config) *keyrepo.Repo {
	f.t.Helper()
	cfg.Store, cfg.Region, cfg.Now = f.st, region, f.clock.Now
	if cfg.RootKey == nil {
		cfg.RootKey = f.rk
	}
	cfg.Logger = slog.New(slog.NewTextHandler(f.logs, nil))
	r, err := keyrepo.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) put(key []byte, v any) {
	f.t.Helper()
	if err := f.st.Update(f.ctx, func(tx store.Tx) error { return store.PutJSON(tx, key, v) }); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) putRaw(key, value []byte) {
	f.t.Helper()
	if err := f.st.Update(f.ctx, func(tx store.Tx) error { return tx.Put(key, value) }); err != nil {
		f.t.Fatal(err)
	}
}

func rootPolicy(account string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow",`+
		`"Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":"kms:*","Resource":"*"}]}`, account)
}

// newKey stores an enabled key of spec in account with its first version
// of material, after mods have changed its record, and returns the record.
func (f *fixture) newKey(account, spec string, mods ...func(*keyrepo.KeyRecord)) keyrepo.KeyRecord {
	f.t.Helper()
	rec := keyrepo.KeyRecord{V: keyrepo.RecordVersion, ID: keys.NewID().String(), Region: region, Account: account, Created: f.clock.Now(),
		KeySpec: spec, KeyUsage: keys.Usages(spec)[0], Origin: "AWS_KMS", State: keyrepo.StateEnabled,
		Policy: rootPolicy(account), CurrentVersion: 1}
	for _, m := range mods {
		m(&rec)
	}
	f.put(keyrepo.KeyKey(region, rec.ID), &rec)
	if rec.CurrentVersion > 0 {
		f.addVersion(rec, rec.CurrentVersion)
	}
	return rec
}

// addVersion seals fresh material as version v of rec.
func (f *fixture) addVersion(rec keyrepo.KeyRecord, v uint32) *keyrepo.VersionRecord {
	f.t.Helper()
	vrs, err := f.repo.NewVersion([]string{region}, &rec, v, f.clock.Now(), "")
	if err != nil {
		f.t.Fatal(err)
	}
	vr := vrs[0]
	f.put(keyrepo.VersionKey(region, rec.ID, v), vr)
	return vr
}

func (f *fixture) putAlias(account, name, keyID string) {
	f.t.Helper()
	f.put(keyrepo.AliasKey(account, region, name), &keyrepo.AliasRecord{V: keyrepo.RecordVersion, Name: name, KeyID: keyID,
		Created: f.clock.Now(), Updated: f.clock.Now()})
}

// describe changes the description of key rec in the store only, as
// another process would, without telling the repository.
func (f *fixture) describe(rec keyrepo.KeyRecord, desc string) {
	f.t.Helper()
	rec.Description = desc
	f.put(keyrepo.KeyKey(region, rec.ID), &rec)
}

// description loads key id through the repository and returns its
// description.
func (f *fixture) description(r *keyrepo.Repo, id string) string {
	f.t.Helper()
	k, err := r.Load(f.ctx, region, id)
	if err != nil {
		f.t.Fatalf("Load(%s): %v", id, err)
	}
	return k.Rec.Description
}

func (f *fixture) aliasTarget(r *keyrepo.Repo, account, name string) string {
	f.t.Helper()
	id, err := r.LookupAlias(f.ctx, account, region, name)
	if err != nil {
		f.t.Fatalf("LookupAlias(%s, %s): %v", account, name, err)
	}
	return id
}

func keyARN(account, id string) string { return "arn:aws:kms:" + region + ":" + account + ":key/" + id }
func aliasARN(account, name string) string {
	return "arn:aws:kms:" + region + ":" + account + ":" + name
}
