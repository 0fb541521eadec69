package rekey

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

func newKey(t *testing.T) *keys.RootKey {
	t.Helper()
	k, err := keys.ParseRootKey(keys.GenerateRootKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// putAll puts every record of recs into st.
func putAll(t *testing.T, st store.Store, recs map[string][]byte) {
	t.Helper()
	err := st.Update(context.Background(), func(tx store.Tx) error {
		for k, v := range recs {
			if err := tx.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// records returns one record of each kind that holds a sealed value, and
// one that holds none, sealed under root.
func records(t *testing.T, root *keys.RootKey) map[string][]byte {
	t.Helper()
	js := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ver := string(keyrepo.VersionKey("us-east-1", "k1", 1))
	tok := string(keyrepo.ImportTokenKey("t1"))
	return map[string][]byte{
		string(keys.RootCheckRecord):   root.Seal(keys.RootCheckRecord, []byte("openkms root key check")),
		"meta/audit-signing-key":       root.Seal([]byte("meta/audit-signing-key"), []byte("seed")),
		ver:                            js(keyrepo.VersionRecord{V: 1, Version: 1, Sealed: root.Seal([]byte(ver), []byte("material"))}),
		"keyver/us-east-1/k2/00000001": js(keyrepo.VersionRecord{V: 1, Version: 1}), // imported material deleted
		tok:                            js(keyrepo.ImportTokenRecord{V: 1, KeyID: "k1", SealedPriv: root.Seal([]byte(tok), []byte("der"))}),
		"iam/accesskey/AKIA1":          js(map[string]any{"v": 1, "id": "AKIA1", "sealedSecret": root.Seal([]byte("iam/accesskey/AKIA1"), []byte("s"))}),
		"iam/session/ASIA1":            js(map[string]any{"v": 1, "id": "ASIA1", "sealedSecret": root.Seal([]byte("iam/session/ASIA1"), []byte("s"))}),
		"key/us-east-1/k1":             js(map[string]any{"v": 1, "description": `a "sealed" key`}),
		"acctkey/1/us-east-1/k1":       nil,
	}
}

// A record edited to hold a second sealed field that the server's
// decoding would take (another case, an escaped or folded name, a repeated
// name) is checked in that field too: a value that does not open there is
// refused, where a check of the first field alone passed it.
func TestRewrapChecksEverySealedSpelling(t *testing.T) {
	root := newKey(t)
	name := []byte("keyver/us-east-1/k1/00000001")
	badBytes := []byte("not sealed under the root key")
	enc := func(b []byte) string { out, _ := json.Marshal(b); return string(out) }
	good, bad := enc(root.Seal(name, []byte("material"))), enc(badBytes)
	for _, tc := range []string{
		`{"v":1,"sealed":` + good + `,"Sealed":` + bad + `}`,
		`{"v":1,"sealed":` + good + `,"SEALED":` + bad + `}`,
		`{"v":1,"sealed":` + good + `,"\u0053ealed":` + bad + `}`,
		`{"v":1,"sealed":` + good + `,"ſealed":` + bad + `}`,
		`{"v":1,"sealed":` + good + `,"sealed":` + bad + `}`,
	} {
		var rec keyrepo.VersionRecord
		if err := json.Unmarshal([]byte(tc), &rec); err != nil || !bytes.Equal(rec.Sealed, badBytes) {
			t.Fatalf("%s: the server's decoding takes %q, %v; want the second field", tc, rec.Sealed, err)
		}
		if _, _, _, err := Rewrap(name, []byte(tc), root, nil); !errors.Is(err, ErrWrongRootKey) {
			t.Errorf("%s: Rewrap = %v; want the second sealed field refused", tc, err)
		}
	}
	if _, n, _, err := Rewrap(name, []byte(`{"v":1,"sealed":`+good+`}`), root, nil); err != nil || n != 1 {
		t.Fatalf("the record as the server writes it: %d, %v", n, err)
	}
}

func TestRewrap(t *testing.T) {
	old, new := newKey(t), newKey(t)
	want := map[string]int{"meta/rootkey-check": 1, "meta/audit-signing-key": 1, "keyver/us-east-1/k1/00000001": 1,
		"importtoken/t1": 1, "iam/accesskey/AKIA1": 1, "iam/session/ASIA1": 1}
	for name, value := range records(t, old) {
		out, n, _, err := Rewrap([]byte(name), value, old, new)
		if err != nil || n != want[name] {
			t.Errorf("%s: Rewrap = %d, %v; want %d sealed values", name, n, err, want[name])
			continue
		}
		if n == 0 {
			if !bytes.Equal(out, value) {
				t.Errorf("%s: a record with nothing sealed changed", name)
			}
			continue
		}
		if _, _, _, err := Rewrap([]byte(name), out, new, nil); err != nil {
			t.Errorf("%s: the rewrapped record does not open with the new key: %v", name, err)
		}
		if _, _, _, err := Rewrap([]byte(name), out, old, nil); !errors.Is(err, ErrWrongRootKey) {
			t.Errorf("%s: the rewrapped record still opens with the old key: %v", name, err)
		}
		// A sealed field moved into another record does not open there.
		if _, _, _, err := Rewrap([]byte(name+"x"), value, old, nil); !wholeRecords[name] && !errors.Is(err, ErrWrongRootKey) {
			t.Errorf("%s: a sealed value opened under another record's name: %v", name, err)
		}
	}
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old, new := newKey(t), newKey(t)
	putAll(t, st, records(t, old))
	if _, err := Rotate(ctx, st, new, old, nil); !errors.Is(err, ErrWrongRootKey) {
		t.Fatalf("Rotate from a key that does not open the store: %v", err)
	}
	calls := 0
	r, err := Rotate(ctx, st, old, new, func(int) { calls++ })
	if err != nil || r.Sealed != 6 || calls != 6 || r.Refused != nil {
		t.Fatalf("Rotate = %+v, %v after %d progress calls; want 6 sealed values", r, err, calls)
	}
	if got, err := Check(ctx, st, new); err != nil || got != 6 {
		t.Errorf("Check with the new key = %d, %v", got, err)
	}
	if _, err := Check(ctx, st, old); !errors.Is(err, ErrWrongRootKey) {
		t.Errorf("Check with the old key: %v", err)
	}
	if ok, err := Opens(ctx, st, old); ok || err != nil {
		t.Errorf("Opens(old) = %v, %v after the rotation", ok, err)
	}
}

// TestRotateWrapped: a rotation to a key kept in a token writes its
// wrapped form in the same transaction; a rotation to a key in hand
// removes it.
func TestRotateWrapped(t *testing.T) {
	ctx := context.Background()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, b, c := newKey(t), newKey(t), newKey(t)
	err = st.Update(ctx, func(tx store.Tx) error {
		return tx.Put(keys.RootCheckRecord, a.Seal(keys.RootCheckRecord, []byte("openkms root key check")))
	})
	if err != nil {
		t.Fatal(err)
	}
	wrapped := func() []byte {
		var v []byte
		st.View(ctx, func(tx store.Tx) error {
			got, err := tx.Get(keys.WrappedRootRecord)
			if err == nil {
				v = bytes.Clone(got)
			}
			return nil
		})
		return v
	}
	if _, err := RotateWrapped(ctx, st, a, b, []byte("b, wrapped"), nil); err != nil {
		t.Fatal(err)
	}
	if got := string(wrapped()); got != "b, wrapped" {
		t.Errorf("after a rotation into a token the record holds %q", got)
	}
	if n, err := Check(ctx, st, b); err != nil || n != 1 {
		t.Errorf("Check(b) = %d, %v: the wrapped record is not a sealed value", n, err)
	}
	if _, err := Rotate(ctx, st, b, c, nil); err != nil {
		t.Fatal(err)
	}
	if got := wrapped(); got != nil {
		t.Errorf("after a rotation out of the token the record still holds %q", got)
	}
}

// In a store whose records are authenticated, a rotation makes every
// record's tag again under the new root key, so that a server with it
// reads them all; Check and Rotate refuse a record changed outside the
// server.
func TestRotateAuthenticated(t *testing.T) {
	ctx := context.Background()
	raw, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	old, new := newKey(t), newKey(t)
	st, _, err := authstore.Open(ctx, raw, old, true)
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, old)
	delete(recs, string(keys.RootCheckRecord)) // Open wrote it
	putAll(t, st, recs)
	if n, err := Check(ctx, raw, old); err != nil || n != 6 {
		t.Fatalf("Check = %d, %v", n, err)
	}
	if r, err := Rotate(ctx, raw, old, new, nil); err != nil || r.Sealed != 6 || r.Refused != nil {
		t.Fatalf("Rotate = %+v, %v", r, err)
	}
	st, opened, err := authstore.Open(ctx, raw, new, true)
	if err != nil || opened != (authstore.Opened{}) {
		t.Fatalf("Open with the new key: %+v, %v", opened, err)
	}
	err = st.View(ctx, func(tx store.Tx) error {
		for k, want := range recs {
			v, err := tx.Get([]byte(k))
			if err != nil {
				return err
			}
			if !strings.HasPrefix(k, "keyver/us-east-1/k1") && !strings.HasPrefix(k, "iam/") && !strings.HasPrefix(k, "importtoken/") && !strings.HasPrefix(k, "meta/") && !bytes.Equal(v, want) {
				t.Errorf("%s reads %q after the rotation, want %q", k, v, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading every record with the new key: %v", err)
	}

	// An edit outside the server: the description of a key.
	err = raw.Update(ctx, func(tx store.Tx) error {
		v, err := tx.Get([]byte("key/us-east-1/k1"))
		if err != nil {
			return err
		}
		return tx.Put([]byte("key/us-east-1/k1"), bytes.Replace(v, []byte("sealed"), []byte("edited"), 1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, raw, new); !errors.Is(err, authstore.ErrUnauthenticated) {
		t.Errorf("Check of an edited store: %v", err)
	}
	// Whoever can write the store cannot keep a leaked root key in use:
	// a rotation goes on, leaving the edited record as it was, refused
	// under the new key as under the old.
	r, err := Rotate(ctx, raw, new, old, nil)
	if err != nil || r.Sealed != 6 || !slices.Equal(r.Refused, []string{"key/us-east-1/k1"}) {
		t.Fatalf("Rotate of an edited store = %+v, %v; want the edited record refused and the rest rotated", r, err)
	}
	st, _, err = authstore.Open(ctx, raw, old, false)
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(ctx, func(tx store.Tx) error {
		if _, err := tx.Get([]byte("key/us-east-1/k1")); !errors.Is(err, authstore.ErrUnauthenticated) {
			t.Errorf("the edited record after the rotation: %v, want it refused", err)
		}
		_, err := tx.Get([]byte("acctkey/1/us-east-1/k1"))
		return err
	})
	if err != nil {
		t.Errorf("an untouched record after the rotation: %v", err)
	}
}

// A rotation to the key the store already has (the old key file copied
// as the new one) is refused, changing nothing: it would report that
// the values open "with the new root key only" while the old key, which
// the rotation was to retire, still opens them all.
func TestRotateRefusesTheSameKey(t *testing.T) {
	ctx := context.Background()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	text := keys.GenerateRootKey()
	old, err := keys.ParseRootKey(text)
	if err != nil {
		t.Fatal(err)
	}
	same, err := keys.ParseRootKey(text)
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, old)
	putAll(t, st, recs)
	for _, wrapped := range [][]byte{nil, []byte("wrapped")} {
		if _, err := RotateWrapped(ctx, st, old, same, wrapped, nil); !errors.Is(err, ErrSameRootKey) {
			t.Fatalf("RotateWrapped to the same key (wrapped %q) = %v", wrapped, err)
		}
	}
	st.View(ctx, func(tx store.Tx) error {
		for k, v := range recs {
			if got, _ := tx.Get([]byte(k)); !bytes.Equal(got, v) {
				t.Errorf("%s changed by a refused rotation", k)
			}
		}
		if _, err := tx.Get(keys.WrappedRootRecord); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused rotation wrote %s: %v", keys.WrappedRootRecord, err)
		}
		return nil
	})
}

// A rotation run again after it committed (killed before it replaced a
// data directory's root.key, which then still holds the old key) is
// refused as one from a wrong old key, and says that the new key opens
// the store already; one from a key that opens nothing does not.
func TestReadySaysTheStoreIsRotated(t *testing.T) {
	ctx := context.Background()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old, new := newKey(t), newKey(t)
	putAll(t, st, records(t, old))
	if err := Ready(ctx, st, old, new); err != nil {
		t.Fatalf("Ready before the rotation: %v", err)
	}
	if _, err := Rotate(ctx, st, old, new, nil); err != nil {
		t.Fatal(err)
	}
	err = Ready(ctx, st, old, new)
	if !errors.Is(err, ErrWrongRootKey) || !errors.Is(err, ErrRotated) {
		t.Errorf("Ready after the rotation committed: %v", err)
	}
	if err := Ready(ctx, st, newKey(t), newKey(t)); !errors.Is(err, ErrWrongRootKey) || errors.Is(err, ErrRotated) {
		t.Errorf("Ready from a key that opens nothing: %v", err)
	}
}
