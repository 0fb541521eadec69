package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
)

// ErasedPrefix begins the names of the records that mark a store from
// which a change erased secret material (the sealed material of a
// deleted key, imported material deleted or expired, a deleted access
// key's secret, a console password's hash replaced or deleted) that its
// files may still hold: bbolt keeps what a change
// deleted or replaced in the file's free pages until it reuses them,
// PostgreSQL in the table's dead tuples until it is rewritten. A mark is
// written in the transaction of the erasure, so that it is on every node
// of a cluster and survives a restart; the server's maintenance round
// compacts the store while one is there, then removes the marks it read
// (TakeErased).
//
// Each erasure writes a record of its own, ErasedPrefix + "/" + a random
// name: erasures made at once (by callers of several nodes) would
// conflict over one record, each failing and being retried for every
// other that committed first, and under a load of them fail for good.
// The prefix takes in the one record meta/erased that every erasure
// rewrote before.
var ErasedPrefix = []byte("meta/erased")

// foldAbove bounds the marks a store keeps while its compactions fail or
// are not permitted: past it, FoldErased makes them one.
const foldAbove = 64

// Mark is an erasure's mark as Erased read it.
type Mark struct{ Name, Value []byte }

// NoteErased writes a new mark in tx (ErasedPrefix).
func NoteErased(tx Tx) error {
	return tx.Put(newMarkName(), []byte(rand.Text()))
}

func newMarkName() []byte {
	return append(append(bytes.Clone(ErasedPrefix), '/'), rand.Text()...)
}

// Erased returns the marks in st: none if no erasure is waiting for a
// compaction.
func Erased(ctx context.Context, st Store) ([]Mark, error) {
	var marks []Mark
	err := st.View(ctx, func(tx Tx) error {
		marks = marks[:0]
		return tx.Scan(ErasedPrefix, nil, func(k, v []byte) (bool, error) {
			marks = append(marks, Mark{bytes.Clone(k), bytes.Clone(v)})
			return true, nil
		})
	})
	return marks, err
}

// TakeErased removes from st the marks that Erased returned before a
// compaction, those that still hold the value it read: the erasures they
// marked are gone from the store's files. A mark written since (by an
// erasure the compaction may have missed) stays.
func TakeErased(ctx context.Context, st Store, marks []Mark) error {
	return st.Update(ctx, func(tx Tx) error {
		for _, m := range marks {
			cur, err := tx.Get(m.Name)
			if errors.Is(err, ErrNotFound) || err == nil && !bytes.Equal(cur, m.Value) {
				continue
			}
			if err != nil {
				return err
			}
			if err := tx.Delete(m.Name); err != nil {
				return err
			}
		}
		return nil
	})
}

// FoldErased makes marks, read by Erased, one new mark if there are more
// than a few (64), and returns the marks st holds for them then: a store
// whose compactions keep failing, or are not permitted, must not keep a
// record for every erasure since. The new mark is as new as the fold: it
// stands for every erasure the marks stood for.
func FoldErased(ctx context.Context, st Store, marks []Mark) ([]Mark, error) {
	if len(marks) <= foldAbove {
		return marks, nil
	}
	folded := Mark{Name: newMarkName(), Value: []byte(rand.Text())}
	err := st.Update(ctx, func(tx Tx) error {
		for _, m := range marks {
			if err := tx.Delete(m.Name); err != nil {
				return err
			}
		}
		return tx.Put(folded.Name, folded.Value)
	})
	if err != nil {
		return nil, err
	}
	return []Mark{folded}, nil
}
