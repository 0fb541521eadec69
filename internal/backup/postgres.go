package backup

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/openkms/kms/internal/store/pgstore"
)

// streamPostgres writes every record and every audit table row of the
// PostgreSQL store at dsn to enc (the records by record), read in one
// REPEATABLE READ transaction:
// one snapshot of the database while the cluster keeps serving, so that
// the audit trail goes up to exactly the moment of the records.
func streamPostgres(ctx context.Context, dsn string, enc *Encoder, record func(k, v []byte) error) error {
	pg, err := pgstore.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer pg.Close()
	tx, err := pg.Pool().BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT k, v FROM kms_records ORDER BY k`)
	if err != nil {
		return err
	}
	var k, v []byte
	_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error { return record(k, v) })
	if err != nil {
		return err
	}
	for _, table := range AuditTables {
		// The table names come from AuditTables, never from input.
		rows, err := tx.Query(ctx, `SELECT row_to_json(t)::text FROM `+table+` t ORDER BY 1`)
		if err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
		var j []byte
		_, err = pgx.ForEachRow(rows, []any{&j}, func() error { return enc.AuditRow(table, j) })
		if err != nil {
			return fmt.Errorf("read %s: %w", table, err)
		}
	}
	return tx.Commit(ctx)
}

// insertAuditRow inserts one row, given as JSON, into table, one of
// AuditTables (Decode checks the name).
func insertAuditRow(ctx context.Context, tx pgx.Tx, table string, row []byte) error {
	_, err := tx.Exec(ctx, `INSERT INTO `+table+` SELECT * FROM json_populate_record(NULL::`+table+`, $1::json)`, string(row))
	if err != nil {
		return fmt.Errorf("restore %s: %w", table, err)
	}
	return nil
}

// deleteAuditRows removes every row of the audit tables of the database
// at dsn, in one transaction.
func deleteAuditRows(ctx context.Context, dsn string) error {
	pg, err := pgstore.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer pg.Close()
	return pgx.BeginFunc(ctx, pg.Pool(), func(tx pgx.Tx) error {
		for _, table := range AuditTables {
			// The table names come from AuditTables, never from input.
			if _, err := tx.Exec(ctx, `DELETE FROM `+table); err != nil {
				return fmt.Errorf("remove the restored rows of %s: %w", table, err)
			}
		}
		return nil
	})
}
