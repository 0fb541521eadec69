package pgtest

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestWithDatabase(t *testing.T) {
	for _, c := range []struct{ dsn, want string }{
		{"postgres://u:p@h:5/postgres?sslmode=disable", "postgres://u:p@h:5/kms_x?sslmode=disable"},
		{"postgresql://h", "postgresql://h/kms_x"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=kms_x"},
	} {
		got, err := withDatabase(c.dsn, "kms_x")
		if err != nil || got != c.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", c.dsn, got, err, c.want)
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil || cfg.Database != "kms_x" {
			t.Errorf("%q does not parse to database kms_x: %v", got, err)
		}
	}
}

// Each Start is a database of its own, gone when its test ends.
func TestStartIsolatesAndDrops(t *testing.T) {
	ctx := context.Background()
	var first string
	t.Run("create", func(t *testing.T) {
		first = Start(t)
		second := Start(t)
		if first == second {
			t.Fatalf("two Starts returned %s", first)
		}
		a, err := pgx.Connect(ctx, first)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close(ctx)
		if _, err := a.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
		b, err := pgx.Connect(ctx, second)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(ctx)
		var n int
		if err := b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 't'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("a table of one database is in the other: %d, %v", n, err)
		}
	})
	if first == "" {
		t.Skip("no database")
	}
	conn, err := pgx.Connect(ctx, first)
	if err == nil {
		conn.Close(ctx)
		t.Fatal("the database outlived its test")
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" {
		t.Fatalf("connect to a dropped database: %v, want invalid_catalog_name", err)
	}
}
