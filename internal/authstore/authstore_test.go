package authstore_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/store/storetest"
)

func rootKey(t *testing.T) *keys.RootKey {
	t.Helper()
	rk, err := keys.ParseRootKey(keys.GenerateRootKey())
	if err != nil {
		t.Fatal(err)
	}
	return rk
}

func openBolt(t *testing.T) store.Store {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// An authenticated store keeps the contract of every store.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return authstore.Wrap(openBolt(t), authstore.NewKey(rootKey(t)))
	})
}

func put(t *testing.T, st store.Store, kv ...string) {
	t.Helper()
	err := st.Update(context.Background(), func(tx store.Tx) error {
		for i := 0; i < len(kv); i += 2 {
			if err := tx.Put([]byte(kv[i]), []byte(kv[i+1])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func get(st store.Store, name string) ([]byte, error) {
	var v []byte
	err := st.View(context.Background(), func(tx store.Tx) error {
		var err error
		v, err = tx.Get([]byte(name))
		return err
	})
	return v, err
}

func rawGet(t *testing.T, st store.Store, name string) []byte {
	t.Helper()
	v, err := get(st, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Whoever writes the store without the root key cannot edit a record,
// move one under another name, make one up or strip its tag: each read of
// such a record fails, by Get and by Scan, and the other records still
// read.
func TestEditsOutsideTheServerDoNotRead(t *testing.T) {
	ctx := context.Background()
	raw := openBolt(t)
	root := rootKey(t)
	st, _, err := authstore.Open(ctx, raw, root, true)
	if err != nil {
		t.Fatal(err)
	}
	policy := `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"}}]}`
	put(t, st, "key/us-east-1/a", policy, "key/us-east-1/b", policy, "acctkey/1/a", "", "key/us-east-1/c", "{}")
	if v := rawGet(t, raw, "key/us-east-1/a"); len(v) != authstore.TagSize+len(policy) || !bytes.HasSuffix(v, []byte(policy)) {
		t.Fatalf("stored %q, want the tag and the value", v)
	}
	edited := bytes.Replace(rawGet(t, raw, "key/us-east-1/a"), []byte("111122223333"), []byte("444455556666"), 1)
	put(t, raw,
		"key/us-east-1/a", string(edited), // edited in place
		"key/us-east-1/b", string(rawGet(t, raw, "acctkey/1/a")), // another record's value, tag and all
		"key/us-east-1/made-up", policy, // no tag
		"key/us-east-1/c", "{}", // its tag taken off
		"acctkey/1/z", string(make([]byte, authstore.TagSize)))
	for _, name := range []string{"key/us-east-1/a", "key/us-east-1/b", "key/us-east-1/made-up", "key/us-east-1/c", "acctkey/1/z"} {
		if v, err := get(st, name); !errors.Is(err, authstore.ErrUnauthenticated) {
			t.Errorf("Get %s = %q, %v; want ErrUnauthenticated", name, v, err)
		}
	}
	err = st.View(ctx, func(tx store.Tx) error {
		return tx.Scan([]byte("key/"), nil, func(k, v []byte) (bool, error) { return true, nil })
	})
	if !errors.Is(err, authstore.ErrUnauthenticated) {
		t.Errorf("Scan over the edited records: %v, want ErrUnauthenticated", err)
	}
	if v, err := get(st, "acctkey/1/a"); err != nil || len(v) != 0 {
		t.Errorf("an untouched record: %q, %v", v, err)
	}
}

// The records read before or without the root key are stored as they
// are, and still read through the authenticated store.
func TestExemptRecords(t *testing.T) {
	if authstore.MarkRecord != audit.MarkRecord {
		t.Fatalf("authstore.MarkRecord %q is not audit.MarkRecord %q", authstore.MarkRecord, audit.MarkRecord)
	}
	raw := openBolt(t)
	st, _, err := authstore.Open(context.Background(), raw, rootKey(t), true)
	if err != nil {
		t.Fatal(err)
	}
	put(t, st, audit.MarkRecord, `{"sequence":1}`, string(keys.WrappedRootRecord), "wrapped")
	for name, want := range map[string]string{audit.MarkRecord: `{"sequence":1}`, string(keys.WrappedRootRecord): "wrapped"} {
		if v := rawGet(t, raw, name); string(v) != want {
			t.Errorf("%s stored as %q, want %q", name, v, want)
		}
		if v := rawGet(t, st, name); string(v) != want {
			t.Errorf("%s read as %q, want %q", name, v, want)
		}
	}
}

// A store from before authentication gets a tag on every record, once,
// when Open is told to upgrade it, and its check record says so; a wrong
// root key, or an Open not told to, changes nothing.
func TestUpgrade(t *testing.T) {
	ctx := context.Background()
	raw := openBolt(t)
	root := rootKey(t)
	legacy := root.Seal(keys.RootCheckRecord, []byte("openkms root key check"))
	put(t, raw, string(keys.RootCheckRecord), string(legacy), "key/a", `{"v":1}`, "acctkey/1/a", "", audit.MarkRecord, "mark")

	if _, _, err := authstore.Open(ctx, raw, rootKey(t), true); !errors.Is(err, authstore.ErrWrongRootKey) {
		t.Fatalf("Open with another root key: %v", err)
	}
	if v := rawGet(t, raw, "key/a"); string(v) != `{"v":1}` {
		t.Fatalf("a refused Open changed key/a to %q", v)
	}
	if _, _, err := authstore.Open(ctx, raw, root, false); !errors.Is(err, authstore.ErrNotUpgraded) {
		t.Fatalf("Open not allowed to upgrade: %v, want ErrNotUpgraded", err)
	}
	if v := rawGet(t, raw, "key/a"); string(v) != `{"v":1}` {
		t.Fatalf("an Open not allowed to upgrade changed key/a to %q", v)
	}
	st, opened, err := authstore.Open(ctx, raw, root, true)
	if err != nil || opened != (authstore.Opened{Upgraded: 2}) {
		t.Fatalf("Open of a store from before = %+v, %v; want 2 records upgraded", opened, err)
	}
	if v := rawGet(t, st, "key/a"); string(v) != `{"v":1}` {
		t.Errorf("key/a read as %q", v)
	}
	if v := rawGet(t, raw, audit.MarkRecord); string(v) != "mark" {
		t.Errorf("the exempt mark became %q", v)
	}
	if _, opened, err := authstore.Open(ctx, raw, root, true); err != nil || opened != (authstore.Opened{}) {
		t.Errorf("a second Open: %+v, %v", opened, err)
	}
	var state authstore.State
	if err := raw.View(ctx, func(tx store.Tx) error { state, err = authstore.ReadState(tx, root); return err }); err != nil || state != authstore.Authenticated {
		t.Errorf("state %v, %v; want Authenticated", state, err)
	}
}

// Whoever kept the check record of a store from before its upgrade, and
// puts it back to have a record they edit in the clear authenticated at
// the next start, has nothing authenticated: the other records carry
// their tags, which shows the store was upgraded, and the edited record
// still fails to read while the others read as they were.
func TestCheckRecordPutBack(t *testing.T) {
	ctx := context.Background()
	raw := openBolt(t)
	root := rootKey(t)
	legacy := root.Seal(keys.RootCheckRecord, []byte("openkms root key check"))
	put(t, raw, string(keys.RootCheckRecord), string(legacy), "key/a", `{"state":"Disabled"}`, "key/b", `{"state":"Enabled"}`)
	if _, _, err := authstore.Open(ctx, raw, root, true); err != nil {
		t.Fatal(err)
	}
	put(t, raw, string(keys.RootCheckRecord), string(legacy), "key/a", `{"state":"Enabled"}`)

	st, opened, err := authstore.Open(ctx, raw, root, false)
	if err != nil || opened != (authstore.Opened{PutBack: "key/b"}) {
		t.Fatalf("Open = %+v, %v; want the check record found put back", opened, err)
	}
	if v, err := get(st, "key/a"); !errors.Is(err, authstore.ErrUnauthenticated) {
		t.Errorf("the record edited in the clear reads as %q, %v", v, err)
	}
	if v := rawGet(t, st, "key/b"); string(v) != `{"state":"Enabled"}` {
		t.Errorf("key/b reads as %q", v)
	}
	var state authstore.State
	if err := raw.View(ctx, func(tx store.Tx) error { state, err = authstore.ReadState(tx, root); return err }); err != nil || state != authstore.Authenticated {
		t.Errorf("state %v, %v; want Authenticated", state, err)
	}
}

// A record stripped of its tag in an upgraded store is not taken for one
// from before: the check record, which no one can write without the root
// key, says the store's records are authenticated.
func TestNoDowngradeByStrippingTags(t *testing.T) {
	ctx := context.Background()
	raw := openBolt(t)
	root := rootKey(t)
	st, _, err := authstore.Open(ctx, raw, root, true)
	if err != nil {
		t.Fatal(err)
	}
	put(t, st, "key/a", `{"v":1}`)
	put(t, raw, "key/a", `{"v":2}`)
	st, opened, err := authstore.Open(ctx, raw, root, true)
	if err != nil || opened != (authstore.Opened{}) {
		t.Fatalf("Open: %+v, %v", opened, err)
	}
	if v, err := get(st, "key/a"); !errors.Is(err, authstore.ErrUnauthenticated) {
		t.Errorf("a stripped record read as %q, %v", v, err)
	}
}

// Whatever bytes a record holds, reading it never panics, and only a
// value sealed under its name and key reads, as that value.
func FuzzOpen(f *testing.F) {
	root, err := keys.NewRootKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	k := authstore.NewKey(root)
	f.Add([]byte("key/a"), k.Seal([]byte("key/a"), []byte(`{"v":1}`)))
	f.Add([]byte("key/a"), k.Seal([]byte("key/b"), []byte(`{"v":1}`)))
	f.Add([]byte("acctkey/1/a"), k.Seal([]byte("acctkey/1/a"), nil))
	f.Add([]byte("key/a"), []byte(`{"v":1}`))
	f.Add([]byte(audit.MarkRecord), []byte("mark"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, name, stored []byte) {
		v, err := k.Open(name, stored)
		if authstore.Exempt(name) {
			if err != nil || !bytes.Equal(v, stored) {
				t.Fatalf("exempt %q: %q, %v", name, v, err)
			}
			return
		}
		if err != nil {
			if !errors.Is(err, authstore.ErrUnauthenticated) {
				t.Fatalf("error %v is not ErrUnauthenticated", err)
			}
			return
		}
		if !bytes.Equal(k.Seal(name, v), stored) {
			t.Fatalf("%q read as %q, which seals to something else", stored, v)
		}
	})
}

// store.ScanReadable goes on past the records that do not read, naming
// each, and stops at an error of its own function as Scan does.
func TestScanReadable(t *testing.T) {
	raw := openBolt(t)
	st := authstore.Wrap(raw, authstore.NewKey(rootKey(t)))
	put(t, st, "key/a", "1", "key/b", "2", "key/c", "3", "key/d", "4", "other", "5")
	put(t, raw, "key/b", "edited", "key/d", "edited")
	var got, skipped []string
	err := st.View(context.Background(), func(tx store.Tx) error {
		got, skipped = nil, nil
		return store.ScanReadable(tx, []byte("key/"), nil, func(k, v []byte) (bool, error) {
			got = append(got, string(k)+"="+string(v))
			return true, nil
		}, func(err error) {
			var ue *store.UnauthenticatedError
			if !errors.As(err, &ue) || !errors.Is(err, authstore.ErrUnauthenticated) {
				t.Errorf("skipped with %v", err)
				return
			}
			skipped = append(skipped, string(ue.Key))
		})
	})
	if err != nil || strings.Join(got, " ") != "key/a=1 key/c=3" || strings.Join(skipped, " ") != "key/b key/d" {
		t.Errorf("read %q, skipped %q, %v", got, skipped, err)
	}
	mine := &store.UnauthenticatedError{Key: []byte("key/c")}
	err = st.View(context.Background(), func(tx store.Tx) error {
		return store.ScanReadable(tx, []byte("key/"), nil, func(k, v []byte) (bool, error) { return true, mine }, func(error) {})
	})
	if err != mine {
		t.Errorf("an error of fn came back as %v", err)
	}
}
