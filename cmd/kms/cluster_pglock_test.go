package main_test

// A node whose calls wait on PostgreSQL: a record locked by another
// client, held for as long as that client likes.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/jackc/pgx/v5"

	"github.com/openkms/kms/internal/store/pgtest"
)

// startNodeOn starts a dev node on the database at storage, with a data
// directory of its own, and waits until it serves.
func startNodeOn(t *testing.T, storage string, extra ...string) *server {
	t.Helper()
	args := append([]string{"server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--storage", storage}, extra...)
	return startServerIn(t, "", baseEnv(), args...)
}

// lockRecord locks the record named name in a transaction of its own,
// until the returned function rolls it back.
func lockRecord(t *testing.T, dsn, name string) (release func()) {
	t.Helper()
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, dsn)
	noErr(t, err, "connect")
	tx, err := conn.Begin(ctx)
	noErr(t, err, "begin")
	var one int
	err = tx.QueryRow(ctx, `SELECT 1 FROM kms_records WHERE k = $1 FOR UPDATE`, []byte(name)).Scan(&one)
	noErr(t, err, "lock %s", name)
	released := false
	release = func() {
		if !released {
			released = true
			tx.Rollback(context.Background())
			conn.Close(context.Background())
		}
	}
	t.Cleanup(release)
	return release
}

// waitLockWaiters waits until n backends of the database wait on a lock.
func waitLockWaiters(t *testing.T, dsn string, n int) {
	t.Helper()
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, dsn)
	noErr(t, err, "connect")
	defer conn.Close(context.Background())
	waitFor(t, 10*time.Second, fmt.Sprintf("%d calls waiting on the lock", n), func() error {
		var waiting int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err == nil && waiting < n {
			err = fmt.Errorf("%d waiting", waiting)
		}
		return err
	})
}

// Calls that wait on a record another client keeps locked hold the
// node's store connections while they wait. The audit trail has
// connections of its own: a warm Encrypt, which reads no record, is
// answered at once, its record committed, instead of waiting behind them
// for a connection and failing.
func TestWarmCallsAnsweredWhileOthersWaitOnALock(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	args := []string{"server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--storage", dsn + "&pool_max_conns=2", "--cache-max-age", "1h"}
	s := startServerIn(t, "", baseEnv(), args...)
	warm, locked := mustCreateKey(t, s), mustCreateKey(t, s)
	// The key must be warm for certain. A node hears of its own changes
	// too, a moment after making them, and the creation of a key drops
	// it from the cache, warm or not; and a node empties its caches once
	// it begins to listen for changes. So the keys are made, the node
	// started again, and the key warmed once it listens.
	stopServer(t, s)
	s = startServerIn(t, "", baseEnv(), args...)
	waitListening(t, dsn, 1)
	c := s.client(t)
	ctx := testCtx(t)
	grant := func() error {
		_, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: locked, GranteePrincipal: aws.String("arn:aws:iam::111122223333:root"),
			Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
		return err
	}
	// The first grant writes the key's grant count, which the next
	// ones update.
	noErr(t, grant(), "CreateGrant")
	_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: warm, Plaintext: []byte("x")})
	noErr(t, err, "Encrypt")

	release := lockRecord(t, dsn, "grantcount/"+s.Region+"/"+*locked)
	granted := make(chan error, 2)
	for range 2 {
		go func() { granted <- grant() }()
	}
	waitLockWaiters(t, dsn, 2)

	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = c.Encrypt(callCtx, &kms.EncryptInput{KeyId: warm, Plaintext: []byte("x")})
	noErr(t, err, "Encrypt with a warm key while two calls hold every store connection")
	t.Logf("Encrypt answered in %v", time.Since(start))

	release()
	for range 2 {
		noErr(t, <-granted, "CreateGrant once the lock is released")
	}
}

