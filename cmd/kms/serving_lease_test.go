package main_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/jackc/pgx/v5"
)

// A node whose share of the cluster's serving lease ends with its
// connection refuses calls, and is not ready, until it holds it again: a
// kms root-key rotate or kms migrate that took the lease meanwhile would
// otherwise run beside a node still sealing records under the old root
// key.
func TestNodeRefusesCallsWithoutTheServingLease(t *testing.T) {
	t.Parallel()
	nodes, dsn := startCluster(t, 1)
	s := nodes[0]
	c := s.client(t)
	ctx := testCtx(t)
	key := mustCreateKey(t, s)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	ready := func() (int, map[string]string) {
		resp, err := http.Get(s.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}

	// End the node's connection holding its share (the only shared
	// advisory lock) while no new connection may be made, and take the
	// lease exclusively, as kms root-key rotate would, before the node
	// can take its share again.
	var pid int
	var lockKey int64
	var db string
	err = conn.QueryRow(ctx, `SELECT pid, (classid::bigint << 32) | objid::bigint, current_database() FROM pg_locks
		WHERE locktype = 'advisory' AND mode = 'ShareLock' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid, &lockKey, &db)
	if err != nil {
		t.Fatalf("the node's share of the serving lease: %v", err)
	}
	// A database's connections are switched off from another one.
	admCfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	admCfg.Database = "postgres"
	adm, err := pgx.ConnectConfig(ctx, admCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(ctx)
	allow := func(on bool) {
		t.Helper()
		if _, err := adm.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" WITH ALLOW_CONNECTIONS "+map[bool]string{true: "true", false: "false"}[on]); err != nil {
			t.Fatal(err)
		}
	}
	allow(false)
	var ended, led bool
	if err := conn.QueryRow(ctx, `SELECT pg_terminate_backend($1, 5000), pg_try_advisory_lock($2)`, pid, lockKey).Scan(&ended, &led); err != nil || !ended || !led {
		allow(true)
		t.Fatalf("ending the node's lease and leading it: ended %v, led %v, %v", ended, led, err)
	}
	allow(true)
	s.waitLog(regexp.MustCompile(`the key store is held by kms root-key rotate or kms migrate: this node refuses calls`), 20*time.Second)

	waitFor(t, 10*time.Second, "the node to refuse calls", func() error {
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key, Plaintext: []byte("x")})
		var re *awshttp.ResponseError
		if err == nil || !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusInternalServerError {
			return errors.New("Encrypt still answered")
		}
		return nil
	})
	if _, err := c.CreateKey(ctx, &kms.CreateKeyInput{}); err == nil {
		t.Error("CreateKey went through while the node did not hold its share of the lease")
	}
	if code, body := ready(); code != http.StatusServiceUnavailable || body["failing"] != "cluster" {
		t.Errorf("/readyz %d %v without the lease, want 503 failing cluster", code, body)
	}
	// Each refused call has its refusal logged: the first in full, the
	// others as a count every few seconds, not a line each.
	for range 20 {
		if _, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key, Plaintext: []byte("x")}); err == nil {
			t.Fatal("Encrypt answered without the lease")
		}
	}
	s.waitLog(regexp.MustCompile(`msg="the node may not serve now; the call is refused before it begins" .* repeated=\d+`), 10*time.Second)
	full := 0
	for _, l := range strings.Split(s.stderr.String(), "\n") {
		if strings.Contains(l, `msg="the node may not serve now`) && !strings.Contains(l, " repeated=") {
			full++
		}
	}
	if full != 1 {
		t.Errorf("%d refusals logged in full, want the first only", full)
	}

	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockKey); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the node to serve again", func() error {
		_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: key, Plaintext: []byte("x")})
		return err
	})
	if code, _ := ready(); code != http.StatusOK {
		t.Errorf("/readyz %d once the lease is held again", code)
	}
	s.waitLog(regexp.MustCompile(`the cluster.s serving lease is held again`), 5*time.Second)
}
