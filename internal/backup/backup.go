package backup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/datadir"
	"github.com/openkms/kms/internal/keys"
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

// stream writes a snapshot of the key store at loc and its audit trail to
// w, authenticated under the store's root key (rootFor).
//
// A PostgreSQL store's records and audit tables are read in one
// REPEATABLE READ transaction, while the cluster serves. A data directory
// that no server runs on is read in one read transaction, and its audit
// files after, holding the store's lock so that no server starts
// meanwhile (a running server is asked instead: Write).
func stream(ctx context.Context, loc migrate.Location, w io.Writer, rootFor RootFor) error {
	st, err := loc.OpenExisting(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	root, err := rootFor(ctx, st)
	if err != nil {
		return err
	}
	// Taken before the read transaction begins: the snapshot holds at
	// least every change made before the time it records.
	enc := NewEncoder(w, root.BackupKey(), time.Now())
	rc := newRecordCheck(root)
	record := func(k, v []byte) error {
		if err := rc.add(k, v); err != nil {
			return unrestorable(err)
		}
		return enc.Record(k, v)
	}
	if loc.DSN != "" {
		if err := streamPostgres(ctx, loc.DSN, enc, record); err != nil {
			return err
		}
	} else {
		if err := streamStore(ctx, st, enc, record); err != nil {
			return err
		}
		if err := streamAuditFiles(ctx, loc.Dir, false, enc); err != nil {
			return err
		}
	}
	if enc.Records == 0 {
		return fmt.Errorf("%s holds no records", loc)
	}
	if _, err := rc.result(); err != nil {
		return unrestorable(err)
	}
	return enc.Close()
}

// RootFor returns the root key of the key store st, which authenticates
// a backup of it (keys.RootKey.BackupKey).
type RootFor func(ctx context.Context, st store.Store) (*keys.RootKey, error)

// unrestorable is the error of a backup not written because a restore
// would refuse it.
func unrestorable(err error) error {
	return fmt.Errorf("%w: a restore would refuse this backup, so none is written (docs/backup.md)", err)
}

// streamStore writes every record of st to enc, by record, in one read
// transaction.
func streamStore(ctx context.Context, st store.Store, enc *Encoder, record func(k, v []byte) error) error {
	return st.View(ctx, func(tx store.Tx) error {
		if enc.Records > 0 {
			return errors.New("the store asked to retry a read transaction during a backup")
		}
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			return true, record(k, v)
		})
	})
}

// streamAuditFiles writes the audit trail files of dir to enc: first
// the others in name order (audit-digests.log and audit-head.json among
// them), then the log's segments in their order, read after, so that the
// segments hold every record the digests name. With live set, a server
// may be appending to the logs: the part of a line after the last newline
// is left out.
func streamAuditFiles(ctx context.Context, dir string, live bool, enc *Encoder) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !isAuditFile(e.Name()) {
			continue
		}
		if _, seg := audit.ParseSegmentName(e.Name()); seg {
			continue
		}
		if err := streamAuditFile(ctx, dir, e.Name(), live, enc); err != nil {
			return err
		}
	}
	// Listed after the digests were read: a segment started since is
	// read too.
	segs, err := audit.Segments(dir)
	if err != nil {
		return err
	}
	for _, s := range segs {
		if err := streamAuditFile(ctx, dir, s.Name(), live, enc); err != nil {
			return err
		}
	}
	return nil
}

// streamAuditFile copies an audit file into the backup as it reads it:
// the bytes it holds when opened, of a trail segment only those before
// the zeros the server writes ahead of its records (audit.SegmentData),
// and with live set, of a log, up to its last newline.
func streamAuditFile(ctx context.Context, dir, name string, live bool, enc *Encoder) error {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	n := fi.Size()
	if _, seg := audit.ParseSegmentName(name); seg {
		if n, err = audit.SegmentDataLength(f); err != nil {
			return err
		}
	}
	if live && strings.HasSuffix(name, ".log") {
		if n, err = completeLines(f, n); err != nil {
			return err
		}
	}
	return enc.AuditFileFrom(name, ctxReader{ctx, io.NewSectionReader(f, 0, n)}, n)
}

// ctxReader reads from r until ctx is done: an interrupted backup stops
// in the middle of a file of any size.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// completeLines returns the length of the first size bytes of f up to and
// with their last newline, reading back from the end.
func completeLines(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// Write takes a snapshot of w and writes it to path (mode 0600) through a
// temporary file beside it, renamed into place once complete and synced,
// and reports to out. A data directory's running server is asked for the
// snapshot through its backup socket, and authenticates it; otherwise
// rootFor gives the store's root key to authenticate it with. A path in
// the data directory itself is refused (datadir.RefuseOutputIn): named
// kms.db or audit.log, the backup would take the place of what it backs
// up, named root.key that of the key it is read with. So is a path in
// the directory a --storage that is not a URL names, which is read as a
// data directory.
func Write(ctx context.Context, w Where, path string, rootFor RootFor, out io.Writer) (err error) {
	loc, err := w.location()
	if err != nil {
		return err
	}
	for _, dir := range []string{w.DataDir, loc.Dir} {
		if err := datadir.RefuseOutputIn(dir, path, "-o"); err != nil {
			return err
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(tmp, 1<<20)
	served := false
	if loc.DSN == "" {
		if served, err = fromServer(ctx, loc.Dir, bw); err != nil {
			return err
		}
	}
	if !served {
		if err := stream(ctx, loc, bw, rootFor); err != nil {
			return fmt.Errorf("read %s: %w", loc, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	// Check what was written, read back from the file.
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	c, err := Check(bufio.NewReader(tmp))
	if err != nil {
		return fmt.Errorf("the backup written: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	taken := "" // a server of an older version writes no time
	if !c.Created.IsZero() {
		taken = ", a snapshot taken at " + c.Created.Format(time.RFC3339)
	}
	fmt.Fprintf(out, "Backed up %d records, %d audit trail files and %d audit table rows to %s (%d bytes)%s.\n",
		c.Records, c.AuditFiles, c.AuditRows, path, c.Bytes, taken)
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
