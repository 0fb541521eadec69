package pgstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/pgstore"
	"github.com/openkms/kms/internal/store/pgtest"
)

// The tests of Compact run one at a time, not in parallel with the
// others: a snapshot's xmin counts the running transactions of every
// database on the server, so that another test's transaction would make
// a snapshot here look old enough to see erased rows.

// replaced fills s with records, then replaces or deletes each of them,
// and returns the values it replaced: small ones (kept in the table's
// pages) and the first bytes of a large and incompressible one (kept in
// its TOAST table, in chunks of about 2 kB).
func replaced(t *testing.T, s store.Store) [][]byte {
	t.Helper()
	old := [][]byte{[]byte("old value " + rand.Text()), []byte(rand.Text())}
	large := make([]byte, 6000)
	rand.Read(large)
	err := s.Update(context.Background(), func(tx store.Tx) error {
		for i, v := range append(old[:2:2], large) {
			if err := tx.Put(fmt.Appendf(nil, "k%d", i), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	old = append(old, large[:64])
	put(t, s, "k0", "new value")
	put(t, s, "k2", "new large value")
	if err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Delete([]byte("k1")) }); err != nil {
		t.Fatal(err)
	}
	return old
}

// After Compact the database's files hold no value an Update replaced or
// deleted, and every record reads as before.
func TestCompactDropsReplacedRows(t *testing.T) {
	dsn := pgtest.Start(t)
	s := open(t, dsn)
	old := replaced(t, s)
	files := pgtest.DatabaseFiles(t, dsn)
	for i, v := range old {
		if files.Holding(v) == nil {
			t.Fatalf("before Compact, replaced value %d is in none of the database's files: the test reads the wrong ones", i)
		}
	}
	if err := s.Compact(context.Background(), pgstore.CompactLockTimeout); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	files = pgtest.DatabaseFiles(t, dsn)
	for i, v := range old {
		if where := files.Holding(v); where != nil {
			t.Errorf("after Compact, replaced value %d is still in %v", i, where)
		}
	}
	if got := get(t, s, "k0"); got != "new value" {
		t.Errorf("k0 = %q", got)
	}
	if got := get(t, s, "k2"); got != "new large value" {
		t.Errorf("k2 = %q", got)
	}
	put(t, s, "k3", "after")
	if got := get(t, s, "k3"); got != "after" {
		t.Errorf("k3 = %q", got)
	}
}

// A transaction open elsewhere that may still see a replaced row makes
// the rewrite keep it: Compact says so instead of claiming success.
func TestCompactReportsRowsASnapshotKeeps(t *testing.T) {
	dsn := pgtest.Start(t)
	s := open(t, dsn)
	put(t, s, "k", "old")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM kms_schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	put(t, s, "k", "new")
	err = s.Compact(ctx, pgstore.CompactLockTimeout)
	if !errors.Is(err, pgstore.ErrNotCompacted) || !strings.Contains(err.Error(), "1 sessions") {
		t.Fatalf("Compact beside an older snapshot: %v", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, pgstore.CompactLockTimeout); err != nil {
		t.Fatalf("Compact once the snapshot is gone: %v", err)
	}
	if got := get(t, s, "k"); got != "new" {
		t.Errorf("k = %q", got)
	}
}

// A role that may read and write the tables but does not own them, as
// nodes may run (docs/cluster.md), is refused the rewrite by PostgreSQL
// with a mere warning: Compact reports it, and the records are intact.
func TestCompactAsARoleThatDoesNotOwnTheTable(t *testing.T) {
	dsn := pgtest.Start(t)
	open(t, dsn).Close() // the schema, made by its owner
	app := pgtest.TableUser(t, dsn)
	s := open(t, app)
	old := replaced(t, s)
	err := s.Compact(context.Background(), pgstore.CompactLockTimeout)
	if !errors.Is(err, pgstore.ErrNotPermitted) || !errors.Is(err, pgstore.ErrNotCompacted) || !strings.Contains(err.Error(), "vacuum") {
		t.Fatalf("Compact by a role that does not own kms_records: %v", err)
	}
	if got := get(t, s, "k0"); got != "new value" {
		t.Errorf("k0 = %q", got)
	}
	if pgtest.DatabaseFiles(t, dsn).Holding(old[0]) == nil {
		t.Error("the refused rewrite happened all the same")
	}
}

// CompactErased fails only for a snapshot as old as the last erasure:
// one taken after it, in a transaction begun before the rewrite (another
// node's call waiting for the table's lock), does not keep the erased
// rows, and does not fail it as it fails Compact.
func TestCompactErasedJudgesSnapshotsByTheErasure(t *testing.T) {
	dsn := pgtest.Start(t)
	s := open(t, dsn)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	snapshot := func() pgx.Tx {
		t.Helper()
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM kms_schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return tx
	}
	secret := "sealed material " + rand.Text()
	put(t, s, "k", secret)

	older := snapshot()
	if err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.Delete([]byte("k")); err != nil {
			return err
		}
		return store.NoteErased(tx)
	}); err != nil {
		t.Fatal(err)
	}
	err = s.CompactErased(ctx, pgstore.CompactLockTimeout, store.ErasedPrefix)
	if !errors.Is(err, pgstore.ErrNotCompacted) || !strings.Contains(err.Error(), "1 sessions") {
		t.Fatalf("CompactErased beside a snapshot older than the erasure: %v", err)
	}
	if err := older.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	newer := snapshot()
	defer newer.Rollback(ctx)
	put(t, s, "other", "changed after the erasure")
	if err := s.Compact(ctx, pgstore.CompactLockTimeout); !errors.Is(err, pgstore.ErrNotCompacted) {
		t.Fatalf("Compact beside a transaction begun before it: %v", err)
	}
	if err := s.CompactErased(ctx, pgstore.CompactLockTimeout, store.ErasedPrefix); err != nil {
		t.Fatalf("CompactErased beside a snapshot newer than the erasure: %v", err)
	}
	if where := pgtest.DatabaseFiles(t, dsn).Holding([]byte(secret)); where != nil {
		t.Errorf("after CompactErased, the erased value is still in %v", where)
	}
}

// Erasures on two nodes at once do not conflict over their marks: one
// whose transaction began before the other's committed is not failed for
// it. (A serialization failure is retried, but for at most 5 seconds:
// under a load of erasures, the caller's error.)
func TestConcurrentErasuresDoNotConflict(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	put(t, a, "k", "v")
	began, committed, done := make(chan struct{}), make(chan struct{}), make(chan error)
	attempts := 0
	go func() {
		done <- b.Update(ctx, func(tx store.Tx) error {
			attempts++
			if _, err := tx.Get([]byte("k")); err != nil { // its snapshot is taken
				return err
			}
			if attempts == 1 {
				close(began)
				<-committed
			}
			return store.NoteErased(tx)
		})
	}()
	<-began
	if err := a.Update(ctx, store.NoteErased); err != nil {
		t.Fatal(err)
	}
	close(committed)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if attempts != 1 {
		t.Errorf("an erasure beside another's ran %d times: their marks conflicted", attempts)
	}
	if marks, err := store.Erased(ctx, a); err != nil || len(marks) != 2 {
		t.Errorf("two erasures left marks %q (%v)", marks, err)
	}
}

// A VACUUM running beside the rewrite, as autovacuum does on any table
// of the database, holds no snapshot the rewrite keeps rows for
// (PostgreSQL leaves out the xmin of vacuums): it does not fail it.
func TestCompactErasedBesideAVacuum(t *testing.T) {
	dsn := pgtest.Start(t)
	s := open(t, dsn)
	ctx := context.Background()
	vac, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer vac.Close(ctx)
	// A table whose VACUUM, slowed down to a page at a time, lasts until
	// it is cancelled.
	for _, q := range []string{
		`CREATE TABLE other AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g`,
		`UPDATE other SET v = v || 'x'`,
		`SET vacuum_cost_delay = 100`,
		`SET vacuum_cost_limit = 1`,
	} {
		if _, err := vac.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	vacuumed := make(chan error, 1)
	go func() { _, err := vac.Exec(ctx, `VACUUM other`); vacuumed <- err }()
	defer func() {
		exec(t, dsn, `SELECT pg_cancel_backend(pid) FROM pg_stat_progress_vacuum`)
		<-vacuumed
	}()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for running := 0; running == 0; {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_progress_vacuum WHERE phase <> 'initializing'`).Scan(&running); err != nil {
			t.Fatal(err)
		}
	}

	secret := "sealed material " + rand.Text()
	put(t, s, "k", secret)
	if err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.Delete([]byte("k")); err != nil {
			return err
		}
		return store.NoteErased(tx)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.CompactErased(ctx, pgstore.CompactLockTimeout, store.ErasedPrefix); err != nil {
		t.Fatalf("CompactErased beside a VACUUM of another table: %v", err)
	}
	if where := pgtest.DatabaseFiles(t, dsn).Holding([]byte(secret)); where != nil {
		t.Errorf("after CompactErased, the erased value is still in %v", where)
	}
}

// CompactErased judges the snapshots by the erasures marked before the
// rewrite: one made just after it (a call that waited for the table's
// lock), newer than a snapshot still open, does not fail it; that
// erasure's mark stays for the next.
func TestCompactErasedJudgesByTheMarksBeforeIt(t *testing.T) {
	dsn := pgtest.Start(t)
	s, other := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	erase := func(s store.Store, k, v string) {
		t.Helper()
		put(t, s, k, v)
		if err := s.Update(ctx, func(tx store.Tx) error {
			if err := tx.Delete([]byte(k)); err != nil {
				return err
			}
			return store.NoteErased(tx)
		}); err != nil {
			t.Fatal(err)
		}
	}
	secret := "sealed material " + rand.Text()
	erase(s, "k", secret)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	pgstore.AfterRewrite(s, func() {
		// A call's snapshot, taken after the erasure, then another
		// erasure that commits while it is open.
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM kms_schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tx.Rollback(ctx) })
		erase(other, "k2", "erased after the rewrite")
	})
	if err := s.CompactErased(ctx, pgstore.CompactLockTimeout, store.ErasedPrefix); err != nil {
		t.Fatalf("CompactErased beside a snapshot newer than the erasures marked before it: %v", err)
	}
	if where := pgtest.DatabaseFiles(t, dsn).Holding([]byte(secret)); where != nil {
		t.Errorf("after CompactErased, the erased value is still in %v", where)
	}
}