// A call waiting on a record another client keeps locked is given up
// after --call-timeout: it is answered DependencyTimeoutException (503),
// as AWS KMS answers when a dependency times out, its transaction is
// rolled back (its backend no longer waits on the lock), and the answer
// is in the audit trail. Without the bound it waited for as long as the
// lock was held, and calls piled up behind it.
func TestCallWaitingOnALockTimesOut(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	s := startNodeOn(t, dsn, "--cache-max-age", "1h", "--call-timeout", "2s")
	c := s.client(t)
	ctx := testCtx(t)
	key := mustCreateKey(t, s)
	grant := func(ctx context.Context) (*kms.CreateGrantOutput, error) {
		return c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: key, GranteePrincipal: aws.String("arn:aws:iam::111122223333:root"),
			Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	}
	_, err := grant(ctx)
	noErr(t, err, "CreateGrant")

	release := lockRecord(t, dsn, "grantcount/"+s.Region+"/"+*key)
	callCtx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	start := time.Now()
	out, err := grant(callCtx)
	took := time.Since(start)
	var re *awshttp.ResponseError
	if apiErrorCode(err) != "DependencyTimeoutException" || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusServiceUnavailable {
		t.Fatalf("CreateGrant on a locked record: %v, %v after %v; want DependencyTimeoutException (503)", out, err, took)
	}
	t.Logf("answered %v after %v", apiErrorCode(err), took)
	requestID := re.ServiceRequestID()
	// Its transaction no longer waits on the lock.
	conn, err := pgx.Connect(ctx, dsn)
	noErr(t, err, "connect")
	defer conn.Close(context.Background())
	waitFor(t, 5*time.Second, "no backend waiting on the lock", func() error {
		var waiting int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err == nil && waiting > 0 {
			err = fmt.Errorf("%d waiting", waiting)
		}
		return err
	})
	release()
	_, err = grant(ctx)
	noErr(t, err, "CreateGrant once the lock is released")

	waitSigned(t, dsn)
	found := false
	for _, ev := range clusterEvents(t, dsn) {
		if ev["requestID"] == requestID {
			found = ev["eventName"] == "CreateGrant" && ev["errorCode"] == "DependencyTimeoutException"
		}
	}
	if !found {
		t.Errorf("no CreateGrant record with errorCode DependencyTimeoutException for request %s", requestID)
	}
}

// A node whose store connections are all held by calls waiting on a
// record another client keeps locked still hears of changes made on
// another node at once: it reads the records they changed through a
// connection of its own. Before, each change it read waited up to 5 s
// for a connection, one after another, while it went on encrypting with
// a key disabled on the other node.
func TestChangesReachANodeWhoseCallsWaitOnALock(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	dir := t.TempDir()
	start := func(storage string) *server {
		args := []string{"server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir, "--storage", storage,
			"--cache-max-age", "1h", "--call-timeout", "25s"}
		return startServerIn(t, "", baseEnv(), args...)
	}
	busy := start(dsn + "&pool_max_conns=2")
	other := start(dsn)
	c, o := busy.client(t), other.client(t)
	ctx := testCtx(t)
	disabled, granted, locked := mustCreateKey(t, other), mustCreateKey(t, other), mustCreateKey(t, other)
	grant := func(c *kms.Client, key *string) error {
		_, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: key, GranteePrincipal: aws.String("arn:aws:iam::111122223333:root"),
			Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
		return err
	}
	noErr(t, grant(o, locked), "CreateGrant")
	encrypt := func(ctx context.Context, key *string) error {
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key, Plaintext: []byte("x")})
		return err
	}
	noErr(t, encrypt(ctx, disabled), "Encrypt")
	noErr(t, encrypt(ctx, granted), "Encrypt")

	release := lockRecord(t, dsn, "grantcount/"+busy.Region+"/"+*locked)
	waiting := make(chan error, 2)
	for range 2 {
		go func() { waiting <- grant(c, locked) }()
	}
	waitLockWaiters(t, dsn, 2)

	// A change the busy node reads to patch its cached key, then one that
	// disables a key it holds.
	noErr(t, grant(o, granted), "CreateGrant on the other node")
	_, err := o.DisableKey(ctx, &kms.DisableKeyInput{KeyId: disabled})
	noErr(t, err, "DisableKey on the other node")
	// Once it has heard, the busy node reads the key again, which waits
	// for a connection: a call that does not succeed at once has heard.
	waitFor(t, 3*time.Second, "the busy node no longer encrypts with the disabled key", func() error {
		callCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if encrypt(callCtx, disabled) == nil {
			return errors.New("Encrypt succeeded")
		}
		return nil
	})

	release()
	for range 2 {
		noErr(t, <-waiting, "CreateGrant once the lock is released")
	}
	if err := encrypt(ctx, disabled); apiErrorCode(err) != "DisabledException" {
		t.Fatalf("Encrypt with the disabled key: %v, want DisabledException", err)
	}
}

// A node asked to stop while a key record it must write its last use
// into is locked by another client gives the write up after
// --call-timeout and exits, instead of waiting for as long as the lock
// is held.
func TestShutdownDoesNotWaitOnALockedKeyRecord(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	s := startNodeOn(t, dsn, "--call-timeout", "2s")
	ctx := testCtx(t)
	key := mustCreateKey(t, s)
	_, err := s.client(t).Encrypt(ctx, &kms.EncryptInput{KeyId: key, Plaintext: []byte("x")})
	noErr(t, err, "Encrypt")
	lockRecord(t, dsn, "key/"+s.Region+"/"+*key)

	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d\n%s", code, s.stderr)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start))
	if !strings.Contains(s.stderr.String(), "writing key last usage at shutdown") {
		t.Errorf("the log does not say the last uses were not written:\n%s", s.stderr)
	}
}

