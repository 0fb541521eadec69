package pgstore_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	osexec "os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/pgstore"
	"github.com/openkms/kms/internal/store/pgtest"
	"github.com/openkms/kms/internal/store/storetest"
)

// wait bounds every wait for something another goroutine or the server
// does; the tests never sleep.
const wait = 20 * time.Second

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, pgtest.Start(t)) })
}

func open(t testing.TB, dsn string) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	s, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t *testing.T, s store.Store, key, value string) {
	t.Helper()
	if err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Put([]byte(key), []byte(value)) }); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s store.Store, key string) string {
	t.Helper()
	var v []byte
	err := s.View(context.Background(), func(tx store.Tx) (err error) { v, err = tx.Get([]byte(key)); return err })
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return string(v)
}

// exec runs sql on the database as an administrator would.
func exec(t *testing.T, dsn, sql string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tag, err := conn.Exec(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return tag.RowsAffected()
}

func TestStoresShareCommits(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	put(t, a, "k", "from a")
	if got := get(t, b, "k"); got != "from a" {
		t.Fatalf("b sees %q", got)
	}
	put(t, b, "k", "from b")
	if got := get(t, a, "k"); got != "from b" {
		t.Fatalf("a sees %q", got)
	}
}

func TestConcurrentUpdatesAcrossStores(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	stores := []*pgstore.Store{open(t, dsn), open(t, dsn)}
	put(t, stores[0], "n", "0")
	const workers, each = 6, 20
	var calls, most atomic.Int64
	var wg sync.WaitGroup
	for _, s := range stores {
		for range workers {
			wg.Go(func() {
				for range each {
					var tries int64
					err := s.Update(context.Background(), func(tx store.Tx) error {
						calls.Add(1)
						tries++
						for m := most.Load(); tries > m && !most.CompareAndSwap(m, tries); m = most.Load() {
						}
						v, err := tx.Get([]byte("n"))
						if err != nil {
							return err
						}
						var n int
						fmt.Sscan(string(v), &n)
						return tx.Put([]byte("n"), fmt.Append(nil, n+1))
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if got, want := get(t, stores[1], "n"), fmt.Sprint(len(stores)*workers*each); got != want {
		t.Fatalf("counter = %s, want %s", got, want)
	}
	t.Logf("%d increments took %d attempts, at most %d for one", len(stores)*workers*each, calls.Load(), most.Load())
}

// An Update that conflicts on every attempt is retried until five
// seconds have passed on its clock, then fails with the conflict.
func TestConflictRetriesEndAfterBudget(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	put(t, a, "n", "0")
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pgstore.SetClock(a, func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	})
	attempts := 0
	err := a.Update(context.Background(), func(tx store.Tx) error {
		attempts++
		if _, err := tx.Get([]byte("n")); err != nil { // its snapshot is taken
			return err
		}
		put(t, b, "n", fmt.Sprint(attempts)) // and made stale
		return tx.Put([]byte("n"), []byte("from a"))
	})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
		t.Fatalf("err = %v, want a serialization failure", err)
	}
	if attempts != 5 {
		t.Errorf("%d attempts, want 5 (one per second of the budget)", attempts)
	}
	if got := get(t, b, "n"); got != "5" {
		t.Errorf("n = %q: a conflicting attempt changed it", got)
	}
}

func TestFunctionErrorUnchanged(t *testing.T) {
	t.Parallel()
	s := open(t, pgtest.Start(t))
	err := s.Update(context.Background(), func(tx store.Tx) error {
		_, err := tx.Get([]byte("missing"))
		return fmt.Errorf("wrapped: %w", err)
	})
	if !errors.Is(err, store.ErrNotFound) || err.Error() != "wrapped: "+store.ErrNotFound.Error() {
		t.Fatalf("Update returned %v", err)
	}
}

// watcher runs Watch on s and passes what fn receives to a channel.
type watcher struct {
	events chan []string // sorted keys; nil for "everything"
	done   chan error
	cancel context.CancelFunc
}

func watch(t *testing.T, s *pgstore.Store) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{events: make(chan []string, 100), done: make(chan error, 1), cancel: cancel}
	go func() {
		w.done <- s.Watch(ctx, func(keys [][]byte) {
			var ev []string
			if keys != nil {
				ev = []string{}
				for _, k := range keys {
					ev = append(ev, string(k))
				}
				slices.Sort(ev)
			}
			w.events <- ev
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	return w
}

func (w *watcher) next(t *testing.T) []string {
	t.Helper()
	select {
	case ev := <-w.events:
		return ev
	case err := <-w.done:
		t.Fatalf("Watch returned %v", err)
	case <-time.After(wait):
		t.Fatal("no notification")
	}
	return nil
}

func (w *watcher) expect(t *testing.T, keys ...string) {
	t.Helper()
	got := w.next(t)
	if keys == nil && got != nil || keys != nil && fmt.Sprintf("%q", got) != fmt.Sprintf("%q", keys) {
		t.Fatalf("notification %q, want %q", got, keys)
	}
}

func TestWatch(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	w := watch(t, b)
	w.expect(t) // listening

	ctx := context.Background()
	err := a.Update(ctx, func(tx store.Tx) error {
		tx.Put([]byte("x"), []byte("1"))
		tx.Put([]byte("\x00y"), []byte("2"))
		tx.Put([]byte("x"), []byte("3"))
		return tx.Delete([]byte("gone"))
	})
	if err != nil {
		t.Fatal(err)
	}
	w.expect(t, "\x00y", "x")

	// Updates that change nothing, or roll back, say nothing: the next
	// notification is the next change.
	a.Update(ctx, func(tx store.Tx) error { _, err := tx.Get([]byte("x")); return err })
	a.Update(ctx, func(tx store.Tx) error { return tx.Delete([]byte("never")) })
	a.Update(ctx, func(tx store.Tx) error { tx.Put([]byte("rolled back"), nil); return errors.New("no") })
	put(t, b, "own", "v") // from the watching store itself
	w.expect(t, "own")
	a.Update(ctx, func(tx store.Tx) error { return tx.Delete([]byte("x")) })
	w.expect(t, "x")

	// Records no node caches are not named, and alone say nothing.
	a.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte(store.UnwatchedPrefix+"e1"), nil) })
	err = a.Update(ctx, func(tx store.Tx) error {
		tx.Put([]byte("y"), nil)
		return tx.Delete([]byte(store.UnwatchedPrefix + "e1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	w.expect(t, "y")
	// Nor are the marks of erasures, which the leader deletes in bulk
	// after a compaction: they would make the others empty their caches.
	if err := a.Update(ctx, store.NoteErased); err != nil {
		t.Fatal(err)
	}
	err = a.Update(ctx, func(tx store.Tx) error {
		tx.Put([]byte("z"), nil)
		return store.NoteErased(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
	w.expect(t, "z")

	// Too many keys to name.
	err = a.Update(ctx, func(tx store.Tx) error {
		for i := range 200 {
			if err := tx.Put(fmt.Appendf(nil, "many/%040d", i), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	w.expect(t)

	// A broken connection: Watch reconnects and says everything may have
	// changed, then carries on.
	n := exec(t, dsn, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%'`)
	if n != 1 {
		t.Fatalf("terminated %d listening connections, want 1", n)
	}
	w.expect(t)
	put(t, a, "after", "v")
	w.expect(t, "after")

	w.cancel()
	select {
	case err := <-w.done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch returned %v after cancel", err)
		}
		w.done <- err // for the cleanup
	case <-time.After(wait):
		t.Fatal("Watch did not return after cancel")
	}
}

// A notification connection that goes silent (its server process
// stopped, as a half-open TCP connection would be) is noticed: Watch
// pings it, gives it up, connects again and says everything may have
// changed, then carries on. It runs alone, before the parallel tests: a
// stopped server process holds up every CREATE and DROP DATABASE of the
// server, which wait for each process to take note of them.
func TestWatchNoticesASilentConnection(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	w := watch(t, b)
	w.expect(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var pid int
	err = conn.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'`).Scan(&pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	w.expect(t) // connected again: everything may have changed
	put(t, a, "after", "v")
	w.expect(t, "after")
}

func TestWatchEndsOnClose(t *testing.T) {
	t.Parallel()
	s := open(t, pgtest.Start(t))
	w := watch(t, s)
	w.expect(t)
	s.Close()
	select {
	case err := <-w.done:
		if !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Watch returned %v after Close", err)
		}
		w.done <- err
	case <-time.After(wait):
		t.Fatal("Watch did not return after Close")
	}
}

func TestLease(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	tryLead := func(s *pgstore.Store, name string) *pgstore.Lease {
		t.Helper()
		l, ok, err := s.TryLead(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Cleanup(func() { l.Close() })
		}
		return l
	}

	la := tryLead(a, "rotation")
	if la == nil {
		t.Fatal("a cannot lead a free lease")
	}
	if tryLead(b, "rotation") != nil || tryLead(a, "rotation") != nil {
		t.Fatal("a second holder leads while a holds the lease")
	}
	if tryLead(b, "deletion") == nil {
		t.Fatal("another name is taken too")
	}
	if err := la.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-la.Lost():
	default:
		t.Fatal("Lost not closed after Close")
	}
	lb := tryLead(b, "rotation")
	if lb == nil {
		t.Fatal("b cannot lead after a released the lease")
	}

	// The server ends b's connection: b learns it lost the lease, and a can
	// take it.
	n := exec(t, dsn, `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	if n != 2 {
		t.Fatalf("terminated %d lease connections, want 2", n)
	}
	select {
	case <-lb.Lost():
	case <-time.After(wait):
		t.Fatal("Lost not closed after the connection ended")
	}
	if err := lb.Close(); err != nil {
		t.Fatalf("Close of a lost lease: %v", err)
	}
	// b's side sees its connection end before the server's side of it
	// has exited and let its locks go: until it has, the lease is still
	// held, as for any holder that is going.
	deadline := time.Now().Add(wait)
	for exec(t, dsn, `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the terminated connections still hold their leases")
		}
		runtime.Gosched()
	}
	if tryLead(a, "rotation") == nil {
		t.Fatal("a cannot lead after b lost the lease")
	}
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	s := open(t, dsn)
	put(t, s, "k", "v")
	s.Close()
	if got := get(t, open(t, dsn), "k"); got != "v" {
		t.Fatalf("after reopen got %q", got)
	}
}

func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { open(t, dsn) })
	}
	wg.Wait()
	// Each migration recorded once, however many nodes raced to apply it.
	if n := exec(t, dsn, `SELECT * FROM kms_schema_migrations`); n != int64(pgstore.SchemaVersion) {
		t.Fatalf("%d migration records, want %d", n, pgstore.SchemaVersion)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	open(t, dsn).Close()
	exec(t, dsn, `INSERT INTO kms_schema_migrations (version) VALUES (999)`)
	s, err := pgstore.Open(context.Background(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("Open accepted a database migrated by a newer version")
	}
	if !strings.Contains(err.Error(), "version 999") {
		t.Fatalf("unclear error: %v", err)
	}
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, err := pgstore.Open(ctx, "postgres://kms:s3cret@127.0.0.1:1/kms?sslmode=disable")
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "s3cret") {
		t.Fatalf("error should name the host and not the password: %v", err)
	}
	_, err = pgstore.Open(ctx, "postgres://kms:s3cret@127.0.0.1:1/kms?sslmode=nonsense")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad DSN: %v", err)
	}
}

// TestLeaseOfAStoppedHolder: a holder that stops (SIGSTOP: as a machine
// that froze, or lost its network) stops pinging its lease's connection,
// and the server ends that session after it has been idle 15 s: another
// node takes the lease then, not after the kernel's TCP keepalive (hours).
func TestLeaseOfAStoppedHolder(t *testing.T) {
	t.Parallel()
	if dsn := os.Getenv("KMS_TEST_LEASE_HOLDER"); dsn != "" {
		holdLeaseForever(t, dsn)
		return
	}
	dsn := pgtest.Start(t)
	holder := osexec.Command(os.Args[0], "-test.run=^TestLeaseOfAStoppedHolder$")
	holder.Env = append(os.Environ(), "KMS_TEST_LEASE_HOLDER="+dsn)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	holder.Stderr = os.Stderr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "held\n" {
		t.Fatalf("the holder said %q, %v", line, err)
	}
	b := open(t, dsn)
	ctx := context.Background()
	if _, ok, err := b.TryLead(ctx, "rotation"); err != nil || ok {
		t.Fatalf("TryLead while the holder runs = %v, %v", ok, err)
	}
	if err := holder.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Wait for the lock itself, as a blocking lock on a connection of
	// the test's: it is granted once the server ends the holder's session.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := conn.Exec(waitCtx, `SELECT pg_advisory_lock($1)`, pgstore.LeaseKey("rotation")); err != nil {
		t.Fatalf("the lease of a stopped holder was not released within a minute: %v", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, pgstore.LeaseKey("rotation")); err != nil {
		t.Fatal(err)
	}
	l, ok, err := b.TryLead(ctx, "rotation")
	if err != nil || !ok {
		t.Fatalf("TryLead after the stopped holder's session ended = %v, %v", ok, err)
	}
	l.Close()
}

// holdLeaseForever takes the lease "rotation" in the database dsn, says
// so on stdout and waits to be killed.
func holdLeaseForever(t *testing.T, dsn string) {
	s, err := pgstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.TryLead(context.Background(), "rotation"); err != nil || !ok {
		t.Fatalf("TryLead = %v, %v", ok, err)
	}
	fmt.Println("held")
	select {}
}

// TestServingLease: any number of nodes share the serving lease, and
// while one does, HoldStopped (what kms root-key rotate and kms migrate
// take) refuses; while it is held, a node cannot share the lease.
func TestServingLease(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	a, b, tool := open(t, dsn), open(t, dsn), open(t, dsn)
	ctx := context.Background()
	var shares []*pgstore.Lease
	for _, s := range []*pgstore.Store{a, b} {
		l, ok, err := s.TryShare(ctx, pgstore.ServingLease)
		if err != nil || !ok {
			t.Fatalf("TryShare = %v, %v", ok, err)
		}
		shares = append(shares, l)
	}
	if _, err := tool.HoldStopped(ctx); !errors.Is(err, pgstore.ErrServing) {
		t.Fatalf("HoldStopped while two nodes serve: %v", err)
	}
	// The first node stops (it led the background work, say): the other
	// still serves.
	shares[0].Close()
	if _, err := tool.HoldStopped(ctx); !errors.Is(err, pgstore.ErrServing) {
		t.Fatalf("HoldStopped while one node serves: %v", err)
	}
	shares[1].Close()
	release, err := tool.HoldStopped(ctx)
	if err != nil {
		t.Fatalf("HoldStopped with no node serving: %v", err)
	}
	if _, ok, err := a.TryShare(ctx, pgstore.ServingLease); err != nil || ok {
		t.Fatalf("a node shares the serving lease while it is held: %v, %v", ok, err)
	}
	release()
	l, ok, err := a.TryShare(ctx, pgstore.ServingLease)
	if err != nil || !ok {
		t.Fatalf("TryShare after the release = %v, %v", ok, err)
	}
	l.Close()
}

// TestOpenWithLeastPrivilege: a node whose role may only read and write
// the tables (no CREATE in the schema) opens a database whose schema is
// up to date, and serves.
func TestOpenWithLeastPrivilege(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	open(t, dsn).Close() // the schema, made by a role that may
	exec(t, dsn, `REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
	app := pgtest.TableUser(t, dsn)
	s, err := pgstore.Open(context.Background(), app)
	if err != nil {
		t.Fatalf("Open as a role without CREATE: %v", err)
	}
	defer s.Close()
	put(t, s, "k", "v")
	if got := get(t, s, "k"); got != "v" {
		t.Fatalf("got %q", got)
	}
}

// terminateClients ends every client session of the database but the
// one that asks, as pg_terminate_backend or a restart of PostgreSQL
// does, and waits until they are gone.
func terminateClients(t *testing.T, dsn string) {
	t.Helper()
	const others = `FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`
	if n := exec(t, dsn, `SELECT pg_terminate_backend(pid) `+others); n == 0 {
		t.Fatal("no session to end")
	}
	deadline := time.Now().Add(wait)
	for exec(t, dsn, `SELECT pid `+others) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the ended sessions are still there")
		}
	}
}

// A transaction whose pooled connection PostgreSQL has ended meanwhile
// fails at its BEGIN or its first statement, before anything of it can
// have been committed: it is run again on another connection, and the
// call succeeds, instead of failing once per dead connection.
func TestTransactionOnAnEndedConnectionRunsAgain(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	s := open(t, dsn+"&pool_max_conns=3")
	put(t, s, "k", "v0")
	// Three connections in the pool, each used at once.
	var inside, release sync.WaitGroup
	inside.Add(3)
	release.Add(1)
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			errs <- s.View(context.Background(), func(tx store.Tx) error {
				_, err := tx.Get([]byte("k"))
				inside.Done()
				release.Wait()
				return err
			})
		}()
	}
	inside.Wait()
	release.Done()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	// Between calls: every pooled connection is dead at its BEGIN.
	terminateClients(t, dsn)
	for i := range 3 {
		put(t, s, "k", fmt.Sprint("v", i+1))
		if got, want := get(t, s, "k"), fmt.Sprint("v", i+1); got != want {
			t.Fatalf("k = %q, want %q", got, want)
		}
	}
	terminateClients(t, dsn)
	if got := get(t, s, "k"); got != "v3" {
		t.Fatalf("k = %q, want v3", got)
	}

	// Within a transaction, before its first statement: it is run again,
	// and its change committed once.
	runs := 0
	err := s.Update(context.Background(), func(tx store.Tx) error {
		runs++
		if runs == 1 {
			terminateClients(t, dsn)
		}
		v, err := tx.Get([]byte("k"))
		if err != nil {
			return err
		}
		return tx.Put([]byte("k"), append(v, '+'))
	})
	if err != nil || runs != 2 {
		t.Fatalf("Update whose connection was ended before its first statement: %v after %d runs, want success after 2", err, runs)
	}
	if got := get(t, s, "k"); got != "v3+" {
		t.Fatalf("k = %q, want v3+", got)
	}
}

// commitHolder is a TCP proxy in front of PostgreSQL that, once armed,
// holds back the server's answers on a connection from the moment the
// client sends it a COMMIT: the transaction commits, and its client
// never hears so.
type commitHolder struct {
	ln    net.Listener
	armed atomic.Bool
}

func newCommitHolder(t *testing.T, dsn string) (*commitHolder, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	h := &commitHolder{ln: ln}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			t.Cleanup(func() { client.Close(); server.Close() })
			var held atomic.Bool
			go func() { // client to server
				buf := make([]byte, 32<<10)
				for {
					n, err := client.Read(buf)
					if n > 0 {
						if h.armed.Load() && bytes.Contains(bytes.ToLower(buf[:n]), []byte("commit")) {
							held.Store(true)
						}
						server.Write(buf[:n])
					}
					if err != nil {
						server.Close()
						return
					}
				}
			}()
			go func() { // server to client, but what is held
				buf := make([]byte, 32<<10)
				for {
					n, err := server.Read(buf)
					if n > 0 && !held.Load() {
						client.Write(buf[:n])
					}
					if err != nil {
						client.Close()
						return
					}
				}
			}()
		}
	}()
	u.Host = ln.Addr().String()
	return h, u.String()
}

// A COMMIT whose answer is lost (the call's time ran out, the connection
// broke) after PostgreSQL committed it is not reported as failed: the
// transaction is looked up. Reported failed, the call was answered
// DependencyTimeoutException, and recorded so, for a change it made.
func TestCommitWhoseAnswerIsLost(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	open(t, dsn) // the schema
	holder, proxied := newCommitHolder(t, dsn)
	s := open(t, proxied+"&pool_max_conns=2")
	put(t, s, "k", "before")

	holder.armed.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := s.Update(ctx, func(tx store.Tx) error { return tx.Put([]byte("k"), []byte("after")) })
	holder.armed.Store(false)
	var v []byte
	conn, cerr := pgx.Connect(context.Background(), dsn)
	if cerr != nil {
		t.Fatal(cerr)
	}
	defer conn.Close(context.Background())
	if cerr := conn.QueryRow(context.Background(), `SELECT v FROM kms_records WHERE k = 'k'`).Scan(&v); cerr != nil {
		t.Fatal(cerr)
	}
	if string(v) != "after" {
		t.Fatalf("the change was not committed (k = %q); the test did not hold a COMMIT's answer", v)
	}
	if err != nil {
		t.Fatalf("Update committed, whose COMMIT's answer was lost: %v, want nil", err)
	}
}
