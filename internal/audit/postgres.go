package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// In PostgreSQL (the tables of pgstore's migration 2), every server
// process appends to a chain of its own, so that the nodes of a cluster
// never wait for one another's records:
//
//	kms_audit_chains(chain, started_at, host)  one row per chain, written at start
//	kms_audit_records(chain, seq, line)        a record's line, without its newline
//	kms_audit_digests(chain, seq, line)        a digest's line; seq is the record it names
//	kms_audit_keys(chain, public_key)          the PEM key that checks the chain's digests
//
// A record's line is byte for byte the line a log file holds, so that one
// verifier serves both.

// pgTimeout bounds each statement the log and the digester run. A call
// whose record cannot be committed in this time is refused.
const pgTimeout = 10 * time.Second

// insertRecords writes a batch as one statement, committed on return.
const insertRecords = `INSERT INTO kms_audit_records (chain, seq, line)
	SELECT $1, $2::bigint + t.i - 1, t.line FROM unnest($3::text[]) WITH ORDINALITY AS t(line, i)`

// OpenPostgres starts a new chain for this process in the database of pool
// (whose schema pgstore.Open has migrated), registers it in the chain
// registry in the same transaction, and returns the log that appends to
// it. host names the node for people reading the trail; the
// chain's id is host, a hyphen and 16 random hex digits.
//
// Each batch of records is one INSERT in its own transaction: Append
// returns once it is committed, and every Append of a batch that failed
// returns the error. The next batch first reads the chain's last record
// back, so that the log goes on once the database answers again. Close
// leaves pool open.
func OpenPostgres(ctx context.Context, pool *pgxpool.Pool, host string) (*Log, error) {
	var id [8]byte
	rand.Read(id[:])
	chain := hex.EncodeToString(id[:])
	if host != "" {
		chain = host + "-" + chain
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO kms_audit_chains (chain, host) VALUES ($1, $2)`, chain, host); err != nil {
			return err
		}
		return register(ctx, tx, chain)
	})
	if err != nil {
		return nil, fmt.Errorf("audit: start a chain in PostgreSQL: %w", err)
	}
	return newLog(&pgSink{pool: pool, chain: chain}, chain, 0, genesis), nil
}

// pgSink is a chain in kms_audit_records.
type pgSink struct {
	pool  *pgxpool.Pool
	chain string
	rows  []string // scratch for write
}

func (s *pgSink) write(lines []byte, ends []int, first uint64) error {
	s.rows = s.rows[:0]
	start := 0
	for _, end := range ends {
		s.rows = append(s.rows, string(lines[start:end-1]))
		start = end
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	again, err := execAgainIfLost(ctx, s.pool, insertRecords, s.chain, int64(first), s.rows)
	if err != nil && again && isUniqueViolation(err) && s.holds(ctx, first, s.rows) {
		// The attempt whose connection broke was committed before its
		// answer was lost: the batch is in the chain as written, and its
		// calls, recorded, are answered.
		err = nil
	}
	if err != nil {
		return fmt.Errorf("audit: write to PostgreSQL: %w", err)
	}
	return nil
}

// holds reports whether the chain's records from seq first on are rows,
// read on a connection of the pool.
func (s *pgSink) holds(ctx context.Context, first uint64, rows []string) bool {
	stored, err := s.pool.Query(ctx, `SELECT line FROM kms_audit_records WHERE chain = $1 AND seq >= $2 AND seq < $3 ORDER BY seq`,
		s.chain, int64(first), int64(first)+int64(len(rows)))
	if err != nil {
		return false
	}
	got, err := pgx.CollectRows(stored, pgx.RowTo[string])
	return err == nil && slices.Equal(got, rows)
}

// isUniqueViolation reports whether err is PostgreSQL's refusal of a row
// whose primary key is taken.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// execAgainIfLost runs one statement of sql on a connection of pool, and
// again on another when it failed on a connection found closed (one
// PostgreSQL ended while it sat in the pool: pg_terminate_backend, a
// restart), as many times as the pool holds connections; again says
// whether it was run more than once. Only for an INSERT of records, whose
// primary key on (chain, seq) refuses it run twice: a first one committed
// before its connection broke makes the second fail, and the caller reads
// the rows back to tell that from a batch the chain holds others in
// place of.
func execAgainIfLost(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) (again bool, err error) {
	for tries := pool.Stat().MaxConns() + 1; ; tries-- {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return again, err
		}
		_, err = c.Exec(ctx, sql, args...)
		closed := c.Conn().IsClosed()
		c.Release()
		if err == nil || !closed || ctx.Err() != nil || tries == 1 {
			return again, err
		}
		again = true
	}
}

// sync has nothing to do: a committed INSERT is durable.
func (s *pgSink) sync() error { return nil }

// resume reads the chain's last record back. A batch whose COMMIT failed
// on a broken connection may have been committed all the same; reading the
// head keeps the chain going after it, and the primary key on (chain, seq)
// refuses a batch computed from a head that a late commit overtook.
func (s *pgSink) resume(uint64, string) (uint64, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	var seq int64
	var ln string
	err := s.pool.QueryRow(ctx, `SELECT seq, line FROM kms_audit_records WHERE chain = $1 ORDER BY seq DESC LIMIT 1`, s.chain).Scan(&seq, &ln)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, genesis, nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("audit: read the chain's head from PostgreSQL: %w", err)
	}
	hash, rec, _, err := parseLine([]byte(ln))
	if err != nil || rec.Sequence != uint64(seq) {
		return 0, "", fmt.Errorf("audit: the last record of chain %s is damaged (run kms audit verify)", s.chain)
	}
	return rec.Sequence, hash, nil
}

// probe inserts the record after seq, as write would, in a transaction
// it rolls back: it fails as the next batch would fail now (no
// connection, a read-only standby after a failover, a revoked privilege,
// a full disk, a constraint), and no one sees the row.
func (s *pgSink) probe(seq uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertRecords, s.chain, int64(seq+1), []string{""}); err != nil {
			return err
		}
		return errProbed
	})
	if err != nil && !errors.Is(err, errProbed) {
		return fmt.Errorf("audit: write to PostgreSQL: %w", err)
	}
	return nil
}

// errProbed rolls back probe's transaction.
var errProbed = errors.New("audit: probed")

func (s *pgSink) close() error { return nil }

// OpenPostgresDigester returns a Digester that stores the digests of chain
// (the Log's Chain) in kms_audit_digests, and records key's public half in
// kms_audit_keys for those who check them. Close leaves pool open.
func OpenPostgresDigester(ctx context.Context, pool *pgxpool.Pool, chain string, key ed25519.PrivateKey) (*Digester, error) {
	pub, err := MarshalPublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	_, err = pool.Exec(ctx, `INSERT INTO kms_audit_keys (chain, public_key) VALUES ($1, $2) ON CONFLICT (chain) DO NOTHING`, chain, string(pub))
	if err != nil {
		return nil, fmt.Errorf("audit: record the digest key in PostgreSQL: %w", err)
	}
	var stored string
	var last int64
	err = pool.QueryRow(ctx, `SELECT k.public_key, (SELECT coalesce(max(seq), 0) FROM kms_audit_digests WHERE chain = $1)
		FROM kms_audit_keys k WHERE k.chain = $1`, chain).Scan(&stored, &last)
	if err != nil {
		return nil, fmt.Errorf("audit: read the digest key from PostgreSQL: %w", err)
	}
	if !bytes.Equal([]byte(stored), pub) {
		return nil, fmt.Errorf("audit: chain %s already has another digest key", chain)
	}
	registry := func() (uint64, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
		defer cancel()
		seq, hash, err := registryHead(ctx, pool)
		if err != nil {
			return 0, "", fmt.Errorf("audit: %w", err)
		}
		return seq, hash, nil
	}
	return &Digester{out: &pgDigests{pool: pool, chain: chain}, chain: chain, key: key, last: uint64(last), registry: registry}, nil
}

// pgDigests stores a chain's digests in kms_audit_digests.
type pgDigests struct {
	pool  *pgxpool.Pool
	chain string
}

func (w *pgDigests) write(seq uint64, line []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	_, err := w.pool.Exec(ctx, `INSERT INTO kms_audit_digests (chain, seq, line) VALUES ($1, $2, $3)`, w.chain, int64(seq), string(line))
	if err != nil {
		return fmt.Errorf("audit: write a digest to PostgreSQL: %w", err)
	}
	return nil
}

func (w *pgDigests) close() error { return nil }

// parseDigest parses a digest's line.
func parseDigest(b []byte) (*Digest, error) {
	var dg Digest
	if err := json.Unmarshal(b, &dg); err != nil {
		return nil, err
	}
	return &dg, nil
}
