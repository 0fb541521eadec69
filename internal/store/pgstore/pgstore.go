// Package pgstore implements store.Store on PostgreSQL, for a cluster of
// identical nodes that share one database.
//
// All records live in one table, kms_records(k bytea primary key, v bytea).
// Open creates it, and migrates it as this package evolves, recording the
// schema version in kms_schema_migrations. A View is a READ ONLY REPEATABLE
// READ transaction; an Update is SERIALIZABLE and is retried after a
// serialization failure or a deadlock. An Update that returned nil is
// committed under the server's synchronous_commit setting (on by default:
// flushed to the WAL before COMMIT returns). A View or Update whose
// connection PostgreSQL had ended (pg_terminate_backend, a restart) is run
// again at once on another connection if the connection was found closed
// before COMMIT was sent, which PostgreSQL then cannot have committed; a
// COMMIT that fails is never run again, and one whose answer was lost
// with its connection is looked up (txid_status, PostgreSQL 10 and
// later), so that an Update committed returns nil.
//
// Besides the store.Store contract, pgstore gives the cluster two things:
// Watch, which reports the keys every node's Updates change, so that a node
// can keep a cache coherent; and TryLead, a lease for work that one node of
// the cluster should do at a time.
//
// Limits: keys and values are bytea, so each is at most 1 GB (PostgreSQL's
// field limit), and a Scan holds one batch of 256 records in memory. A
// change notification names at most about 7000 bytes of keys; a larger
// change is reported as "everything may have changed". Watch and TryLead
// hold session state (LISTEN, advisory locks), so they do not work through
// a pooler in transaction mode, such as PgBouncer's.
package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openkms/kms/internal/store"
)

const (
	// conflictBudget bounds the time an Update that keeps conflicting is
	// retried for. A conflict means another transaction committed, so the
	// cluster as a whole progresses; the budget is one caller's bound.
	conflictBudget = 5 * time.Second
	// scanBatch is how many records a Scan reads per query.
	scanBatch = 256
)

// Store is a store.Store backed by a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	// connConfig configures the dedicated connections of Watch and TryLead,
	// which live outside the pool.
	connConfig *pgx.ConnConfig
	closed     atomic.Bool
	// closing is closed by Close; it ends running Watch calls.
	closing chan struct{}
	// lostRetries bounds the runs again of a transaction whose connection
	// was found closed: one more than the pool holds, so that a pool of
	// connections all ended by a restart of PostgreSQL is gone through.
	lostRetries int
	// now is the clock of conflictBudget; a test's, or time.Now.
	now func() time.Time
	// afterRewrite, if set, runs between Compact's rewrite and its check
	// for the snapshots the rewrite kept rows for: a test's hook.
	afterRewrite func()
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by dsn (a URL or keyword/value
// connection string, as libpq accepts) and brings its schema to the version
// this binary knows. Several nodes may Open the same database at once. It
// refuses a database whose schema is newer than this binary. Open fails when
// ctx is done, so give it a deadline. The DSN may also set the pool, as in
// pool_max_conns=20 (see pgxpool.ParseConfig).
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's ParseConfigError redacts the password.
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		// pgx's error names the user and database, never the password.
		addr := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
		return nil, fmt.Errorf("pgstore: cannot connect to PostgreSQL at %s: %w", addr, err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return newStore(pool, cfg.ConnConfig), nil
}

func newStore(pool *pgxpool.Pool, connConfig *pgx.ConnConfig) *Store {
	return &Store{pool: pool, connConfig: connConfig, closing: make(chan struct{}), lostRetries: int(pool.Config().MaxConns) + 1, now: time.Now}
}

// Pool returns the Store's connection pool, for packages that keep tables
// of their own in the same database (the audit trail). It is closed by
// Close.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Sibling opens another Store on the Store's database, with a pool of
// its own of at most maxConns connections: for reads that must not wait
// behind the Store's transactions for a connection (a node's reads of the
// records other nodes changed). Close it apart; it has no schema work to
// do, the Store's Open did it.
func (s *Store) Sibling(ctx context.Context, maxConns int32) (*Store, error) {
	pool, err := s.NewPool(ctx, maxConns)
	if err != nil {
		return nil, err
	}
	return newStore(pool, s.connConfig), nil
}

// NewPool opens another pool of at most maxConns connections to the
// Store's database, with the Store's connection settings, for work that
// must not wait behind the Store's transactions for a connection: the
// audit trail, which every call commits a record to, while the calls
// that hold the Store's connections may wait on a lock for as long as
// another client keeps it. The caller closes it; Close does not.
func (s *Store) NewPool(ctx context.Context, maxConns int32) (*pgxpool.Pool, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	cfg := s.pool.Config()
	cfg.MaxConns, cfg.MinConns = maxConns, 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	return pool, nil
}

// View implements store.Store. fn sees one consistent snapshot. It is
// run again on another connection when its own was found closed.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	for lost := 0; ; lost++ {
		again, err := s.attempt(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
		if again != retryLost || lost == s.lostRetries || ctx.Err() != nil {
			return err
		}
	}
}

