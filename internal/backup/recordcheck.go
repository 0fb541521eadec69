package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/rekey"
	"github.com/openkms/kms/internal/store"
)

// recordCheck checks the records of a key store, given one at a time in
// any order, as a restore does before it writes them: it opens every
// sealed value with the root key, checks every record's tag if the
// store's records are authenticated (internal/authstore), and makes sure
// it is a key store (it holds the root key check record) and not part of a
// copy cut short (store.UnfinishedCopyRecord, which no server starts on:
// restored, the part would look whole). A backup checks its records so
// too, so that one a restore would refuse is not written.
type recordCheck struct {
	root     *keys.RootKey
	c        contents
	h        hash.Hash
	found    bool
	state    authstore.State
	untagged []byte // the first record without a good tag
}

func newRecordCheck(root *keys.RootKey) *recordCheck {
	return &recordCheck{root: root, h: sha256.New(), state: authstore.Legacy}
}

// add checks one record.
func (r *recordCheck) add(name, value []byte) error {
	if bytes.Equal(name, store.UnfinishedCopyRecord) {
		return store.ErrUnfinishedCopy
	}
	if bytes.Equal(name, keys.RootCheckRecord) {
		r.found = true
		var err error
		if r.state, err = authstore.CheckState(r.root, value); err != nil {
			return fmt.Errorf("the backup does not open with this root key: %w", err)
		}
	}
	_, n, tagged, err := rekey.Rewrap(name, value, r.root, nil)
	if err != nil {
		return fmt.Errorf("the backup does not open with this root key: %w", err)
	}
	if !tagged && r.untagged == nil && !authstore.Exempt(name) {
		r.untagged = bytes.Clone(name)
	}
	r.c.sealed += n
	r.c.records++
	r.h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(name))))
	r.h.Write(name)
	r.h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(value))))
	r.h.Write(value)
	return nil
}

// result returns what the records added hold, or the first reason a
// restore would refuse them.
func (r *recordCheck) result() (contents, error) {
	if !r.found {
		return r.c, fmt.Errorf("%w: it holds no %s record", ErrFormat, keys.RootCheckRecord)
	}
	if r.state == authstore.Authenticated && r.untagged != nil {
		return r.c, fmt.Errorf("the backup's record %q: %w", r.untagged, authstore.ErrUnauthenticated)
	}
	r.c.authenticated = r.state == authstore.Authenticated
	r.h.Sum(r.c.digest[:0])
	return r.c, nil
}
