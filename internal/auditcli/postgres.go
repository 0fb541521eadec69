package auditcli

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openkms/kms/internal/audit"
)

// connectTimeout bounds connecting to PostgreSQL.
const connectTimeout = 30 * time.Second

// pgSource is the trail of a cluster in PostgreSQL: a chain per server
// process, read in time order across chains. It only reads: it neither
// migrates the schema nor writes.
type pgSource struct {
	pool   *pgxpool.Pool
	reader *audit.PostgresReader
}

func openPostgres(ctx context.Context, dsn string) (*pgSource, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's ParseConfigError redacts the password.
		return nil, fmt.Errorf("--storage: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("--storage: %w", err)
	}
	var present bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('kms_audit_records') IS NOT NULL`).Scan(&present); err != nil {
		pool.Close()
		// pgx's error names the user and database, never the password.
		addr := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
		return nil, fmt.Errorf("cannot read PostgreSQL at %s: %w", addr, err)
	}
	if !present {
		pool.Close()
		return nil, errors.New("the database holds no audit trail (no kms_audit_records table): no kms server of this version has run on it")
	}
	return &pgSource{pool: pool, reader: audit.NewPostgresReader(pool)}, nil
}

func (s *pgSource) chains() bool { return true }

func (s *pgSource) close() error {
	s.pool.Close()
	return nil
}

func (s *pgSource) verify(ctx context.Context, pub ed25519.PublicKey) ([]audit.Report, error) {
	return audit.VerifyPostgres(ctx, s.pool, pub, time.Now)
}

func (s *pgSource) next(ctx context.Context, keep func(*audit.Record) bool, fn func(record) error) error {
	fn = keepOnly(keep, fn)
	return s.reader.Read(ctx, func(chain string, r *audit.Record, event json.RawMessage) error {
		return fn(record{chain: chain, rec: r, event: event})
	})
}
