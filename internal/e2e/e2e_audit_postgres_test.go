package e2e_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/store/pgstore"
	"github.com/openkms/kms/internal/store/pgtest"
)

// newPostgresTrailEnv is newAuditedEnv with its audit trail a chain in a
// new PostgreSQL database, as a cluster node's is; it returns the pool of
// that database too.
func newPostgresTrailEnv(t *testing.T) (*kmsEnv, *pgxpool.Pool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pg, err := pgstore.Open(ctx, pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	trail, err := audit.OpenPostgres(ctx, pg.Pool(), "node")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	return newEnvOnTrail(t, t.TempDir(), nil, trail), pg.Pool()
}

// When the database refuses an audit batch, its calls are refused, and so
// is every call begun while the database still refuses a record: it would
// change things that the trail would never show. The first call once the
// database takes records again is answered, with its record in an intact
// chain.
func TestPostgresTrailRecovers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, pool := newPostgresTrailEnv(t)
	exec := func(sql string) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	refused := func(err error) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "KMSInternalException" || ae.ErrorMessage() != "An internal error occurred. Retry the request." || httpStatus(err) != http.StatusInternalServerError {
			t.Fatalf("got %v, want a 500 KMSInternalException", err)
		}
	}
	listKeys := func() int {
		t.Helper()
		out, err := e.client.ListKeys(ctx, &kms.ListKeysInput{})
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		return len(out.Keys)
	}
	if _, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{}); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}

	// The database refuses every record from now on.
	exec(`ALTER TABLE kms_audit_records ADD CONSTRAINT refuse CHECK (seq < 0) NOT VALID`)
	_, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{})
	refused(err)
	// While it still does, a call is refused before it begins.
	for range 3 {
		_, err = e.client.CreateKey(ctx, &kms.CreateKeyInput{})
		refused(err)
	}

	// It takes records again: the first call is answered.
	exec(`ALTER TABLE kms_audit_records DROP CONSTRAINT refuse`)
	if n := listKeys(); n != 2 {
		t.Errorf("%d keys once the trail took records again, want 2: the first and the one whose record was refused after it was made", n)
	}
	if _, err := e.client.CreateKey(ctx, &kms.CreateKeyInput{}); err != nil {
		t.Fatalf("CreateKey after the recovery: %v", err)
	}

	reports, err := audit.VerifyPostgres(ctx, pool, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || reports[0].Problem != nil || reports[0].Records != 3 {
		t.Fatalf("the trail after the recovery: %+v; want one intact chain of 3 records (CreateKey, ListKeys, CreateKey)", reports)
	}
}
