// Package rekey knows which parts of the store's records are sealed under
// the root key, opens them all to check a root key (Check), and rewraps
// them all under another root key in one transaction (Rotate): the work of
// `kms root-key rotate` and of the verification in `kms restore`.
//
// Every sealed value in the store is bound to the name of the record that
// holds it (the additional data of keys.RootKey.Seal is the record's key).
// A sealed value is either a whole record (meta/rootkey-check,
// meta/audit-signing-key) or a field of a JSON record whose name starts with
// "sealed" (key material versions, import tokens, access keys, STS
// sessions), holding the sealed bytes as base64. Field names are matched
// as the server's decoding (encoding/json) matches them: unescaped, in any
// case, so that a record edited to hold a second, case-changed sealed
// field is checked in every one of them. The record
// meta/rootkey-wrapped (keys.WrappedRootRecord) is not sealed under the
// root key but holds it, wrapped by a key in a PKCS#11 token: a rotation
// writes or removes it in its transaction.
//
// In a store whose records are authenticated (internal/authstore), every
// record's tag is checked with the old root key's record key and, by a
// rotation, made again with the new one's, in the same transaction.
package rekey

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/pgstore"
)

// ErrWrongRootKey is returned when a sealed value does not open with the
// root key given.
var ErrWrongRootKey = errors.New("the root key does not open the key store")

// ErrSameRootKey is returned by a rotation whose new root key is the one
// the store has: it would retire nothing.
var ErrSameRootKey = errors.New("the new root key is the root key the store has now: a rotation needs another key (kms root-key init makes one)")

// ErrRotated is returned, with ErrWrongRootKey, by a rotation to a new
// root key that already opens the store: a rotation to it has committed.
var ErrRotated = errors.New("the store opens with the new root key already: a rotation to it has committed, and the new key is the store's root key now (in dev mode, killed before it replaced the data directory's root.key: copy the new key there)")

// wholeRecords are the records whose whole value is sealed.
var wholeRecords = map[string]bool{
	string(keys.RootCheckRecord): true,
	"meta/audit-signing-key":     true,
}

// Rewrap returns value, the record named name as the store holds it, with
// every sealed value in it opened with old and sealed again with new (new
// nil: only opened, and value returned unchanged), and its tag
// (internal/authstore), if it has one under old, made again under new. It
// reports how many sealed values the record holds and whether it had a
// tag. A value that does not open is ErrWrongRootKey, naming the record.
func Rewrap(name, value []byte, old, new *keys.RootKey) (out []byte, sealed int, tagged bool, err error) {
	body := value
	if !authstore.Exempt(name) {
		if b, err := authstore.NewKey(old).Open(name, value); err == nil {
			body, tagged = b, true
		}
	}
	out, sealed, err = rewrapBody(name, body, old, new)
	switch {
	case err != nil:
		return nil, 0, false, err
	case new == nil:
		return value, sealed, tagged, nil
	case tagged:
		out = authstore.NewKey(new).Seal(name, out)
	}
	return out, sealed, tagged, nil
}

// rewrapBody is Rewrap of a record's value without its tag.
func rewrapBody(name, value []byte, old, new *keys.RootKey) ([]byte, int, error) {
	if wholeRecords[string(name)] {
		out, err := rewrapOne(name, value, old, new)
		return out, 1, err
	}
	// Only a record without "ealed" in any case, escapes or non-ASCII
	// bytes surely has no sealed field: the others are decoded.
	if !bytes.Contains(bytes.ToLower(value), []byte("ealed")) && bytes.IndexByte(value, '\\') < 0 && !hasNonASCII(value) {
		return value, 0, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(value, &fields); err != nil {
		return value, 0, nil // not a JSON object: nothing sealed in it
	}
	n := 0
	for f, raw := range fields {
		if !sealedField(f) {
			continue
		}
		var sealed []byte
		if err := json.Unmarshal(raw, &sealed); err != nil {
			return nil, 0, fmt.Errorf("record %s: field %s: %w", name, f, err)
		}
		if len(sealed) == 0 {
			continue // deleted imported material
		}
		out, err := rewrapOne(name, sealed, old, new)
		if err != nil {
			return nil, 0, err
		}
		n++
		if new != nil {
			fields[f], _ = json.Marshal(out)
		}
	}
	if new == nil || n == 0 {
		return value, n, nil
	}
	out, err := json.Marshal(fields)
	return out, n, err
}

// sealedField reports whether a field's name starts with "sealed" as
// encoding/json folds case (strings.EqualFold, rune by rune: "ſ" is an s).
func sealedField(name string) bool {
	const prefix = "sealed"
	i := 0
	for _, r := range name {
		if i == len(prefix) {
			break
		}
		if !strings.EqualFold(string(r), prefix[i:i+1]) {
			return false
		}
		i++
	}
	return i == len(prefix)
}

func hasNonASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

func rewrapOne(name, sealed []byte, old, new *keys.RootKey) ([]byte, error) {
	plain, err := old.Open(name, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: record %s", ErrWrongRootKey, name)
	}
	if new == nil {
		return sealed, nil
	}
	return new.Seal(name, plain), nil
}

// Opens reports whether root opens the store's root key check record.
func Opens(ctx context.Context, st store.Store, root *keys.RootKey) (bool, error) {
	var ok bool
	err := st.View(ctx, func(tx store.Tx) error {
		sealed, err := tx.Get(keys.RootCheckRecord)
		if err != nil {
			return err
		}
		_, err = root.Open(keys.RootCheckRecord, sealed)
		ok = err == nil
		return nil
	})
	return ok, err
}

// Check opens every sealed value of st with root in one read transaction
// and returns how many there are, or ErrWrongRootKey naming the first
// record that does not open. In a store whose records are authenticated
// (internal/authstore) it checks every record's tag too: a record without
// a good one is authstore.ErrUnauthenticated, naming it.
func Check(ctx context.Context, st store.Store, root *keys.RootKey) (int, error) {
	var n int
	err := st.View(ctx, func(tx store.Tx) error {
		n = 0
		state, err := authstore.ReadState(tx, root)
		if errors.Is(err, authstore.ErrWrongRootKey) {
			return fmt.Errorf("%w: record %s", ErrWrongRootKey, keys.RootCheckRecord)
		}
		if err != nil {
			return err
		}
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			_, c, tagged, err := Rewrap(k, v, root, nil)
			if err == nil && state == authstore.Authenticated && !tagged && !authstore.Exempt(k) {
				err = fmt.Errorf("record %q: %w", k, authstore.ErrUnauthenticated)
			}
			n += c
			return err == nil, err
		})
	})
	return n, err
}

