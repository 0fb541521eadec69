// Package pgstore implements store.Store on PostgreSQL, for a cluster of
// identical nodes that share one database.
//
// All records live in one table, kms_records(k bytea primary key, v bytea).
// Open creates it, and migrates it as this package evolves, recording the
// schema version in kms_schema_migrations. A View is a READ ONLY REPEATABLE
// READ transaction; an Update is SERIALIZABLE and is retried after a
// serialization failure or a deadlock. An Update that returned nil is
// committed under the server's synchronous_commit setting (on by default:
// flushed to the WAL before COMMIT returns).
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
	// maxAttempts bounds the retries of an Update that keeps conflicting.
	maxAttempts = 20
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
	return &Store{pool: pool, connConfig: cfg.ConnConfig, closing: make(chan struct{})}, nil
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
	return &Store{pool: pool, connConfig: s.connConfig, closing: make(chan struct{})}, nil
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

// View implements store.Store. fn sees one consistent snapshot.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	_, err := s.attempt(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
	return err
}

// Update implements store.Store. It retries fn, after a short random pause,
// when PostgreSQL reports a serialization failure or a deadlock, at most 20
// times. When the changes commit, every Watch in the cluster hears of them.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	for attempt := 1; ; attempt++ {
		retry, err := s.attempt(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable}, fn)
		if !retry || attempt == maxAttempts {
			return err
		}
		// Full jitter over an exponential ceiling: 2 ms, 4 ms, ... 100 ms.
		ceiling := min(time.Millisecond<<attempt, 100*time.Millisecond)
		t := time.NewTimer(rand.N(ceiling))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// attempt runs fn once in a transaction with opts. retry reports that the
// transaction failed on a conflict with another one and may succeed if run
// again.
func (s *Store) attempt(ctx context.Context, opts pgx.TxOptions, fn func(store.Tx) error) (retry bool, err error) {
	if s.closed.Load() {
		return false, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	ptx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		if s.closed.Load() {
			return false, store.ErrClosed
		}
		return isConflict(err), fmt.Errorf("pgstore: begin: %w", err)
	}
	defer ptx.Rollback(context.WithoutCancel(ctx))

	t := &txn{ctx: ctx, tx: ptx, readOnly: opts.AccessMode == pgx.ReadOnly}
	err = fn(t)
	if t.conflict != nil {
		// fn saw a statement fail on a conflict. Whatever it returned was
		// decided on a transaction PostgreSQL has already aborted.
		return true, t.conflict
	}
	if err != nil {
		return false, err
	}
	if err := t.notify(); err != nil {
		return isConflict(err), err
	}
	if err := ptx.Commit(ctx); err != nil {
		return isConflict(err), fmt.Errorf("pgstore: commit: %w", err)
	}
	return false, nil
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
	readOnly bool
	// conflict is the first serialization failure or deadlock a statement
	// reported; the transaction is aborted from then on.
	conflict error
	// changed holds the keys written or deleted, for the notification.
	changed map[string]struct{}
}

// check records err if it is a conflict, and wraps it.
func (t *txn) check(op string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("pgstore: %s: %w", op, err)
	if t.conflict == nil && isConflict(err) {
		t.conflict = err
	}
	return err
}

func (t *txn) changedKey(key []byte) {
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
