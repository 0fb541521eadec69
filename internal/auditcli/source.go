package auditcli

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"

	"github.com/openkms/kms/internal/audit"
)

// A source is where a trail is read from: the files of a data directory
// (dirSource), a PostgreSQL database (pgSource) or a running server's API
// (endpointSource).
type source interface {
	// verify checks every chain the source holds, its digests with pub,
	// or, if pub is nil, with the key the source keeps (none: digests
	// unchecked). The error is for a failure to read, not a break.
	verify(ctx context.Context, pub ed25519.PublicKey) ([]audit.Report, error)
	// next calls fn with the records written since the previous call (on
	// the first, all of them) that keep keeps (all of them if keep is
	// nil), in the source's order. A source that holds records to order
	// them holds only those kept.
	next(ctx context.Context, keep func(*audit.Record) bool, fn func(record) error) error
	// chains reports whether the source holds several chains, which the
	// table then shows in a CHAIN column.
	chains() bool
	close() error
}

// record is one record as a source read it.
type record struct {
	chain string // "" in a data directory (or a server that keeps one)
	rec   *audit.Record
	event json.RawMessage // the event's bytes as stored
}

// openSource opens the source o names.
func openSource(ctx context.Context, o Options) (source, error) {
	switch {
	case o.Storage != "" && o.DataDir != "":
		return nil, errors.New("give --data-dir or --storage, not both")
	case o.Live && (o.Endpoint != "" || o.Storage != ""):
		return nil, errors.New("--live goes with --data-dir")
	case o.Endpoint != "" && (o.DataDir != "" || o.Storage != ""):
		return nil, errors.New("give --endpoint alone, without --data-dir or --storage")
	case o.Endpoint != "":
		return openEndpoint(ctx, o)
	case (len(o.ArchiveDirs) > 0 || o.Archive) && o.DataDir == "":
		return nil, errors.New("--archive-dir and --archive go with --data-dir")
	case o.Profile != "" || o.Region != "":
		return nil, errors.New("--profile and --region go with --endpoint")
	case o.Storage != "":
		return openPostgres(ctx, o.Storage)
	case o.DataDir != "":
		return openDir(o.DataDir, o.ArchiveDirs, o.Archive, o.Live)
	}
	return nil, errors.New("give --data-dir, --storage or --endpoint")
}

// keepOnly returns fn called only with the records keep keeps (fn itself
// if keep is nil).
func keepOnly(keep func(*audit.Record) bool, fn func(record) error) func(record) error {
	if keep == nil {
		return fn
	}
	return func(r record) error {
		if !keep(r.rec) {
			return nil
		}
		return fn(r)
	}
}