// Ready returns the error with which a rotation of st from old to new
// refuses before it begins: ErrSameRootKey when new is old, and
// ErrWrongRootKey when old does not open the store's root key check. It
// changes nothing, so a command can refuse before it reports any
// progress. A nil error does not promise that the rotation succeeds.
func Ready(ctx context.Context, st store.Store, old, new *keys.RootKey) error {
	// The keys derived from two root keys are equal only if they are.
	if subtle.ConstantTimeCompare(old.RecordKey(), new.RecordKey()) == 1 {
		return ErrSameRootKey
	}
	if ok, err := Opens(ctx, st, old); err != nil {
		return fmt.Errorf("read %s: %w", keys.RootCheckRecord, err)
	} else if !ok {
		// A rotation that committed and was run again (one killed
		// before it replaced a data directory's root.key, which then
		// holds the old key): say so, rather than only that the old
		// key is wrong, which sends the operator looking for another.
		if ok, err := Opens(ctx, st, new); err == nil && ok {
			return fmt.Errorf("%w: the old root key does not open the %s record: %w", ErrWrongRootKey, keys.RootCheckRecord, ErrRotated)
		}
		return fmt.Errorf("%w: the old root key does not open the %s record", ErrWrongRootKey, keys.RootCheckRecord)
	}
	return nil
}

// Rotated is what a rotation did.
type Rotated struct {
	// Sealed counts the sealed values rewrapped.
	Sealed int
	// Refused names the records of an authenticated store whose tag did
	// not match (changed outside the server), left as they were: they are
	// refused under the new root key as under the old.
	Refused []string
}

// Rotate rewraps every sealed value of st from old to new in one store
// transaction, so that the store opens either with old (before the commit,
// or if it never happens) or with new (after), never with neither and
// never with a mix. In a store whose records are authenticated, it makes
// every record's tag again under new. progress, if not nil, is called
// after each record rewrapped, inside the transaction, with the running
// count of sealed values.
//
// It refuses with ErrWrongRootKey when old does not open the store, and
// with ErrSameRootKey, changing nothing, when new is old. A
// record changed outside the server does not stop it: it is left as it
// was and named in Rotated.Refused, so that whoever can write the store
// cannot keep a leaked root key in use. No server may use st meanwhile: a
// server holds its root key in memory and would seal new records under
// old.
//
// The store's keys.WrappedRootRecord, if any, is removed in the same
// transaction: new is not kept in a token (RotateWrapped is for that).
func Rotate(ctx context.Context, st store.Store, old, new *keys.RootKey, progress func(sealed int)) (Rotated, error) {
	return RotateWrapped(ctx, st, old, new, nil, progress)
}

// RotateWrapped is Rotate to a root key new kept in a PKCS#11 token:
// wrapped, new sealed by the token's key, becomes the store's
// keys.WrappedRootRecord in the same transaction (nil removes the record).
func RotateWrapped(ctx context.Context, st store.Store, old, new *keys.RootKey, wrapped []byte, progress func(sealed int)) (Rotated, error) {
	if err := Ready(ctx, st, old, new); err != nil {
		return Rotated{}, err
	}
	var r Rotated
	err := st.Update(ctx, func(tx store.Tx) error {
		r = Rotated{}
		state, err := authstore.ReadState(tx, old)
		if err != nil {
			return err
		}
		type record struct{ k, v []byte }
		var all []record
		err = tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			all = append(all, record{bytes.Clone(k), bytes.Clone(v)})
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, rec := range all {
			out, c, tagged, err := Rewrap(rec.k, rec.v, old, new)
			if state == authstore.Authenticated && !tagged && !authstore.Exempt(rec.k) {
				r.Refused = append(r.Refused, string(rec.k))
				continue
			}
			if err != nil {
				return err
			}
			if c == 0 && !tagged {
				continue
			}
			if err := tx.Put(rec.k, out); err != nil {
				return err
			}
			r.Sealed += c
			if progress != nil && c > 0 {
				progress(r.Sealed)
			}
		}
		if wrapped == nil {
			return tx.Delete(keys.WrappedRootRecord)
		}
		return tx.Put(keys.WrappedRootRecord, wrapped)
	})
	return r, err
}

// ErrServing is returned by Hold when a server runs on the store.
var ErrServing = pgstore.ErrServing

// Hold keeps the servers of a PostgreSQL store from starting until
// release is called, and refuses with ErrServing when one of them is
// running (pgstore.Store.HoldStopped). A data directory needs no such
// check (its server locks it); for it Hold does nothing.
func Hold(ctx context.Context, st store.Store) (release func(), err error) {
	pg, ok := st.(*pgstore.Store)
	if !ok {
		return func() {}, nil
	}
	return pg.HoldStopped(ctx)
}
