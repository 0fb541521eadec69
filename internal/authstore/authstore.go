// Package authstore authenticates every record of a key store under a key
// derived from the root key, so that whoever can write the store but does
// not hold the root key — an administrator of its PostgreSQL database, a
// process that can write kms.db — cannot change what the server allows.
// A policy, grant, key state or access key owner edited in place, a record
// copied under another name, or one made up fails to read: the call that
// needs it fails with KMSInternalException, and the server says which
// record in its log.
//
// A record is stored as its tag ‖ its value, the tag being HMAC-SHA-256
// under keys.RootKey.RecordKey of the record's name (its length as four
// bytes, then the name) and value. The tag binds a value to its name, not
// to the rest of the store: a record put back as it was earlier (an older
// policy, a grant since retired, a key before its deletion was scheduled)
// or removed is not found out here. That would need a counter kept
// outside the store.
//
// Three records are stored as they are, as they must be read before or
// without the root key, and each is authenticated by its own seal or
// signature: meta/rootkey-check and meta/rootkey-wrapped (the root key's
// check and, with an HSM, the root key itself, wrapped) and meta/audit-head
// (the audit trail's signed high-water mark, which `kms audit verify` reads
// without the root key). A fourth, meta/copy-unfinished, is there only
// while kms migrate or kms restore copies into the store, and is read for
// its presence alone (store.CheckCopyFinished): one put there keeps a
// server from starting, and nothing more.
//
// Whether a store's records carry tags is said by its meta/rootkey-check
// record, which no one can write without the root key: sealed, it holds
// CheckText for a store whose records are authenticated, and the older
// text for a store from before. Open upgrades a store of the older kind in
// one transaction, when told to; an older build cannot read a store once
// upgraded.
package authstore

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/store"
)

// TagSize is the length of the tag before each authenticated value.
const TagSize = sha256.Size

// CheckText is what a store's sealed meta/rootkey-check record holds when
// every other record of it (but the exempt ones) is authenticated.
const CheckText = "openkms root key check v2: records authenticated"

// legacyCheckText is what it holds in a store from before: records
// without tags, which Open upgrades.
const legacyCheckText = "openkms root key check"

// ErrUnauthenticated is the error of a read of a record whose tag does not
// match its name and value: it was changed, moved or made by someone
// without the root key.
var ErrUnauthenticated = store.ErrUnauthenticated

// ErrWrongRootKey is returned by Open when the root key does not open the
// store's meta/rootkey-check record.
var ErrWrongRootKey = errors.New("the root key is not the one this key store was created with")

// ErrNotUpgraded is returned by Open, not allowed to upgrade, for a store
// whose records are from before authentication.
var ErrNotUpgraded = errors.New("the key store's records are not authenticated yet")

// Exempt reports whether the record name is stored without a tag.
func Exempt(name []byte) bool {
	switch string(name) {
	case string(keys.RootCheckRecord), string(keys.WrappedRootRecord), MarkRecord, string(store.UnfinishedCopyRecord):
		return true
	}
	return false
}

// MarkRecord is the audit trail's high-water mark (audit.MarkRecord),
// named here as this package may not import the audit trail's.
const MarkRecord = "meta/audit-head"

// Key authenticates records under one root key.
type Key struct{ key []byte }

// NewKey returns the Key of root.
func NewKey(root *keys.RootKey) Key { return Key{root.RecordKey()} }

func (k Key) tag(dst, name, value []byte) []byte {
	mac := hmac.New(sha256.New, k.key)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(name)))
	mac.Write(n[:])
	mac.Write(name)
	mac.Write(value)
	return mac.Sum(dst)
}

// Seal returns value as it is stored under name: with its tag before it,
// or as it is if name is exempt.
func (k Key) Seal(name, value []byte) []byte {
	if Exempt(name) {
		return value
	}
	out := k.tag(make([]byte, 0, TagSize+len(value)), name, value)
	return append(out, value...)
}

// Open checks stored, the value of the record name as the store holds it,
// and returns the value without its tag (a slice of stored). A value
// whose tag does not match is a *store.UnauthenticatedError naming the
// record (errors.Is ErrUnauthenticated).
func (k Key) Open(name, stored []byte) ([]byte, error) {
	if Exempt(name) {
		return stored, nil
	}
	if len(stored) >= TagSize {
		var buf [TagSize]byte
		if hmac.Equal(k.tag(buf[:0], name, stored[TagSize:]), stored[:TagSize]) {
			return stored[TagSize:], nil
		}
	}
	return nil, &store.UnauthenticatedError{Key: bytes.Clone(name)}
}

// Wrap returns st with its records authenticated under k: what is put is
// sealed, and what is read is opened, each read of a record whose tag does
// not match failing with ErrUnauthenticated. Use Open, which first makes
// sure the store's records carry tags.
func Wrap(st store.Store, k Key) store.Store { return &authStore{st: st, k: k} }

type authStore struct {
	st store.Store
	k  Key
}

func (s *authStore) View(ctx context.Context, fn func(store.Tx) error) error {
	return s.st.View(ctx, func(tx store.Tx) error { return fn(authTx{tx, s.k}) })
}

func (s *authStore) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.st.Update(ctx, func(tx store.Tx) error { return fn(authTx{tx, s.k}) })
}

func (s *authStore) Close() error { return s.st.Close() }

