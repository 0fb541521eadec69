package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations[i] takes the schema from version i to version i+1. Append
// only: a released migration has run on someone's database and must never
// change.
var migrations = []string{
	`CREATE TABLE kms_records (k bytea PRIMARY KEY, v bytea NOT NULL)`,
	// The audit trail (internal/audit, docs/audit.md): one hash chain per
	// server process, its records and signed digests as the JSON lines the
	// file log writes, and the public key that checks the digests.
	`CREATE TABLE kms_audit_chains (
		chain text PRIMARY KEY,
		started_at timestamptz NOT NULL DEFAULT now(),
		host text NOT NULL);
	CREATE TABLE kms_audit_records (
		chain text NOT NULL,
		seq bigint NOT NULL,
		line text NOT NULL,
		PRIMARY KEY (chain, seq));
	CREATE TABLE kms_audit_digests (
		chain text NOT NULL,
		seq bigint NOT NULL,
		line text NOT NULL,
		PRIMARY KEY (chain, seq));
	CREATE TABLE kms_audit_keys (
		chain text PRIMARY KEY,
		public_key text NOT NULL)`,
	// The registry of audit chains: a hash chain of their starts, whose
	// head the signed digests name, so that a chain removed whole is
	// detected (internal/audit/registry.go).
	`CREATE TABLE kms_audit_registry (
		seq bigint PRIMARY KEY,
		chain text NOT NULL UNIQUE,
		line text NOT NULL)`,
}

// SchemaVersion is the version of the schema this binary creates.
var SchemaVersion = len(migrations)

// migrationLock is the advisory lock key that serialises migrations of one
// database ("kms_migr").
const migrationLock int64 = 0x6b6d735f6d696772

// migrate brings the schema to len(migrations), in one transaction, so
// that a failed migration leaves the database as it was. Nodes that start
// together queue on the advisory lock; the first migrates, the others find
// nothing left to do.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	// READ COMMITTED, not a stronger level: each statement must see what the
	// previous holder of the lock committed, not a snapshot taken before the
	// lock was granted.
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("pgstore: migrate: lock: %w", err)
	}
	// CREATE TABLE IF NOT EXISTS needs the right to create in the schema
	// even when the table is there: a node whose role may only read and
	// write the tables must start on a schema that is up to date.
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('kms_schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if !exists {
		if _, err := tx.Exec(ctx, `CREATE TABLE kms_schema_migrations (
		version int PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("pgstore: migrate: %w", err)
		}
	}
	var version int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM kms_schema_migrations`).Scan(&version); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("pgstore: the database schema is at version %d, newer than this binary knows (%d): upgrade the binary", version, len(migrations))
	}
	for v := version + 1; v <= len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("pgstore: migrate to schema version %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO kms_schema_migrations (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("pgstore: migrate to schema version %d: %w", v, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}
