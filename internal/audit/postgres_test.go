package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/store/pgstore"
	"github.com/openkms/kms/internal/store/pgtest"
)

// openPool returns the pool of a migrated, empty database.
func openPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := pgstore.Open(ctx, pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st.Pool()
}

func openNode(t *testing.T, pool *pgxpool.Pool, host string) *audit.Log {
	t.Helper()
	l, err := audit.OpenPostgres(context.Background(), pool, host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// recordTime is the eventTime of the records appendAll writes; verifyPG
// checks the chains a second later, so that a chain with no digest yet is
// one its server has not had the time to sign.
var recordTime = time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)

// appendAll appends n records to l from n goroutines.
func appendAll(t *testing.T, l *audit.Log, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := rec(fmt.Sprint("Op", i))
			r.EventTime = audit.FormatTime(recordTime)
			if err := l.Append(r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func verifyPG(t *testing.T, pool *pgxpool.Pool, pub ed25519.PublicKey) []audit.Report {
	t.Helper()
	return verifyPGAt(t, pool, pub, recordTime.Add(time.Second))
}

// verifyPGAt is verifyPG on a clock that reads now.
func verifyPGAt(t *testing.T, pool *pgxpool.Pool, pub ed25519.PublicKey, now time.Time) []audit.Report {
	t.Helper()
	reports, err := audit.VerifyPostgres(context.Background(), pool, pub, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return reports
}

// lines returns a chain's rows, in order.
func lines(t *testing.T, pool *pgxpool.Pool, chain string) []string {
	t.Helper()
	rows, _ := pool.Query(context.Background(), `SELECT line FROM kms_audit_records WHERE chain = $1 ORDER BY seq`, chain)
	ls, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Concurrent appends make one gapless chain, whose rows are exactly the
// lines of a log file.
func TestPostgresConcurrentAppends(t *testing.T) {
	pool := openPool(t)
	l := openNode(t, pool, "node1")
	if !strings.HasPrefix(l.Chain(), "node1-") || len(l.Chain()) != len("node1-")+16 {
		t.Fatalf("chain id %q", l.Chain())
	}
	appendAll(t, l, 300)
	if seq, _ := l.Head(); seq != 300 {
		t.Fatalf("head %d, want 300", seq)
	}
	reports := verifyPG(t, pool, nil)
	if len(reports) != 1 || reports[0].Chain != l.Chain() || reports[0].Records != 300 || reports[0].Problem != nil {
		t.Fatalf("reports %+v", reports)
	}
	file := strings.Join(lines(t, pool, l.Chain()), "\n") + "\n"
	if n, p, err := audit.Verify(strings.NewReader(file)); n != 300 || p != nil || err != nil {
		t.Fatalf("the rows as a log file: %d records, %+v, %v", n, p, err)
	}
	var host string
	if err := pool.QueryRow(context.Background(), `SELECT host FROM kms_audit_chains WHERE chain = $1`, l.Chain()).Scan(&host); err != nil || host != "node1" {
		t.Fatalf("kms_audit_chains: host %q, %v", host, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(rec("late")); err != audit.ErrClosed {
		t.Fatalf("append after close: %v", err)
	}
}

// Two nodes on one database write two chains, each verifiable, each with
// its digests.
func TestPostgresTwoNodes(t *testing.T) {
	pool := openPool(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	chains := make([]string, 2)
	for i := range 2 {
		l := openNode(t, pool, fmt.Sprint("node", i))
		d, err := audit.OpenPostgresDigester(ctx, pool, l.Chain(), priv)
		if err != nil {
			t.Fatal(err)
		}
		chains[i] = l.Chain()
		wg.Go(func() {
			for round := range 3 {
				appendAll(t, l, 50)
				if err := d.Write(l, now.Add(time.Duration(round)*time.Minute)); err != nil {
					t.Error(err)
				}
				if err := d.Write(l, now); err != nil { // nothing new: no digest
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for _, pk := range []ed25519.PublicKey{nil, pub} {
		reports := verifyPG(t, pool, pk)
		if len(reports) != 2 {
			t.Fatalf("%d chains, want 2", len(reports))
		}
		for _, r := range reports {
			if r.Records != 150 || r.Digests != 3 || r.Problem != nil {
				t.Errorf("chain %s: %+v", r.Chain, r)
			}
		}
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	for _, r := range verifyPG(t, pool, other) {
		if r.Problem == nil || !r.Problem.Digest || !strings.Contains(r.Problem.Reason, "signature") {
			t.Errorf("chain %s verified under another key: %+v", r.Chain, r)
		}
	}
	// A digester belongs to its chain.
	d, err := audit.OpenPostgresDigester(ctx, pool, chains[0], priv)
	if err != nil {
		t.Fatal(err)
	}
	l := openNode(t, pool, "node3")
	if err := l.Append(rec("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(l, now); err == nil {
		t.Error("a digester signed another chain")
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := audit.OpenPostgresDigester(ctx, pool, chains[0], otherPriv); err == nil {
		t.Error("a second key was accepted for a chain")
	}
}

// Every way of tampering with the rows is found, and the report names the
// chain and the record.
func TestPostgresTamperingIsDetected(t *testing.T) {
	pool := openPool(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	ctx := context.Background()
	good := openNode(t, pool, "good")
	appendAll(t, good, 5)
	l := openNode(t, pool, "node")
	d, err := audit.OpenPostgresDigester(ctx, pool, l.Chain(), priv)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, l, 6)
	if err := d.Write(l, time.Now()); err != nil {
		t.Fatal(err)
	}
	appendAll(t, l, 2)
	chain := l.Chain()
	orig := lines(t, pool, chain)
	restore := func() {
		exec(t, pool, `DELETE FROM kms_audit_records WHERE chain = $1`, chain)
		exec(t, pool, `INSERT INTO kms_audit_records (chain, seq, line)
			SELECT $1, t.i, t.line FROM unnest($2::text[]) WITH ORDINALITY AS t(line, i)`, chain, orig)
	}
	for _, tc := range []struct {
		name   string
		sql    string
		record int    // the record the problem names
		reason string // part of the reason
	}{
		{"an edited line", `UPDATE kms_audit_records SET line = replace(line, '"eventName":"Op', '"eventName":"Xp') WHERE chain = $1 AND seq = 3`, 3, "edited"},
		{"a deleted row", `DELETE FROM kms_audit_records WHERE chain = $1 AND seq = 4`, 4, "missing"},
		{"the first row deleted", `DELETE FROM kms_audit_records WHERE chain = $1 AND seq = 1`, 1, "missing"},
		{"two rows' lines swapped", `UPDATE kms_audit_records r SET line = o.line FROM kms_audit_records o
			WHERE r.chain = $1 AND o.chain = $1 AND ((r.seq = 2 AND o.seq = 5) OR (r.seq = 5 AND o.seq = 2))`, 2, "sequence"},
		{"the newest rows deleted after a digest", `DELETE FROM kms_audit_records WHERE chain = $1 AND seq >= 5`, 6, "cut off"},
		{"a row deleted and the gap closed", `DELETE FROM kms_audit_records WHERE chain = $1 AND seq = 4;
			UPDATE kms_audit_records SET seq = 4 WHERE chain = $1 AND seq = 5;
			UPDATE kms_audit_records SET seq = 5 WHERE chain = $1 AND seq = 6;
			UPDATE kms_audit_records SET seq = 6 WHERE chain = $1 AND seq = 7;
			UPDATE kms_audit_records SET seq = 7 WHERE chain = $1 AND seq = 8`, 4, "sequence 5 where 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer restore()
			for _, stmt := range strings.Split(tc.sql, ";") {
				exec(t, pool, stmt, chain)
			}
			reports := verifyPG(t, pool, nil)
			if len(reports) != 2 {
				t.Fatalf("%d reports", len(reports))
			}
			for _, r := range reports {
				switch r.Chain {
				case good.Chain():
					if r.Problem != nil || r.Records != 5 {
						t.Errorf("the untouched chain: %+v", r)
					}
				case chain:
					if r.Problem == nil || r.Problem.Line != tc.record || !strings.Contains(r.Problem.Reason, tc.reason) {
						t.Errorf("got %+v %+v, want a problem at record %d (%q)", r, r.Problem, tc.record, tc.reason)
					}
				default:
					t.Errorf("unexpected chain %s", r.Chain)
				}
			}
		})
	}
	// After restore, the chain verifies again.
	for _, r := range verifyPG(t, pool, nil) {
		if r.Problem != nil {
			t.Errorf("restored chain %s: %+v", r.Chain, r.Problem)
		}
	}
	// Digests tampered with, or their key removed.
	var digestLine, key string
	if err := pool.QueryRow(ctx, `SELECT d.line, k.public_key FROM kms_audit_digests d JOIN kms_audit_keys k USING (chain)
		WHERE chain = $1`, chain).Scan(&digestLine, &key); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, sql, reason string }{
		{"a digest's sequence number edited", `UPDATE kms_audit_digests SET line = replace(line, '"sequence":6', '"sequence":5') WHERE chain = $1`, "holds a digest"},
		{"a digest's hash edited", `UPDATE kms_audit_digests SET line = regexp_replace(line, '"hash":"[0-9a-f]', '"hash":"x') WHERE chain = $1`, "signature"},
		{"the key removed", `DELETE FROM kms_audit_keys WHERE chain = $1`, "no public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				exec(t, pool, `UPDATE kms_audit_digests SET line = $2 WHERE chain = $1`, chain, digestLine)
				exec(t, pool, `INSERT INTO kms_audit_keys (chain, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, chain, key)
			}()
			exec(t, pool, tc.sql, chain)
			for _, r := range verifyPG(t, pool, nil) {
				if r.Chain == chain && (r.Problem == nil || !r.Problem.Digest || r.Problem.Line != 6 || !strings.Contains(r.Problem.Reason, tc.reason)) {
					t.Errorf("got %+v %+v, want a problem with the digest of record 6 (%q)", r, r.Problem, tc.reason)
				}
			}
		})
	}
	for _, r := range verifyPG(t, pool, nil) {
		if r.Problem != nil {
			t.Errorf("restored chain %s: %+v", r.Chain, r.Problem)
		}
	}
}

// rechain rewrites the rows of chain from record from on, each event
// edited by edit, with their hashes and previousHash recomputed: what
// someone who can write the table, but has not the signing key, can do.
func rechain(t *testing.T, pool *pgxpool.Pool, chain string, from int, edit func(seq int, event string) string) {
	t.Helper()
	ls := lines(t, pool, chain)
	prev := strings.Repeat("0", 64)
	for i, ln := range ls {
		seq := i + 1
		var row struct {
			Hash  string          `json:"hash"`
			Event json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal([]byte(ln), &row); err != nil {
			t.Fatal(err)
		}
		if seq < from {
			prev = row.Hash
			continue
		}
		event := edit(seq, string(row.Event))
		event = regexp.MustCompile(`"previousHash":"[0-9a-f]*"`).ReplaceAllString(event, `"previousHash":"`+prev+`"`)
		sum := sha256.Sum256([]byte(prev + event))
		prev = hex.EncodeToString(sum[:])
		exec(t, pool, `UPDATE kms_audit_records SET line = $2 WHERE chain = $1 AND seq = $3`,
			chain, `{"hash":"`+prev+`","event":`+event+`}`, seq)
	}
}

// A chain whose digests were all removed, then cut back and rewritten
// with its hashes recomputed, does not verify, even though its hash chain
// is intact: no digest covers it, and its first record is older than a
// server takes to sign one.
func TestPostgresChainWithoutDigests(t *testing.T) {
	pool := openPool(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	ctx := context.Background()
	l := openNode(t, pool, "node")
	d, err := audit.OpenPostgresDigester(ctx, pool, l.Chain(), priv)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	for i := range 40 {
		r := rec(fmt.Sprint("Op", i+1))
		r.EventTime = audit.FormatTime(start.Add(time.Duration(i) * time.Second))
		if err := l.Append(r); err != nil {
			t.Fatal(err)
		}
		if i == 19 || i == 39 {
			if err := d.Write(l, start.Add(time.Duration(i)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	later := start.Add(time.Hour)
	if rs := verifyPGAt(t, pool, pub, later); len(rs) != 1 || rs[0].Problem != nil || rs[0].Records != 40 || rs[0].Digests != 2 {
		t.Fatalf("the intact chain: %+v", rs)
	}
	chain := l.Chain()
	exec(t, pool, `DELETE FROM kms_audit_digests WHERE chain = $1`, chain)
	exec(t, pool, `DELETE FROM kms_audit_records WHERE chain = $1 AND seq > 10`, chain)
	rechain(t, pool, chain, 5, func(seq int, event string) string {
		if seq == 5 {
			return strings.Replace(event, `"eventName":"Op5"`, `"eventName":"Forged"`, 1)
		}
		return event
	})
	if file := strings.Join(lines(t, pool, chain), "\n") + "\n"; !strings.Contains(file, "Forged") {
		t.Fatal("record 5 was not rewritten")
	} else if n, p, err := audit.Verify(strings.NewReader(file)); n != 10 || p != nil || err != nil {
		t.Fatalf("the rewritten chain's hashes: %d records, %+v, %v", n, p, err)
	}
	for _, key := range []ed25519.PublicKey{pub, nil} {
		rs := verifyPGAt(t, pool, key, later)
		if len(rs) != 1 || rs[0].Records != 10 {
			t.Fatalf("reports %+v", rs)
		}
		ps := rs[0].Problems()
		want := "no signed digest covers the chain, whose first record is from 2026-11-26T09:00:00Z"
		if len(ps) != 1 || !ps[0].Digest || !strings.Contains(ps[0].Reason, want) {
			t.Errorf("key %v: problems %+v, want one: %q", key != nil, ps, want)
		}
	}
}

// A chain whose first record is younger than a server takes to sign it
// has no digest yet, and is not broken for it; older, or dated ahead of
// the verifier's clock by as much, it is. Once it has a digest, records
// after it are protected by the chain only, as in a data directory.
func TestPostgresNewChainWithoutDigest(t *testing.T) {
	pool := openPool(t)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	l := openNode(t, pool, "node")
	start := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	for i := range 3 {
		r := rec(fmt.Sprint("Op", i+1))
		r.EventTime = audit.FormatTime(start.Add(time.Duration(i) * time.Second))
		if err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		at     time.Time
		broken bool
	}{
		{start.Add(3 * time.Second), false},
		{start.Add(audit.ChainDigestGrace), false},
		{start.Add(-time.Second), false}, // the server's clock a second ahead
		{start.Add(audit.ChainDigestGrace + time.Second), true},
		{start.Add(24 * time.Hour), true},
		{start.Add(-audit.ChainDigestGrace - time.Second), true},
	} {
		rs := verifyPGAt(t, pool, pub, tc.at)
		if len(rs) != 1 || rs[0].Records != 3 {
			t.Fatalf("reports %+v", rs)
		}
		p := rs[0].Problem
		if broken := p != nil && strings.Contains(p.Reason, "no signed digest covers the chain"); broken != tc.broken || len(rs[0].Problems()) > 1 || p != nil && !broken {
			t.Errorf("checked %v after the first record: problems %+v, want broken %v", tc.at.Sub(start), rs[0].Problems(), tc.broken)
		}
	}
	d, err := audit.OpenPostgresDigester(context.Background(), pool, l.Chain(), priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Write(l, start.Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(rec("After")); err != nil {
		t.Fatal(err)
	}
	if rs := verifyPGAt(t, pool, pub, start.Add(24*time.Hour)); len(rs) != 1 || rs[0].Problem != nil || rs[0].Records != 4 || rs[0].Digests != 1 {
		t.Errorf("a chain with a digest and a record after it: %+v", rs)
	}
}

// A batch the database refuses fails every Append in it; once the
// database accepts writes again, the chain goes on without a gap.
func TestPostgresWriteFailure(t *testing.T) {
	pool := openPool(t)
	l := openNode(t, pool, "node")
	appendAll(t, l, 10)
	exec(t, pool, `ALTER TABLE kms_audit_records ADD CONSTRAINT refuse CHECK (seq < 0) NOT VALID`)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() { errs <- l.Append(rec("Refused")) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil || !strings.Contains(err.Error(), "refuse") {
			t.Fatalf("an Append the database refused returned %v", err)
		}
	}
	if seq, _ := l.Head(); seq != 10 {
		t.Fatalf("head %d after refused appends, want 10", seq)
	}
	exec(t, pool, `ALTER TABLE kms_audit_records DROP CONSTRAINT refuse`)
	r := rec("Accepted")
	if err := l.Append(r); err != nil || r.Sequence != 11 {
		t.Fatalf("after the database recovered: seq %d, %v", r.Sequence, err)
	}
	appendAll(t, l, 10)
	if reports := verifyPG(t, pool, nil); len(reports) != 1 || reports[0].Records != 21 || reports[0].Problem != nil {
		t.Fatalf("%+v", reports)
	}
}

// Retry finds the chain writable again as soon as the database takes a
// row, and not before: the first call after an outage need not be
// refused, and none is begun while a record would still be refused. The
// probe's row never stays.
func TestPostgresRetry(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	st, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pool := st.Pool()
	l := openNode(t, pool, "node")
	appendAll(t, l, 3)
	if err := l.Retry(); err != nil {
		t.Fatalf("Retry of a log that never failed = %v", err)
	}

	exec(t, pool, `ALTER TABLE kms_audit_records ADD CONSTRAINT refuse CHECK (seq < 0) NOT VALID`)
	if err := l.Append(rec("Refused")); err == nil {
		t.Fatal("an Append the database refused returned nil")
	}
	for range 2 {
		if err := l.Retry(); err == nil || !strings.Contains(err.Error(), "refuse") {
			t.Fatalf("Retry while the database refuses rows = %v", err)
		}
	}
	exec(t, pool, `ALTER TABLE kms_audit_records DROP CONSTRAINT refuse`)
	if err := l.Retry(); err != nil {
		t.Fatalf("Retry once the database takes rows = %v", err)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("Err after a Retry that succeeded = %v", err)
	}
	if n := len(lines(t, pool, l.Chain())); n != 3 {
		t.Fatalf("the chain holds %d rows after the probes, want 3", n)
	}
	r := rec("Accepted")
	if err := l.Append(r); err != nil || r.Sequence != 4 {
		t.Fatalf("after the recovery: seq %d, %v", r.Sequence, err)
	}

	// The database goes away, as in a restart: its connections are cut
	// and no new one is taken until it is back.
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := cfg.Database
	cfg.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	adminExec := func(sql string) {
		t.Helper()
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	adminExec(`ALTER DATABASE ` + name + ` WITH ALLOW_CONNECTIONS false`)
	t.Cleanup(func() { admin.Exec(context.Background(), `ALTER DATABASE `+name+` WITH ALLOW_CONNECTIONS true`) })
	adminExec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '` + name + `'`)
	if err := l.Append(rec("Down")); err == nil {
		t.Fatal("an Append while the database was down returned nil")
	}
	if err := l.Retry(); err == nil {
		t.Fatal("Retry while the database is down returned nil")
	}
	adminExec(`ALTER DATABASE ` + name + ` WITH ALLOW_CONNECTIONS true`)
	if err := l.Retry(); err != nil {
		t.Fatalf("Retry once the database is back = %v", err)
	}
	appendAll(t, l, 2)

	// Callers retry and append at once while the database comes back:
	// none waits forever, and the chain stays whole.
	exec(t, pool, `ALTER TABLE kms_audit_records ADD CONSTRAINT refuse CHECK (seq < 0) NOT VALID`)
	if err := l.Append(rec("Refused")); err == nil {
		t.Fatal("an Append the database refused returned nil")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if l.Retry() == nil {
					r := rec("Concurrent")
					r.EventTime = audit.FormatTime(recordTime)
					l.Append(r)
				}
			}
		})
	}
	exec(t, pool, `ALTER TABLE kms_audit_records DROP CONSTRAINT refuse`)
	wg.Wait()
	if err := l.Retry(); err != nil {
		t.Fatalf("Retry once the database took rows again = %v", err)
	}
	if reports := verifyPG(t, pool, nil); len(reports) != 1 || reports[0].Problem != nil {
		t.Fatalf("%+v", reports)
	}
}

// A reader returns every chain's records in time order, then only what
// was written since.
func TestPostgresReader(t *testing.T) {
	pool := openPool(t)
	a, b := openNode(t, pool, "a"), openNode(t, pool, "b")
	at := func(l *audit.Log, name, tm string) {
		r := rec(name)
		r.EventTime = tm
		if err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	at(a, "A1", "2026-01-01T00:00:02Z")
	at(b, "B1", "2026-01-01T00:00:01Z")
	at(a, "A2", "2026-01-01T00:00:01Z") // older than A1: time, not sequence, orders
	at(b, "B2", "2026-01-01T00:00:03Z")
	rd := audit.NewPostgresReader(pool)
	read := func() string {
		t.Helper()
		var got []string
		err := rd.Read(context.Background(), func(chain string, r *audit.Record, event json.RawMessage) error {
			if !bytes.Contains(event, []byte(r.EventName)) {
				t.Errorf("event %s does not hold %s", event, r.EventName)
			}
			got = append(got, fmt.Sprintf("%s/%d", r.EventName, r.Sequence))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, " ")
	}
	// At 00:00:01, chain a's id sorts before b's.
	want := "A2/2 B1/1 A1/1 B2/2"
	if a.Chain() > b.Chain() {
		want = "B1/1 A2/2 A1/1 B2/2"
	}
	if got := read(); got != want {
		t.Fatalf("first read %q, want %q", got, want)
	}
	if got := read(); got != "" {
		t.Fatalf("nothing new, read %q", got)
	}
	c := openNode(t, pool, "c")
	at(c, "C1", "2026-01-01T00:00:00Z")
	at(a, "A3", "2026-01-01T00:00:05Z")
	at(a, "A4", "2026-01-01T00:00:04Z")
	if got := read(); got != "C1/1 A4/4 A3/3" {
		t.Fatalf("second read %q", got)
	}
}

// BenchmarkAppendPostgres appends records to a PostgreSQL trail. The
// throw-away server pgtest starts runs with fsync=off, so its figure leaves
// out the commit's flush: set KMS_TEST_POSTGRES to a server as it runs in
// production for a figure that counts it.
func BenchmarkAppendPostgres(b *testing.B) {
	ctx := context.Background()
	st, err := pgstore.Open(ctx, pgtest.Start(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	l, err := audit.OpenPostgres(ctx, st.Pool(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Append(rec("Encrypt")); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A batch whose pooled connection PostgreSQL ended meanwhile
// (pg_terminate_backend, a restart) is written through another: the
// records of the calls after it are not refused once per dead connection.
func TestPostgresWriteOnAnEndedConnection(t *testing.T) {
	pool := openPool(t)
	l := openNode(t, pool, "node-a")
	appendAll(t, l, 8)
	admin, err := pgx.ConnectConfig(context.Background(), pool.Config().ConnConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	ended := 0
	rows, err := admin.Query(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		ended++
	}
	rows.Close()
	if ended == 0 {
		t.Fatal("no session to end")
	}
	for i := range 3 {
		if err := l.Append(rec(fmt.Sprint("After", i))); err != nil {
			t.Fatalf("Append %d after the pool's sessions were ended: %v", i, err)
		}
	}
}

// A batch whose INSERT was committed, and whose answer was lost with its
// connection (PostgreSQL restarted just then), is written: run again on
// another connection, it finds its own rows in place, and its calls,
// recorded, are not refused. Rows of another batch in its place still
// fail it.
func TestPostgresWriteWhoseAnswerIsLost(t *testing.T) {
	pool := openPool(t)
	l := openNode(t, pool, "node-a")
	appendAll(t, l, 3)
	chain := l.Chain()
	admin, err := pgx.ConnectConfig(context.Background(), pool.Config().ConnConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	// committedThenLost stands for an attempt that committed rows from
	// seq first on, and whose connection ended before it was answered.
	committedThenLost := func(first int, rows ...string) {
		t.Helper()
		for i, r := range rows {
			if _, err := admin.Exec(context.Background(), `INSERT INTO kms_audit_records (chain, seq, line) VALUES ($1, $2, $3)`, chain, first+i, r); err != nil {
				t.Fatal(err)
			}
		}
		var ended int
		err := admin.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`).Scan(&ended)
		if err != nil || ended == 0 {
			t.Fatalf("ending the pool's sessions: %d, %v", ended, err)
		}
	}
	committedThenLost(4, "fourth", "fifth")
	if err := audit.WritePostgres(pool, chain, []string{"fourth", "fifth"}, 4); err != nil {
		t.Fatalf("a batch committed before its answer was lost: %v", err)
	}
	committedThenLost(6, "sixth")
	if err := audit.WritePostgres(pool, chain, []string{"another"}, 6); err == nil {
		t.Fatal("a batch whose place another holds was written")
	}
}
