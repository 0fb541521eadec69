package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/openkms/kms/internal/atomicfile"
	"github.com/openkms/kms/internal/migrate"
	"github.com/openkms/kms/internal/store"
)

// Where names a key store as the server does: Storage (a PostgreSQL URL)
// if set, else the data directory's kms.db. DataDir also holds a data
// directory's audit trail files.
type Where struct {
	DataDir string
	Storage string
}

func (w Where) location() (migrate.Location, error) {
	switch {
	case w.Storage != "":
		return migrate.ParseLocation(w.Storage)
	case w.DataDir != "":
		return migrate.ParseLocation(w.DataDir)
	}
	return migrate.Location{}, errors.New("give --data-dir DIR or --storage postgres://...")
}

// isAuditFile reports whether name, a file of a data directory, belongs to
// the audit trail (audit.log, audit-digests.log, audit.pub,
// audit-head.json and any later segment files).
func isAuditFile(name string) bool {
	return strings.HasPrefix(name, "audit") && validFileName(name)
}

// Take reads a snapshot of the key store at w and its audit trail.
//
// A PostgreSQL store's records and audit tables are read in one
// REPEATABLE READ transaction, while the cluster serves. A data
// directory's snapshot comes from its running server through the backup
// socket (LiveSnapshot); with none running, Take reads the store in one
// read transaction and the audit files after, holding the store's lock so
// that no server starts meanwhile.
func Take(ctx context.Context, w Where) (*Snapshot, error) {
	loc, err := w.location()
	if err != nil {
		return nil, err
	}
	var s *Snapshot
	if loc.DSN != "" {
		s, err = takePostgres(ctx, loc.DSN)
	} else {
		s, err = takeDataDir(ctx, loc)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", loc, err)
	}
	if len(s.Records) == 0 {
		return nil, fmt.Errorf("%s holds no records", loc)
	}
	return s, nil
}

func takeDataDir(ctx context.Context, loc migrate.Location) (*Snapshot, error) {
	if s, ok, err := fromServer(ctx, loc.Dir); ok {
		return s, err
	}
	st, err := loc.OpenExisting(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	s := &Snapshot{}
	err = st.View(ctx, func(tx store.Tx) error {
		s.Records = s.Records[:0]
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			s.Records = append(s.Records, Record{Key: bytes.Clone(k), Value: bytes.Clone(v)})
			return true, nil
		})
	})
	if err != nil {
		return nil, err
	}
	s.AuditFiles, err = readAuditFiles(loc.Dir, false)
	return s, err
}

// readAuditFiles reads the audit trail files of dir in name order, which
// puts audit-digests.log and audit-head.json before audit.log. With live
// set, a server may be appending to the logs: the part of a line after the
// last newline is left out.
func readAuditFiles(dir string, live bool) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []File
	for _, e := range entries {
		if !e.Type().IsRegular() || !isAuditFile(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if live && strings.HasSuffix(e.Name(), ".log") {
			data = data[:bytes.LastIndexByte(data, '\n')+1]
		}
		files = append(files, File{Name: e.Name(), Data: data})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

// Write takes a snapshot of w and writes it to path (mode 0600), whole or
// not at all, reporting to out.
func Write(ctx context.Context, w Where, path string, out io.Writer) error {
	s, err := Take(ctx, w)
	if err != nil {
		return err
	}
	data := Marshal(s)
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(out, "Backed up %d records, %d audit trail files and %d audit table rows to %s (%d bytes).\n",
		len(s.Records), len(s.AuditFiles), len(s.AuditRows), path, len(data))
	fmt.Fprintln(out, "Key material in it is sealed under the root key: keep the root key apart from the backup.")
	return nil
}

// OpenExisting opens the key store at w, which must exist, and names it.
func OpenExisting(ctx context.Context, w Where) (store.Store, migrate.Location, error) {
	loc, err := w.location()
	if err != nil {
		return nil, loc, err
	}
	st, err := loc.OpenExisting(ctx)
	return st, loc, err
}