type authTx struct {
	tx store.Tx
	k  Key
}

func (t authTx) Get(key []byte) ([]byte, error) {
	v, err := t.tx.Get(key)
	if err != nil {
		return nil, err
	}
	return t.k.Open(key, v)
}

func (t authTx) Put(key, value []byte) error { return t.tx.Put(key, t.k.Seal(key, value)) }

func (t authTx) Delete(key []byte) error { return t.tx.Delete(key) }

func (t authTx) Scan(prefix, after []byte, fn func(key, value []byte) (bool, error)) error {
	return t.tx.Scan(prefix, after, func(k, v []byte) (bool, error) {
		v, err := t.k.Open(k, v)
		if err != nil {
			return false, err
		}
		return fn(k, v)
	})
}

// State says what a store's meta/rootkey-check record says of it.
type State int

const (
	// New: the store has no check record; no server has run on it.
	New State = iota
	// Legacy: its records were written before they were authenticated.
	Legacy
	// Authenticated: every record but the exempt ones carries its tag.
	Authenticated
)

// ReadState opens the check record of tx's store with root. A root key
// that does not open it is ErrWrongRootKey; a text it does not know, from
// a later version, is an error.
func ReadState(tx store.Tx, root *keys.RootKey) (State, error) {
	sealed, err := tx.Get(keys.RootCheckRecord)
	if errors.Is(err, store.ErrNotFound) {
		return New, nil
	}
	if err != nil {
		return 0, err
	}
	return CheckState(root, sealed)
}

// CheckState opens sealed, the value of a store's check record, with root
// and returns the state it says, as ReadState.
func CheckState(root *keys.RootKey, sealed []byte) (State, error) {
	plain, err := root.Open(keys.RootCheckRecord, sealed)
	if err != nil {
		return 0, ErrWrongRootKey
	}
	switch string(plain) {
	case CheckText:
		return Authenticated, nil
	case legacyCheckText:
		return Legacy, nil
	}
	return 0, fmt.Errorf("the %s record says %q: the key store was written by a later version of the server", keys.RootCheckRecord, plain)
}

// CheckRecord returns the value of a new store's check record under root.
func CheckRecord(root *keys.RootKey) []byte {
	return root.Seal(keys.RootCheckRecord, []byte(CheckText))
}

// Opened says what Open did to a store before serving it.
type Opened struct {
	// Upgraded counts the records of a store from before authentication
	// that Open gave their tags.
	Upgraded int
	// PutBack names a record that carried its tag in a store whose check
	// record said its records were from before authentication: the check
	// record was put back as it was before the store was upgraded. Open
	// tagged nothing, so that what was changed since in the clear still
	// fails to read, and wrote the check record again as it was.
	PutBack string
}

// Open returns st with its records authenticated under root (Wrap). A
// store without a check record gets one saying its records are
// authenticated. A store from before authentication gets, if upgrade, a
// tag on each of its records and its check record rewritten, in one
// transaction, and is otherwise refused with ErrNotUpgraded: a store from
// before and one whose tags were all taken off and whose old check
// record was put back look the same, and only whoever runs the server
// knows which it has. Nodes starting together on one store upgrade it
// once.
//
// A store whose check record says it is from before, but one of whose
// records carries its tag, is not upgraded: its records were
// authenticated, and the old check record was put back by someone who
// wants what they wrote in the clear authenticated. Open serves it as
// authenticated, whatever upgrade says, and says so in Opened.PutBack.
func Open(ctx context.Context, st store.Store, root *keys.RootKey, upgrade bool) (store.Store, Opened, error) {
	var state State
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		state, err = ReadState(tx, root)
		return err
	})
	if err != nil {
		return nil, Opened{}, err
	}
	k := NewKey(root)
	var o Opened
	if state != Authenticated {
		if o, err = authenticate(ctx, st, root, k, upgrade); err != nil {
			return nil, Opened{}, err
		}
	}
	return Wrap(st, k), o, nil
}

// authenticate makes the store st, whose check record is missing or says
// its records are from before, one whose records are authenticated, as
// Open says.
func authenticate(ctx context.Context, st store.Store, root *keys.RootKey, k Key, upgrade bool) (Opened, error) {
	var o Opened
	err := st.Update(ctx, func(tx store.Tx) error {
		o = Opened{}
		state, err := ReadState(tx, root)
		switch {
		case err != nil:
			return err
		case state == Authenticated: // another node was first
			return nil
		case state == New:
			return tx.Put(keys.RootCheckRecord, CheckRecord(root))
		}
		type record struct{ k, v []byte }
		var all []record
		err = tx.Scan(nil, nil, func(name, v []byte) (bool, error) {
			if Exempt(name) {
				return true, nil
			}
			if _, err := k.Open(name, v); err == nil {
				o.PutBack = string(name)
				return false, nil
			}
			all = append(all, record{bytes.Clone(name), k.Seal(name, v)})
			return true, nil
		})
		if err != nil {
			return err
		}
		if o.PutBack == "" {
			if !upgrade {
				return ErrNotUpgraded
			}
			for _, r := range all {
				if err := tx.Put(r.k, r.v); err != nil {
					return err
				}
			}
			o.Upgraded = len(all)
		}
		return tx.Put(keys.RootCheckRecord, CheckRecord(root))
	})
	return o, err
}
