package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/openkms/kms/internal/atomicfile"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/migrate"
	"github.com/openkms/kms/internal/rekey"
	"github.com/openkms/kms/internal/store"
)

// ErrNotEmpty is returned when the restore target already holds records or
// audit trail files.
var ErrNotEmpty = errors.New("the target is not empty")

// Restore writes the backup file at path into the empty store at w, and
// a data directory's audit trail files into w.DataDir. Before writing
// anything it checks the file's checksum and opens every sealed value in
// it with root; after writing, it reads the store again and checks that it
// holds exactly the backup's records and that every sealed value opens.
// The records are written in one transaction: an interrupted restore
// leaves the store empty.
func Restore(ctx context.Context, path string, w Where, root *keys.RootKey, out io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s, err := Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	sealed, err := checkSealed(s, root)
	if err != nil {
		return err
	}
	loc, err := w.location()
	if err != nil {
		return err
	}
	if err := refuseAuditFiles(w.DataDir); err != nil {
		return err
	}
	if loc.DSN != "" {
		if empty, err := postgresAuditEmpty(ctx, loc.DSN); err != nil {
			return err
		} else if !empty {
			return fmt.Errorf("%w: %s already holds an audit trail", ErrNotEmpty, loc)
		}
	}
	st, err := loc.Create(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	empty := true
	err = st.View(ctx, func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(_, _ []byte) (bool, error) { empty = false; return false, nil })
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", loc, err)
	}
	if !empty {
		return fmt.Errorf("%w: %s already holds records; restore only into a new data directory or an empty database", ErrNotEmpty, loc)
	}
	err = st.Update(ctx, func(tx store.Tx) error {
		for _, r := range s.Records {
			if err := tx.Put(r.Key, r.Value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", loc, err)
	}
	if err := verify(ctx, st, s, root); err != nil {
		return fmt.Errorf("%s: %w (empty it before trying again)", loc, err)
	}
	restored, err := writeAuditFiles(w.DataDir, s.AuditFiles)
	if err != nil {
		return fmt.Errorf("%w (the records are restored; remove them and the audit files before trying again)", err)
	}
	if loc.DSN != "" {
		if err := restorePostgresAudit(ctx, loc.DSN, s.AuditRows); err != nil {
			return fmt.Errorf("%w (the records are restored; empty the database before trying again)", err)
		}
	}
	fmt.Fprintf(out, "Restored %d records into %s; all %d sealed values open with the root key.\n", len(s.Records), loc, sealed)
	switch {
	case restored > 0:
		fmt.Fprintf(out, "Restored %d audit trail files into %s.\n", restored, w.DataDir)
	case len(s.AuditFiles) > 0:
		fmt.Fprintf(out, "The backup's %d audit trail files were not restored: give --data-dir to put them in a data directory.\n", len(s.AuditFiles))
	}
	switch {
	case loc.DSN != "" && len(s.AuditRows) > 0:
		fmt.Fprintf(out, "Restored %d audit table rows into %s.\n", len(s.AuditRows), loc)
	case len(s.AuditRows) > 0:
		fmt.Fprintf(out, "The backup's %d audit table rows (a PostgreSQL trail) were not restored: a data directory keeps its trail in files; restore into PostgreSQL to keep them.\n", len(s.AuditRows))
	}
	return nil
}

// checkSealed opens every sealed value of s with root, and makes sure s is
// a key store (it holds the root key check record).
func checkSealed(s *Snapshot, root *keys.RootKey) (int, error) {
	n, found := 0, false
	for _, r := range s.Records {
		found = found || bytes.Equal(r.Key, keys.RootCheckRecord)
		_, c, err := rekey.Rewrap(r.Key, r.Value, root, nil)
		if err != nil {
			return 0, fmt.Errorf("the backup does not open with this root key: %w", err)
		}
		n += c
	}
	if !found {
		return 0, fmt.Errorf("%w: it holds no %s record", ErrFormat, keys.RootCheckRecord)
	}
	return n, nil
}

// verify reads st again and compares it with s, record for record (by
// count and digest), and opens every sealed value in it.
func verify(ctx context.Context, st store.Store, s *Snapshot, root *keys.RootKey) error {
	n, got, err := migrate.Digest(ctx, st, 1000)
	if err != nil {
		return err
	}
	if want := digest(s.Records); n != len(s.Records) || got != want {
		return fmt.Errorf("after the restore the store holds %d records (SHA-256 %x), the backup %d (SHA-256 %x)", n, got, len(s.Records), want)
	}
	_, err = rekey.Check(ctx, st, root)
	return err
}

// digest is migrate.Digest over records held in memory.
func digest(records []Record) [sha256.Size]byte {
	h := sha256.New()
	for _, r := range records {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(r.Key))))
		h.Write(r.Key)
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(r.Value))))
		h.Write(r.Value)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func refuseAuditFiles(dir string) error {
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if isAuditFile(e.Name()) {
			return fmt.Errorf("%w: %s already holds an audit trail (%s)", ErrNotEmpty, dir, e.Name())
		}
	}
	return nil
}

func writeAuditFiles(dir string, files []File) (int, error) {
	if dir == "" {
		return 0, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	for _, f := range files {
		created, err := atomicfile.CreateOnce(filepath.Join(dir, f.Name), f.Data, 0o600)
		if err != nil {
			return 0, err
		}
		if !created {
			return 0, fmt.Errorf("%w: %s appeared in %s during the restore", ErrNotEmpty, f.Name, dir)
		}
	}
	return len(files), nil
}
