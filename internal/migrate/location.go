package migrate

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/openkms/kms/internal/datadir"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/store/pgstore"
)

// openTimeout bounds connecting to PostgreSQL.
const openTimeout = 30 * time.Second

// Location is where a key store lives: exactly one of Dir and DSN is set.
type Location struct {
	Dir string // a data directory; the store is Dir/kms.db
	DSN string // a PostgreSQL connection URL
}

// ParseLocation reads a --from or --to value: a PostgreSQL URL
// (postgres://... or postgresql://...) or else the path of a data
// directory.
func ParseLocation(s string) (Location, error) {
	switch {
	case s == "":
		return Location{}, errors.New("empty location: give a data directory or a postgres:// URL")
	case strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://"):
		return Location{DSN: s}, nil
	}
	dir, err := filepath.Abs(s)
	if err != nil {
		return Location{}, err
	}
	return Location{Dir: dir}, nil
}

// String names the location for messages, without the DSN's password.
func (l Location) String() string {
	if l.Dir != "" {
		return l.Dir
	}
	u, err := url.Parse(l.DSN)
	if err != nil {
		return "the PostgreSQL database (unparsable URL)"
	}
	// The password may also be in the query (password=, sslpassword=).
	q := u.Query()
	for name := range q {
		if n := strings.ToLower(name); n == "password" || n == "sslpassword" {
			q.Set(name, "xxxxx")
		}
	}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

func (l Location) dbPath() string { return filepath.Join(l.Dir, "kms.db") }

// same reports whether l and o name the same data directory or the same
// DSN.
func (l Location) same(o Location) bool {
	if l.DSN != "" || o.DSN != "" {
		return l.DSN == o.DSN
	}
	a, errA := filepath.EvalSymlinks(l.Dir)
	b, errB := filepath.EvalSymlinks(o.Dir)
	if errA != nil || errB != nil {
		return l.Dir == o.Dir
	}
	return a == b
}

// openExisting opens the store at l, which must exist: a data directory
// without kms.db is an error, not a new store. A data directory and its
// kms.db must be ones the server would trust (package datadir).
func (l Location) openExisting(ctx context.Context) (store.Store, error) {
	if l.DSN != "" {
		return l.openPostgres(ctx)
	}
	if err := datadir.Check(l.Dir); err != nil {
		return nil, err
	}
	if err := datadir.CheckStore(l.dbPath()); err != nil {
		return nil, err
	}
	if _, err := os.Stat(l.dbPath()); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s holds no key store (no kms.db)", l.Dir)
		}
		return nil, err
	}
	return boltstore.Open(l.dbPath())
}

// create opens the store at l, creating the data directory (mode 0700) and
// its kms.db if needed. A data directory and its kms.db must be ones the
// server would trust (package datadir).
func (l Location) create(ctx context.Context) (store.Store, error) {
	if l.DSN != "" {
		return l.openPostgres(ctx)
	}
	if err := datadir.Prepare(l.Dir); err != nil {
		return nil, err
	}
	if err := datadir.CheckStore(l.dbPath()); err != nil {
		return nil, err
	}
	return boltstore.Open(l.dbPath())
}

func (l Location) openPostgres(ctx context.Context) (store.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	return pgstore.Open(ctx, l.DSN)
}

// OpenExisting opens the store at l, which must exist: a data directory
// without kms.db is an error, not a new store. A data directory and its
// kms.db must be ones the server would trust (package datadir).
func (l Location) OpenExisting(ctx context.Context) (store.Store, error) { return l.openExisting(ctx) }

// Create opens the store at l, creating the data directory (mode 0700) and
// its kms.db if needed. A data directory and its kms.db must be ones the
// server would trust (package datadir).
func (l Location) Create(ctx context.Context) (store.Store, error) { return l.create(ctx) }

// ExistingTrail names the audit trail already at l, or is "" when there
// is none: the path of a file of a data directory's trail (any name that
// begins with "audit": segments, digests, the public key, the high-water
// mark), or how many chains a database holds. Restores and migrations refuse such a destination
// alike: the servers started on the store they write would go on with
// another store's trail.
func ExistingTrail(ctx context.Context, l Location) (string, error) {
	if l.Dir != "" {
		entries, err := os.ReadDir(l.Dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "audit") {
				return filepath.Join(l.Dir, e.Name()), nil
			}
		}
	}
	if l.DSN == "" {
		return "", nil
	}
	pg, err := pgstore.Open(ctx, l.DSN)
	if err != nil {
		return "", err
	}
	defer pg.Close()
	var chains int
	if err := pg.Pool().QueryRow(ctx, `SELECT count(*) FROM kms_audit_chains`).Scan(&chains); err != nil {
		return "", err
	}
	if chains > 0 {
		return fmt.Sprintf("%d chains", chains), nil
	}
	return "", nil
}
