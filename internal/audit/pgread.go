package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A PostgresReader reads the records of every chain in a database, in
// time order, and remembers the last record it read of each chain, so
// that each Read returns only records written since the one before.
type PostgresReader struct {
	pool *pgxpool.Pool
	read map[string]uint64 // chain → last sequence number read
}

// NewPostgresReader returns a reader that starts at the first record of
// every chain.
func NewPostgresReader(pool *pgxpool.Pool) *PostgresReader {
	return &PostgresReader{pool: pool, read: map[string]uint64{}}
}

const (
	readAll = `SELECT chain, seq, line FROM kms_audit_records
		ORDER BY (line::json -> 'event' ->> 'eventTime') COLLATE "C", chain COLLATE "C", seq`
	// readNewer reads, for each chain read before ($1, $2) and each chain
	// started since, the records after the last one read: an index range
	// per chain, not a scan of the table.
	readNewer = `WITH known AS (SELECT * FROM unnest($1::text[], $2::bigint[]) AS k(chain, seq)),
		chains AS (SELECT chain, seq FROM known
			UNION ALL SELECT chain, 0 FROM kms_audit_chains WHERE chain <> ALL($1::text[]))
		SELECT r.chain, r.seq, r.line FROM chains c JOIN kms_audit_records r ON r.chain = c.chain AND r.seq > c.seq
		ORDER BY (r.line::json -> 'event' ->> 'eventTime') COLLATE "C", r.chain COLLATE "C", r.seq`
)

// Read calls fn with every record not read before, ordered by eventTime,
// then chain id, then sequence number, without verifying them. Records
// that a later Read returns may be older than some an earlier Read
// returned: each node commits its records in its own time.
func (r *PostgresReader) Read(ctx context.Context, fn func(chain string, rec *Record, event json.RawMessage) error) error {
	var rows pgx.Rows
	if len(r.read) == 0 {
		rows, _ = r.pool.Query(ctx, readAll)
	} else {
		chains, seqs := make([]string, 0, len(r.read)), make([]int64, 0, len(r.read))
		for c, s := range r.read {
			chains, seqs = append(chains, c), append(seqs, int64(s))
		}
		rows, _ = r.pool.Query(ctx, readNewer, chains, seqs)
	}
	var chain string
	var seq int64
	var ln []byte
	_, err := pgx.ForEachRow(rows, []any{&chain, &seq, &ln}, func() error {
		_, rec, event, err := parseLine(ln)
		if err != nil {
			return fmt.Errorf("record %d of chain %s: %w", seq, chain, err)
		}
		if uint64(seq) > r.read[chain] {
			r.read[chain] = uint64(seq)
		}
		return fn(chain, rec, event)
	})
	return err
}