// Update implements store.Store. It retries fn, after a short random pause,
// when PostgreSQL reports a serialization failure or a deadlock, for up to
// 5 seconds (a count would starve a caller whose pauses have grown, under
// writers whose pauses are still short); and at once, on another connection, when its connection was
// found closed before COMMIT was sent (ended by PostgreSQL while it sat in
// the pool), as many times as the pool holds connections. When the changes
// commit, every Watch in the cluster hears of them.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	lost := 0
	deadline := s.now().Add(conflictBudget)
	for attempt := 1; ; attempt++ {
		again, err := s.attempt(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable}, fn)
		if again == retryLost && lost < s.lostRetries && ctx.Err() == nil {
			lost++
			attempt--
			continue
		}
		if again != retryConflict || !s.now().Before(deadline) {
			return err
		}
		// Full jitter over an exponential ceiling: 2 ms, 4 ms, ... 100 ms.
		ceiling := min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)
		t := time.NewTimer(rand.N(ceiling))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// retry says whether a failed attempt may be run again.
type retry int

const (
	retryNot      retry = iota
	retryConflict       // it lost a race with another transaction
	// retryLost: its connection was found closed before COMMIT was sent,
	// so PostgreSQL rolled it back (a session that ends does).
	retryLost
)

// attempt runs fn once in a transaction with opts, and says whether it
// may be run again.
func (s *Store) attempt(ctx context.Context, opts pgx.TxOptions, fn func(store.Tx) error) (retry, error) {
	if s.closed.Load() {
		return retryNot, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return retryNot, err
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		if s.closed.Load() {
			return retryNot, store.ErrClosed
		}
		return retryNot, fmt.Errorf("pgstore: begin: %w", err)
	}
	defer c.Release() // after the Rollback below; a closed connection leaves the pool
	ptx, err := c.BeginTx(ctx, opts)
	if err != nil {
		if s.closed.Load() {
			return retryNot, store.ErrClosed
		}
		err = fmt.Errorf("pgstore: begin: %w", err)
		if lost(ctx, c.Conn()) {
			return retryLost, err
		}
		return conflictRetry(err), err
	}
	defer ptx.Rollback(context.WithoutCancel(ctx))

	t := &txn{ctx: ctx, tx: ptx, conn: c.Conn(), readOnly: opts.AccessMode == pgx.ReadOnly}
	err = fn(t)
	if t.conflict != nil {
		// fn saw a statement fail on a conflict. Whatever it returned was
		// decided on a transaction PostgreSQL has already aborted.
		return retryConflict, t.conflict
	}
	if t.lost != nil {
		// fn saw a statement fail on a closed connection, before COMMIT:
		// nothing it did was committed, whatever it returned.
		return retryLost, t.lost
	}
	if err != nil {
		return retryNot, err
	}
	if err := t.notify(); err != nil {
		if t.lost != nil {
			return retryLost, err
		}
		return conflictRetry(err), err
	}
	// A COMMIT that fails, on a closed connection too, may have been
	// committed: it is never run again. One whose answer was lost with
	// its connection (the call's context ended, the connection broke) is
	// looked up, so that a change made is not reported as failed.
	if err := ptx.Commit(ctx); err != nil {
		if c.Conn().IsClosed() && t.xid != 0 && s.committed(ctx, t.xid) {
			return retryNot, nil
		}
		return conflictRetry(err), fmt.Errorf("pgstore: commit: %w", err)
	}
	return retryNot, nil
}

// commitLookup bounds the lookup of a COMMIT whose answer was lost.
const commitLookup = 5 * time.Second

