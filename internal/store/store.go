// Package store defines the small transactional key-value interface that
// every durable record of the service goes through.
//
// Keys are byte strings ordered lexicographically; values are opaque bytes.
// Records are grouped by key prefix ("key/", "alias/", ...), and a prefix scan
// returns them in key order, which is what pagination relies on.
//
// Implementations: boltstore (embedded, one file) and pgstore (PostgreSQL,
// shared by the nodes of a cluster). The contract below is checked for
// every implementation by the conformance suite in storetest.
package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// UnfinishedCopyRecord is written by kms migrate or kms restore into the
// store it copies to before anything else, and deleted once the copy is
// whole and verified: a server refuses to start on a store that holds it,
// which is part of a copy cut short and would otherwise be served with
// records missing.
var UnfinishedCopyRecord = []byte("meta/copy-unfinished")

// ErrUnfinishedCopy is returned for a store that kms migrate or kms
// restore began to copy into and did not finish (it holds
// UnfinishedCopyRecord).
var ErrUnfinishedCopy = errors.New("the key store holds part of a copy that kms migrate or kms restore did not finish (" + string(UnfinishedCopyRecord) + " is there): " +
	"empty it and copy it again")

// CheckCopyFinished returns ErrUnfinishedCopy if tx's store holds
// UnfinishedCopyRecord.
func CheckCopyFinished(tx Tx) error {
	switch _, err := tx.Get(UnfinishedCopyRecord); {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	return ErrUnfinishedCopy
}

// UnwatchedPrefix is the key prefix of records no node caches: a change
// to them is not announced to the other nodes of a cluster (pgstore's
// notifications). The audit outbox (internal/outbox) keeps its entries
// under it, one written and one deleted for each call that changes
// something.
const UnwatchedPrefix = "outbox/"

// Unwatched reports whether no node caches the record named key, so that
// a change to it is not announced to the other nodes of a cluster: the
// audit outbox's entries (UnwatchedPrefix) and the marks of erasures
// (ErasedPrefix), which the node that compacts deletes in bulk, and
// whose announcement, too long to name them, would make every node
// empty its caches.
func Unwatched(key []byte) bool {
	return bytes.HasPrefix(key, []byte(UnwatchedPrefix)) || bytes.HasPrefix(key, ErasedPrefix)
}

// ErrNotFound is returned by Tx.Get when the key has no value.
var ErrNotFound = errors.New("store: not found")

// ErrUnauthenticated is returned by a store that authenticates its
// records (internal/authstore) for a read of a record changed, moved or
// made outside the server, by someone without the root key.
var ErrUnauthenticated = errors.New("the record is not authenticated under the root key: it was changed outside the server")

// UnauthenticatedError is the error of a read of the record Key that a
// store authenticating its records refused (errors.Is ErrUnauthenticated).
type UnauthenticatedError struct{ Key []byte }

func (e *UnauthenticatedError) Error() string {
	return fmt.Sprintf("record %q: %v", e.Key, ErrUnauthenticated)
}

func (e *UnauthenticatedError) Unwrap() error { return ErrUnauthenticated }

// ScanReadable is tx.Scan that goes on past the records of the scanned
// range that do not read (UnauthenticatedError), passing each error to
// skipped, for a pass over many records that one changed outside the
// server must not stop. An error of fn is returned as Scan returns it.
func ScanReadable(tx Tx, prefix, after []byte, fn func(key, value []byte) (bool, error), skipped func(error)) error {
	for {
		fnFailed := false
		err := tx.Scan(prefix, after, func(k, v []byte) (bool, error) {
			more, err := fn(k, v)
			fnFailed = err != nil
			return more, err
		})
		var ue *UnauthenticatedError
		// Only a record of the range that Scan met after where it began,
		// so that the scan moves on: a record fn read is fn's error.
		if fnFailed || !errors.As(err, &ue) || !bytes.HasPrefix(ue.Key, prefix) || bytes.Compare(ue.Key, after) <= 0 {
			return err
		}
		skipped(err)
		after = ue.Key
	}
}

// ErrClosed is returned by View and Update after Close.
var ErrClosed = errors.New("store: closed")

// Store is a durable, transactional key-value store.
//
// View and Update may be called from many goroutines at once. A transaction
// sees a consistent snapshot; an Update either commits every change it made
// or none. When Update returns nil the changes are durable: they survive a
// process kill or a power loss of the machine (within the guarantees of the
// underlying file system or database).
type Store interface {
	// View runs fn in a read-only transaction. fn may be called more than
	// once if the implementation retries; it must not have side effects
	// outside the transaction. Writes inside fn fail with an error.
	View(ctx context.Context, fn func(Tx) error) error

	// Update runs fn in a read-write transaction and commits when fn returns
	// nil. If fn returns an error the transaction is rolled back and that
	// error is returned unchanged. fn may be called more than once if the
	// implementation retries after a conflict; it must not have side effects
	// outside the transaction.
	Update(ctx context.Context, fn func(Tx) error) error

	// Close waits for running transactions and releases the store. Calls
	// after Close fail with ErrClosed.
	Close() error
}

// Tx is one transaction. It is valid only inside the function it was passed
// to and must not be used from another goroutine.
type Tx interface {
	// Get returns the value stored under key, or ErrNotFound. The returned
	// slice is owned by the caller.
	Get(key []byte) ([]byte, error)

	// Put stores value under key, replacing any previous value. key must
	// not be empty.
	Put(key, value []byte) error

	// Delete removes key. Deleting an absent key is not an error.
	Delete(key []byte) error

	// Scan calls fn for each key that starts with prefix and is strictly
	// greater than after (after may be nil), in ascending key order, until
	// fn returns false or an error. The slices passed to fn are valid only
	// during the call. fn may call Get, but must not Put or Delete: bbolt
	// does not allow changes during a scan.
	Scan(prefix, after []byte, fn func(key, value []byte) (bool, error)) error
}
