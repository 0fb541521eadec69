package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotCompacted is returned by Compact when kms_records was not
// rewritten, or was rewritten while a snapshot may have made it keep
// replaced row versions: the table's files may still hold them.
var ErrNotCompacted = errors.New("kms_records was not rewritten")

// ErrNotPermitted is returned by Compact when the role may not rewrite
// kms_records (errors.Is ErrNotCompacted too): only the table's owner may,
// or a superuser, the database's owner (and from PostgreSQL 17 a role
// with the MAINTAIN privilege on it).
var ErrNotPermitted = fmt.Errorf("%w: the role may not rewrite it", ErrNotCompacted)

// CompactLockTimeout bounds Compact's wait for kms_records' lock, which
// a session left open on the table (a psql in a transaction) would
// otherwise make it wait for without end.
const CompactLockTimeout = 30 * time.Second

// Compact rewrites kms_records into new files, with its TOAST table and
// its index (VACUUM FULL), so that the table's files keep no row version
// an Update replaced or deleted: PostgreSQL leaves those in the table's
// pages as dead tuples, and a plain VACUUM only marks their room free.
// The old files are emptied when the rewrite commits and removed at the
// next checkpoint. kms_records is the only table that holds sealed
// values: the audit tables hold audit lines and public keys.
//
// It takes an ACCESS EXCLUSIVE lock on the table for as long as the copy
// takes, waiting at most lockTimeout for it (CompactLockTimeout for a
// command, less for a server beside others: every session that asks for
// the table meanwhile queues behind the wait), so no server uses the
// store during the copy; it needs room for a second copy of the live
// rows.
//
// It changes no record. It fails with ErrNotCompacted when:
//   - the role may not rewrite the table (ErrNotPermitted): for another
//     role than those ErrNotPermitted names, PostgreSQL skips the table
//     with a warning, which the error quotes;
//   - once the rewrite is done, a transaction of the database begun
//     before it is still open (but a plain VACUUM's, such as
//     autovacuum's, which the rewrite does not keep rows for), or a
//     replication slot, a standby with
//     hot_standby_feedback or a prepared transaction holds back the
//     horizon: the rewrite kept the replaced row versions that such a
//     snapshot may see. It is found only as
//     far as the role may see it (another role's session shows its
//     snapshot to a superuser or a member of pg_read_all_stats only);
//   - the lock was not had in time, or the rewrite failed.
//
// It clears the table's files, nothing else: the WAL that wrote the old
// rows keeps them until its segments are recycled (renamed and written
// over, not erased), and WAL archives, replicas' WAL, base backups and
// dumps keep them as long as they are kept. The file system's free blocks
// may hold the old files' bytes until they are written over.
func (s *Store) Compact(ctx context.Context, lockTimeout time.Duration) error {
	return s.compact(ctx, lockTimeout, nil)
}

// CompactErased is Compact for a server that runs beside others, to clear
// the row versions that transactions deleted or replaced up to the
// newest of the records whose names begin with erased (the erasures'
// marks, store.ErasedPrefix) as the rewrite begins: only a snapshot or
// transaction as old as that record's write, which may still see them,
// makes it fail for keeping replaced rows. (Compact's check, any transaction begun before
// the rewrite, fails whenever another node's call waited for the table's
// lock.) Without such a record it is Compact.
func (s *Store) CompactErased(ctx context.Context, lockTimeout time.Duration, erased []byte) error {
	return s.compact(ctx, lockTimeout, erased)
}

