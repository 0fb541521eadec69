package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
)

// ErasedRecord marks a store from which a change erased secret material
// (the sealed material of a deleted key, imported material deleted or
// expired, a deleted access key's secret) that its files may still hold:
// bbolt keeps what a change deleted or replaced in the file's free pages
// until it reuses them, PostgreSQL in the table's dead tuples until it is
// rewritten. It is written in the transaction of the erasure, so that it
// is on every node of a cluster and survives a restart; the server's
// maintenance round compacts the store while it is there, then removes it
// (TakeErased).
var ErasedRecord = []byte("meta/erased")

// NoteErased writes ErasedRecord in tx, with a value no earlier erasure
// wrote: a compaction that began before this erasure removes only the
// value it read (TakeErased), and so leaves this one's mark for the next.
func NoteErased(tx Tx) error {
	return tx.Put(ErasedRecord, []byte(rand.Text()))
}

// Erased returns the value of ErasedRecord in st, or nil if no erasure is
// waiting for a compaction.
func Erased(ctx context.Context, st Store) ([]byte, error) {
	var mark []byte
	err := st.View(ctx, func(tx Tx) error {
		var err error
		mark, err = tx.Get(ErasedRecord)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return mark, err
}

// TakeErased removes ErasedRecord from st if it still holds mark, the
// value Erased returned before a compaction: the erasures it marked are
// gone from the store's files. A mark written since (by an erasure the
// compaction may have missed) stays.
func TakeErased(ctx context.Context, st Store, mark []byte) error {
	return st.Update(ctx, func(tx Tx) error {
		cur, err := tx.Get(ErasedRecord)
		if errors.Is(err, ErrNotFound) || err == nil && !bytes.Equal(cur, mark) {
			return nil
		}
		if err != nil {
			return err
		}
		return tx.Delete(ErasedRecord)
	})
}
