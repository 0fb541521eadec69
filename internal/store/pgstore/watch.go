package pgstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/openkms/kms/internal/store"
)

// Change notifications go through PostgreSQL's LISTEN/NOTIFY on one channel.
// The payload is the changed keys, hex-encoded, one per line, or "*" when
// they would not fit: PostgreSQL refuses payloads of 8000 bytes or more.
const (
	notifyChannel     = "kms_changes"
	maxPayload        = 7000
	payloadEverything = "*"
)

// notify queues, in the transaction, a notification naming the changed
// keys. PostgreSQL delivers it only if the transaction commits. It also
// learns the transaction's id, in the same round trip, so that a COMMIT
// whose answer is lost can be looked up (committed).
func (t *txn) notify() error {
	if len(t.changed) == 0 {
		return nil
	}
	err := t.tx.QueryRow(t.ctx, `SELECT pg_notify($1, $2), txid_current()`, notifyChannel, payload(t.changed)).Scan(nil, &t.xid)
	return t.check("notify", err)
}

func payload(changed map[string]struct{}) string {
	keys := make([]string, 0, len(changed))
	size := 0
	for k := range changed {
		keys = append(keys, k)
		size += 2*len(k) + 1
	}
	if size > maxPayload {
		return payloadEverything
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(size)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(hex.EncodeToString([]byte(k)))
	}
	return b.String()
}

// parsePayload returns the keys a payload names, or nil for "everything".
func parsePayload(p string) [][]byte {
	if p == payloadEverything || p == "" {
		return nil
	}
	lines := strings.Split(p, "\n")
	keys := make([][]byte, 0, len(lines))
	for _, line := range lines {
		k, err := hex.DecodeString(line)
		if err != nil {
			return nil // not ours, or damaged: assume the worst
		}
		keys = append(keys, k)
	}
	return keys
}

// Watch calls fn with the keys changed by each committed Update of any
// Store on this database, this one included, until ctx is done or the Store
// is closed; it then returns ctx.Err() or store.ErrClosed.
//
// fn(nil) means that any key may have changed. Watch calls it once it
// listens, before any other call, and again after each reconnection, since
// changes made while it was disconnected are lost; and for a transaction
// that changed too many keys to name. A cache that empties itself on
// fn(nil) therefore never serves a value older than the last fn call.
//
// Ordering: PostgreSQL delivers a notification only after the transaction
// it describes has committed, and delivers notifications in commit order.
// So when fn is called with a key, a View started from then on sees that
// change or a later one.
//
// fn runs on the Watch goroutine, one call at a time; while it runs,
// notifications wait in PostgreSQL's queue. Watch uses a connection of its
// own, outside the pool, and reconnects with backoff (100 ms to 10 s) when
// it breaks.
func (s *Store) Watch(ctx context.Context, fn func(keys [][]byte)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()

	const minPause, maxPause = 100 * time.Millisecond, 10 * time.Second
	pause := minPause
	for {
		if s.listen(ctx, fn) {
			pause = minPause
		}
		if ctx.Err() != nil {
			if s.closed.Load() {
				return store.ErrClosed
			}
			return ctx.Err()
		}
		t := time.NewTimer(pause/2 + rand.N(pause/2))
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		pause = min(2*pause, maxPause)
	}
}

// listen connects, listens and passes notifications to fn until the
// connection breaks or ctx is done. It reports whether it got as far as
// listening.
//
// A connection that goes silent (a half-open TCP connection, a server
// process stopped) would leave the caches trusting their entries until
// their maximum age on every read, with nothing logged: after
// listenCheck without a notification the connection is pinged, and one
// that does not answer within listenCheck is given up and made again
// (which empties the caches, fn(nil)).
func (s *Store) listen(ctx context.Context, fn func(keys [][]byte)) (listened bool) {
	cctx, cancel := context.WithTimeout(ctx, 2*listenCheck)
	conn, err := pgx.ConnectConfig(cctx, s.connConfig.Copy())
	if err == nil {
		_, err = conn.Exec(cctx, fmt.Sprintf("LISTEN %s", notifyChannel))
		if err != nil {
			closeConn(conn)
		}
	}
	cancel()
	if err != nil {
		return false
	}
	defer closeConn(conn)
	fn(nil)
	for {
		wctx, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			fn(parsePayload(n.Payload))
			continue
		}
		if ctx.Err() != nil || !pgconn.Timeout(err) {
			return true
		}
		pctx, cancel := context.WithTimeout(ctx, listenCheck)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return true
		}
	}
}

// listenCheck is how long the notification connection may be silent
// before it is pinged, and how long a ping or a connection may take.
const listenCheck = 5 * time.Second