// A web console call waiting on a record another client keeps locked is
// bounded by --call-timeout as a signed call is: it is answered
// DependencyTimeoutException (503) in the console's error shape, its
// transaction rolled back, and the answer recorded. Before, it waited for
// as long as the lock was held.
func TestConsoleCallWaitingOnALockTimesOut(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	dir := t.TempDir()
	s := startServerIn(t, "", baseEnv(), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir, "--storage", dsn,
		"--cache-max-age", "1h", "--call-timeout", "2s")
	id, secret := devCredentials(t, dir)
	cc := signInConsole(t, s, id, secret)
	key := mustCreateKey(t, s)
	in := map[string]any{"KeyId": *key, "GranteePrincipal": "arn:aws:iam::111122223333:root", "Operations": []string{"Decrypt"}}
	if status := cc.post("call/kms/CreateGrant", in, nil); status != http.StatusOK {
		t.Fatalf("CreateGrant: %d", status)
	}

	release := lockRecord(t, dsn, "grantcount/"+s.Region+"/"+*key)
	cc.c.Timeout = 8 * time.Second // the lock outlasts it
	var answer struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	start := time.Now()
	status := cc.post("call/kms/CreateGrant", in, &answer)
	if status != http.StatusServiceUnavailable || answer.Type != "DependencyTimeoutException" ||
		answer.Message != "The system timed out while trying to fulfill the request. You can retry the request." {
		t.Fatalf("CreateGrant on a locked record through the console: %d %+v after %v; want 503 DependencyTimeoutException",
			status, answer, time.Since(start))
	}
	t.Logf("answered %s after %v", answer.Type, time.Since(start))
	release()
	if status := cc.post("call/kms/CreateGrant", in, nil); status != http.StatusOK {
		t.Fatalf("CreateGrant once the lock is released: %d", status)
	}

	// The records locked whole: the session's principal, read again on
	// each request, is waited for within the bound too.
	ctx := testCtx(t)
	conn, err := pgx.Connect(ctx, dsn)
	noErr(t, err, "connect")
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	noErr(t, err, "begin")
	_, err = tx.Exec(ctx, `LOCK TABLE kms_records IN ACCESS EXCLUSIVE MODE`)
	noErr(t, err, "lock the records")
	answer.Type = ""
	status = cc.post("call/kms/ListKeys", nil, &answer)
	tx.Rollback(context.Background())
	if status != http.StatusServiceUnavailable || answer.Type != "DependencyTimeoutException" {
		t.Fatalf("ListKeys through the console with the records locked: %d %+v; want 503 DependencyTimeoutException", status, answer)
	}

	waitSigned(t, dsn)
	timedOut := 0
	for _, ev := range clusterEvents(t, dsn) {
		if ev["eventName"] == "CreateGrant" && ev["userAgent"] == "openkms-console/1" && ev["errorCode"] == "DependencyTimeoutException" {
			timedOut++
		}
	}
	if timedOut != 1 {
		t.Errorf("%d console CreateGrant records with errorCode DependencyTimeoutException, want 1", timedOut)
	}
}

// An IAM call waiting on records another client keeps locked is
// answered at --call-timeout as a KMS call is: ServiceFailure with HTTP
// 503 and the time-out's message, not the 500 of an internal error.
func TestIAMCallWaitingOnALockTimesOut(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Start(t)
	dir := t.TempDir()
	s := startServerIn(t, "", baseEnv(), "server", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir, "--storage", dsn,
		"--call-timeout", "2s")
	id, secret := devCredentials(t, dir)
	c := iamClient(s, id, secret)
	ctx := testCtx(t)
	_, err := c.ListUsers(ctx, &iam.ListUsersInput{})
	noErr(t, err, "ListUsers")

	conn, err := pgx.Connect(ctx, dsn)
	noErr(t, err, "connect")
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	noErr(t, err, "begin")
	_, err = tx.Exec(ctx, `LOCK TABLE kms_records IN ACCESS EXCLUSIVE MODE`)
	noErr(t, err, "lock the records")
	callCtx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	_, err = c.ListUsers(callCtx, &iam.ListUsersInput{})
	tx.Rollback(context.Background())
	var re *awshttp.ResponseError
	if apiErrorCode(err) != "ServiceFailure" || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusServiceUnavailable ||
		!strings.Contains(err.Error(), "The system timed out while trying to fulfill the request.") {
		t.Fatalf("ListUsers with the records locked: %v; want ServiceFailure (503) timed out", err)
	}
}
