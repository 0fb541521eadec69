package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Files are the files of one database in the server's data directory, by
// their path there.
type Files map[string][]byte

// DatabaseFiles returns every file that the server's data directory holds
// for the database at dsn (base/OID/: its tables, their TOAST tables, the
// indexes and the other forks), read after a CHECKPOINT has written every
// changed page to them. It reads them through the server
// (pg_read_binary_file), so that it works on a server of another machine
// too; the role of dsn must be a superuser, as the private server's is.
// It does not read the WAL.
func DatabaseFiles(t testing.TB, dsn string) Files {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CHECKPOINT`); err != nil {
		t.Fatalf("pgtest: CHECKPOINT: %v", err)
	}
	// A file removed between the listing and its reading (a relation
	// dropped by the checkpoint's end) reads as NULL.
	rows, err := conn.Query(ctx, `SELECT d.dir || '/' || f, pg_read_binary_file(d.dir || '/' || f, 0, coalesce((pg_stat_file(d.dir || '/' || f, true)).size, 0), true)
		FROM (SELECT 'base/' || oid AS dir FROM pg_database WHERE datname = current_database()) d,
		     pg_ls_dir(d.dir) f`)
	if err != nil {
		t.Fatalf("pgtest: read the database's files: %v", err)
	}
	files := Files{}
	for rows.Next() {
		var name string
		var content []byte
		if err := rows.Scan(&name, &content); err != nil {
			t.Fatalf("pgtest: read the database's files: %v", err)
		}
		files[name] = content
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("pgtest: read the database's files: %v", err)
	}
	if len(files) == 0 {
		t.Fatal("pgtest: the database has no files")
	}
	return files
}

// Holding returns the paths of the files that hold b, sorted.
func (f Files) Holding(b []byte) []string {
	var out []string
	for name, content := range f {
		if bytes.Contains(content, b) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TableUser makes a role that may log in and only use the tables of the
// database at dsn (SELECT, INSERT, UPDATE, DELETE), as the nodes of a
// cluster may run (docs/cluster.md), and returns dsn with that role as
// its user. The role is dropped when the test ends.
func TableUser(t testing.TB, dsn string) string {
	t.Helper()
	role := "kms_app_" + strings.ToLower(rand.Text())
	admin := func(sql string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("pgtest: %s: %v", sql, err)
		}
	}
	admin(`CREATE ROLE ` + role + ` LOGIN`)
	t.Cleanup(func() {
		admin(`DROP OWNED BY ` + role)
		admin(`DROP ROLE ` + role)
	})
	admin(`GRANT USAGE ON SCHEMA public TO ` + role)
	admin(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ` + role)
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.User = url.User(role)
		return u.String()
	}
	return dsn + " user=" + role
}