// committed reports whether the transaction xid, whose COMMIT was sent
// on a connection that closed before its answer came, was committed: as
// PostgreSQL says on another connection, within commitLookup, whatever
// ctx's state (the call's context that ended is what closed it). A
// transaction still in progress (its COMMIT waiting, for a synchronous
// standby say) is asked after again until the bound; false when it is
// not known to be committed by then.
func (s *Store) committed(ctx context.Context, xid int64) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitLookup)
	defer cancel()
	for {
		var status *string
		err := s.pool.QueryRow(ctx, `SELECT txid_status($1)`, xid).Scan(&status)
		switch {
		case err != nil || status == nil:
			return false
		case *status != "in progress":
			return *status == "committed"
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// conflictRetry is retryConflict if err is a conflict, else retryNot.
func conflictRetry(err error) retry {
	if isConflict(err) {
		return retryConflict
	}
	return retryNot
}

// lost reports whether a statement that failed on conn failed because
// the connection was gone (PostgreSQL ended the session, or it broke),
// not because ctx, the call's, was done: pgx closes a connection whose
// statement it interrupts for a cancelled context, and such a call is
// not run again.
func lost(ctx context.Context, conn *pgx.Conn) bool {
	return conn.IsClosed() && ctx.Err() == nil
}

// isConflict reports whether err is a serialization failure or a deadlock:
// the transaction lost a race with another one and may be run again.
func isConflict(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// Close implements store.Store. It waits for running transactions, then
// closes the connection pool and ends running Watch calls. Leases taken
// with TryLead are independent of the Store: close them yourself.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	close(s.closing)
	s.pool.Close()
	return nil
}

var (
	errReadOnly = errors.New("pgstore: write in a read-only transaction")
	errEmptyKey = errors.New("pgstore: empty key")
)

// txn is a store.Tx on one PostgreSQL transaction.
type txn struct {
	ctx      context.Context
	tx       pgx.Tx
	conn     *pgx.Conn // tx's
	readOnly bool
	// conflict is the first serialization failure or deadlock a statement
	// reported; the transaction is aborted from then on.
	conflict error
	// lost is the error of the first statement that found the connection
	// closed; nothing of the transaction can be committed from then on.
	lost error
	// xid is the transaction's id, once notify has learnt it.
	xid int64
	// changed holds the keys written or deleted, for the notification.
	changed map[string]struct{}
}

// check records err if it is a conflict or found the connection closed,
// and wraps it.
func (t *txn) check(op string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("pgstore: %s: %w", op, err)
	if t.conflict == nil && isConflict(err) {
		t.conflict = err
	}
	if t.lost == nil && lost(t.ctx, t.conn) {
		t.lost = err
	}
	return err
}

func (t *txn) changedKey(key []byte) {
	if store.Unwatched(key) {
		return
	}
	if t.changed == nil {
		t.changed = make(map[string]struct{})
	}
	t.changed[string(key)] = struct{}{}
}

func (t *txn) Get(key []byte) ([]byte, error) {
	var v []byte
	// pgx copies a bytea into a new slice, so v is the caller's.
	err := t.tx.QueryRow(t.ctx, `SELECT v FROM kms_records WHERE k = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return v, t.check("get", err)
}

func (t *txn) Put(key, value []byte) error {
	if t.readOnly {
		return errReadOnly
	}
	if len(key) == 0 {
		return errEmptyKey
	}
	if value == nil {
		value = []byte{} // pgx sends a nil slice as NULL
	}
	_, err := t.tx.Exec(t.ctx, `INSERT INTO kms_records (k, v) VALUES ($1, $2)
		ON CONFLICT (k) DO UPDATE SET v = excluded.v`, key, value)
	if err != nil {
		return t.check("put", err)
	}
	t.changedKey(key)
	return nil
}

func (t *txn) Delete(key []byte) error {
	if t.readOnly {
		return errReadOnly
	}
	tag, err := t.tx.Exec(t.ctx, `DELETE FROM kms_records WHERE k = $1`, key)
	if err != nil {
		return t.check("delete", err)
	}
	if tag.RowsAffected() > 0 {
		t.changedKey(key)
	}
	return nil
}

// Scan reads scanBatch records per query and closes the rows before calling
// fn, so that fn may use the transaction and a scan that stops early reads
// little more than it used. Each query is a range on the primary key:
// k >= prefix AND k > after AND k < prefixEnd.
func (t *txn) Scan(prefix, after []byte, fn func(key, value []byte) (bool, error)) error {
	if prefix == nil {
		prefix = []byte{}
	}
	if after == nil {
		after = []byte{} // every key is greater: keys are never empty
	}
	query := `SELECT k, v FROM kms_records WHERE k >= $1 AND k > $2 ORDER BY k LIMIT $3`
	args := []any{prefix, after, scanBatch}
	if end := prefixEnd(prefix); end != nil {
		query = `SELECT k, v FROM kms_records WHERE k >= $1 AND k > $2 AND k < $4 ORDER BY k LIMIT $3`
		args = append(args, end)
	}
	type record struct{ k, v []byte }
	batch := make([]record, 0, scanBatch)
	for {
		batch = batch[:0]
		rows, _ := t.tx.Query(t.ctx, query, args...)
		var r record
		_, err := pgx.ForEachRow(rows, []any{&r.k, &r.v}, func() error {
			batch = append(batch, r)
			return nil
		})
		if err != nil {
			return t.check("scan", err)
		}
		for _, r := range batch {
			more, err := fn(r.k, r.v)
			if err != nil || !more {
				return err
			}
		}
		if len(batch) < scanBatch {
			return nil
		}
		args[1] = batch[len(batch)-1].k
	}
}

// prefixEnd returns the least key greater than every key that starts with
// prefix, or nil if there is none (prefix is empty or all 0xff).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
