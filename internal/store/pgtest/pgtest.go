// Package pgtest gives tests a throw-away PostgreSQL database.
//
// Start returns the DSN of a new, empty database that is dropped when the
// test ends. The database lives on the server named by the environment
// variable KMS_TEST_POSTGRES (a DSN whose user may CREATE DATABASE), or
// else on a private server that pgtest starts once per test binary from the
// PostgreSQL binaries on PATH or under /usr/lib/postgresql. Several
// processes may share the database (start `kms server` nodes on it).
//
// The private server runs under a small sh script that removes its data
// directory when the server stops, and the kernel stops it when the test
// binary exits, however it exits (PR_SET_PDEATHSIG), so no server or data
// directory outlives the tests. When the tests run as root, the server runs
// as the user postgres (or nobody), since PostgreSQL refuses to run as root.
//
// Without PostgreSQL, tests that call Start are skipped, or fail when the
// environment variable CI is set.
package pgtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Start returns the DSN of a new, empty database, dropped by t.Cleanup.
func Start(t testing.TB) (dsn string) {
	t.Helper()
	admin := os.Getenv("KMS_TEST_POSTGRES")
	if admin == "" {
		var err error
		if admin, err = sharedServer(); err != nil {
			unavailable(t, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	name := "kms_test_" + strings.ToLower(rand.Text())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { dropDatabase(t, admin, name) })
	dsn, err = withDatabase(admin, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

func dropDatabase(t testing.TB, admin, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Errorf("pgtest: drop database %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	// FORCE ends the sessions a test left open.
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Errorf("pgtest: drop database %s: %v", name, err)
	}
}

// withDatabase returns dsn with its database replaced by name. dsn is a URL
// or a keyword/value string, where a later keyword overrides an earlier one.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("KMS_TEST_POSTGRES is not a valid URL")
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	return dsn + " dbname=" + name, nil
}

// unavailable ends a test that needs PostgreSQL where there is none.
func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("pgtest: no PostgreSQL for this test: %v\n"+
		"Install PostgreSQL (apt-get install postgresql) or set KMS_TEST_POSTGRES to the DSN of a server where the user may CREATE DATABASE.", err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