// compact is Compact, with the check for holders of old snapshots
// narrowed to those as old as the newest write, before the rewrite, of a
// record whose name begins with erased (nil: those begun before the
// rewrite).
func (s *Store) compact(ctx context.Context, lockTimeout time.Duration, erased []byte) error {
	cfg := s.connConfig.Copy()
	var warnings []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if n.SeverityUnlocalized == "WARNING" || n.Severity == "WARNING" {
			warnings = append(warnings, n.Message)
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotCompacted, err)
	}
	defer closeConn(conn)
	var before, after uint32
	var started time.Time
	if err := conn.QueryRow(ctx, `SELECT pg_relation_filenode('kms_records'), clock_timestamp()`).Scan(&before, &started); err != nil {
		return fmt.Errorf("%w: %w", ErrNotCompacted, err)
	}
	// The newest erasure marked before the rewrite, whose xid the check
	// after it goes by: an erasure that commits just after it (a call
	// that waited for the lock) is not this compaction's, and its mark
	// stays for the next.
	var newest *string
	if erased != nil {
		end := prefixEnd(erased)
		if end == nil {
			return fmt.Errorf("%w: no record name follows every one that begins with %q", ErrNotCompacted, erased)
		}
		err := conn.QueryRow(ctx, `SELECT xmin::text FROM kms_records WHERE k >= $1 AND k < $2 ORDER BY age(xmin) LIMIT 1`, erased, end).Scan(&newest)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %w", ErrNotCompacted, err)
		}
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(`SET lock_timeout = %d`, max(lockTimeout.Milliseconds(), 1))); err != nil {
		return fmt.Errorf("%w: %w", ErrNotCompacted, err)
	}
	// VACUUM may not run in a transaction block: one simple statement.
	if _, err := conn.Exec(ctx, `VACUUM FULL kms_records`, pgx.QueryExecModeSimpleProtocol); err != nil {
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "55P03" {
			return fmt.Errorf("%w: another session held a lock on it for %v", ErrNotCompacted, lockTimeout)
		}
		return fmt.Errorf("%w: %w", ErrNotCompacted, err)
	}
	if s.afterRewrite != nil {
		s.afterRewrite()
	}
	if err := conn.QueryRow(ctx, `SELECT pg_relation_filenode('kms_records')`).Scan(&after); err != nil {
		return fmt.Errorf("%w: %w", ErrNotCompacted, err)
	}
	if after == before {
		why := "PostgreSQL skipped it"
		if len(warnings) > 0 {
			why = strings.Join(warnings, "; ")
		}
		return fmt.Errorf("%w: %s", ErrNotPermitted, why)
	}
	// The rewrite keeps the replaced row versions that a snapshot taken
	// before it may still see: a transaction begun before it and still
	// open (not one begun since, such as a lease's ping), a standby's
	// feedback, a slot. They are looked for as far as the role may see
	// them (pg_stat_activity shows backend_xmin of other roles' sessions
	// only to a superuser or pg_read_all_stats). A plain VACUUM (an
	// autovacuum worker's, on any table) is left out, as PostgreSQL
	// leaves its xmin out of what the rewrite keeps rows for;
	// pg_stat_progress_vacuum names its process to every role.
	var holders int64
	if newest != nil {
		if err := conn.QueryRow(ctx, erasedHolders, *newest).Scan(&holders); err != nil {
			return fmt.Errorf("%w: %w", ErrNotCompacted, err)
		}
		if holders > 0 {
			return fmt.Errorf("%w whole: %d sessions, replication slots or prepared transactions hold snapshots that may still see erased rows, which the rewrite keeps for them (pg_stat_activity, pg_replication_slots, pg_prepared_xacts)", ErrNotCompacted, holders)
		}
		return nil
	}
	err = conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (
			(datname = current_database() AND xact_start < $1 AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)
				AND pid NOT IN (SELECT pid FROM pg_stat_progress_vacuum))
			OR (backend_type = 'walsender' AND backend_xmin IS NOT NULL)))
		+ (SELECT count(*) FROM pg_replication_slots WHERE xmin IS NOT NULL)
		+ (SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database() AND prepared < $1)`, started).Scan(&holders)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotCompacted, err)
	}
	if holders > 0 {
		return fmt.Errorf("%w whole: %d sessions, replication slots or prepared transactions hold snapshots that may still see replaced rows, which the rewrite keeps for them (pg_stat_activity, pg_replication_slots, pg_prepared_xacts)", ErrNotCompacted, holders)
	}
	return nil
}

// erasedHolders counts what may still see a row version that a
// transaction deleted or replaced no later than the transaction $1 (an
// xid), and so keeps it through a rewrite: a row version whose deleting
// transaction X committed is removed once every running transaction and
// every snapshot is newer than X. $1 is the newest writer of an erasure
// mark: each erasure writes one in its transaction (a record of its own,
// or the one it rewrites, whose writers are serialized: a later one
// fails and starts again if an earlier one committed after its
// snapshot), so it is as new as every erasure marked then.
const erasedHolders = `WITH mark AS (SELECT age($1::text::xid) AS age)
SELECT
	(SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (
		(datname = current_database() AND (age(backend_xmin) >= mark.age OR age(backend_xid) >= mark.age)
			AND pid NOT IN (SELECT pid FROM pg_stat_progress_vacuum))
		OR (backend_type = 'walsender' AND age(backend_xmin) >= mark.age)))
	+ (SELECT count(*) FROM pg_replication_slots WHERE age(xmin) >= mark.age)
	+ (SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database() AND age(transaction) >= mark.age)
FROM mark`
