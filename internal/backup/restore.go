package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openkms/kms/internal/atomicfile"
	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/datadir"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/migrate"
	"github.com/openkms/kms/internal/outbox"
	"github.com/openkms/kms/internal/rekey"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/pgstore"
)

// ErrNotEmpty is returned when the restore target already holds records or
// audit trail files.
var ErrNotEmpty = errors.New("the target is not empty")

// ErrStorageNotURL is returned by a restore whose Where.Storage is not a
// PostgreSQL URL.
var ErrStorageNotURL = errors.New("--storage must be a PostgreSQL URL (postgres://user@host:port/database): restore into a data directory with --data-dir")

// Restore writes the backup file at path into the empty store at w, and
// a data directory's audit trail files into w.DataDir. Before writing
// anything it reads the whole file, checking its framing, its checksum and
// its authentication tag under root (a version 1 file, which has none,
// only with opts.AllowUnauthenticated), and opening every sealed value in
// it with root; after writing, it reads the
// store again and checks that it holds exactly the backup's records and
// that every sealed value opens. The records are written in one
// transaction, and the audit rows in another: a restore that fails or is
// interrupted after the records were written removes them, and the audit
// files it wrote, so that the target is left as empty as it was. The file is
// read as a stream, once per step, holding one record or audit row at a
// time in memory; audit files are copied from it to disk (Scan). Every
// reading is authenticated, and must find the file the first one did
// (readings). Before writing, it reports to out when the snapshot was
// taken (taken).
func Restore(ctx context.Context, path string, w Where, root *keys.RootKey, opts RestoreOptions, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return restoreFrom(ctx, path, f, w, root, opts, out)
}

// backupFile is the open backup file a restore reads, once per step.
type backupFile interface {
	io.ReadSeeker
	Stat() (fs.FileInfo, error)
}

// restoreFrom is Restore reading the backup file from f, named path in
// what it reports.
func restoreFrom(ctx context.Context, path string, f backupFile, w Where, root *keys.RootKey, opts RestoreOptions, out io.Writer) error {
	// A --storage that is not a URL would be read as a data directory
	// (migrate.ParseLocation) that is not one to the rest of the restore:
	// its audit files would be left out, and a trail already in it not
	// refused. The server takes only a URL there too.
	if w.Storage != "" {
		if loc, err := w.location(); err == nil && loc.DSN == "" {
			return fmt.Errorf("%w: %s", ErrStorageNotURL, w.Storage)
		}
	}
	// A data directory another user made or may write is refused as the
	// server refuses it, before anything is read or written: they could
	// swap what is restored into it.
	if w.DataDir != "" {
		if err := datadir.Check(w.DataDir); err != nil {
			return err
		}
	}
	file := &readings{f: f, key: root.BackupKey(), allowV1: opts.AllowUnauthenticated}
	scan := file.scan
	// The first reading checks the tag before anything is written: nothing
	// is written from a file that was not written under this root key, or
	// was changed since.
	want, err := checkSealed(scan, root)
	if errors.Is(err, ErrUnauthenticated) {
		return fmt.Errorf("%s: %w; restore it only if you know where it has been, with --allow-unauthenticated", path, err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Fprintln(out, taken(*file.first, time.Now()))
	loc, err := w.location()
	if err != nil {
		return err
	}
	if name, err := migrate.ExistingTrail(ctx, migrate.Location{Dir: w.DataDir, DSN: loc.DSN}); err != nil {
		return err
	} else if name != "" {
		return fmt.Errorf("%w: %s already holds an audit trail (%s)", ErrNotEmpty, loc, name)
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
		// Left by a restore or migration killed midway: say so, as
		// what to do is to empty it and restore again.
		if err := st.View(ctx, store.CheckCopyFinished); errors.Is(err, store.ErrUnfinishedCopy) {
			return fmt.Errorf("%w: %s: %w", ErrNotEmpty, loc, err)
		}
		return fmt.Errorf("%w: %s already holds records; restore only into a new data directory or an empty database", ErrNotEmpty, loc)
	}
	var written []string // the audit files this restore wrote
	// Until the store is whole, verified and beside its trail, it says
	// so, and no server starts on it: the records are written in batches
	// as the file is read, before the reading's end checks the file did
	// not change since the first (readings), and a restore killed midway
	// leaves part of them.
	err = st.Update(ctx, func(tx store.Tx) error {
		return tx.Put(store.UnfinishedCopyRecord, []byte("kms restore from "+path+" has not finished"))
	})
	if err == nil {
		err = putRecords(ctx, st, scan)
	}
	if err == nil {
		if err = verify(ctx, st, want, root); err != nil {
			err = fmt.Errorf("%s: %w", loc, err)
		}
	}
	var files, rows int
	rowsIn := "" // the database this restore's audit rows were committed to
	if err == nil {
		files, rows, err = restoreAudit(ctx, scan, w.DataDir, loc, &written)
		if err == nil && rows > 0 && loc.DSN != "" {
			rowsIn = loc.DSN
		}
	}
	// The outbox entries (internal/outbox) name places in the backup's
	// trail: restored across store kinds, that trail is not the one the
	// target's servers write and read, and they would write every
	// entry's record again. So does the high-water mark of a data
	// directory's trail (audit.MarkRecord): a data directory's server
	// would refuse to start, its trail cut off before the mark; kms
	// migrate leaves it out alike.
	crossKind := files > 0 && loc.DSN != "" || rows > 0 && loc.DSN == ""
	outboxLeft := 0
	if err == nil && opts.beforeFinish != nil {
		err = opts.beforeFinish()
	}
	if err == nil {
		err = st.Update(ctx, func(tx store.Tx) error {
			outboxLeft = 0
			if crossKind {
				var err error
				if outboxLeft, err = outbox.DropAll(tx); err != nil {
					return err
				}
				if err := tx.Delete([]byte(audit.MarkRecord)); err != nil {
					return err
				}
			}
			return tx.Delete(store.UnfinishedCopyRecord)
		})
	}
	if err != nil {
		// The target held nothing: what it holds now is this restore's.
		if uerr := undo(context.WithoutCancel(ctx), st, w.DataDir, written, rowsIn); uerr != nil {
			return fmt.Errorf("%w (removing what was restored failed too: %v; empty the target before trying again)", err, uerr)
		}
		return fmt.Errorf("%w (what was restored is removed: %s is empty)", err, loc)
	}
	fmt.Fprintf(out, "Restored %d records into %s; all %d sealed values open with the root key.\n", want.records, loc, want.sealed)
	if !want.authenticated {
		fmt.Fprintf(out, "Its records were written by an earlier version, not authenticated under the root key yet: %s\n", migrate.AuthenticateAdvice(loc))
	}
	switch {
	case files > 0 && w.DataDir != "":
		fmt.Fprintf(out, "Restored %d audit trail files into %s.\n", files, w.DataDir)
	case files > 0:
		fmt.Fprintf(out, "The backup's %d audit trail files were not restored: give --data-dir to put them in a data directory.\n", files)
	}
	if outboxLeft > 0 {
		fmt.Fprintf(out, "The backup's %d audit outbox records were not restored: they name places in its trail, which does not come along into another kind of store (docs/audit.md, \"Recovered records\").\n", outboxLeft)
	}
	switch {
	case rows > 0 && loc.DSN != "":
		fmt.Fprintf(out, "Restored %d audit table rows into %s.\n", rows, loc)
	case rows > 0:
		fmt.Fprintf(out, "The backup's %d audit table rows (a PostgreSQL trail) were not restored: a data directory keeps its trail in files; restore into PostgreSQL to keep them.\n", rows)
	}
	return nil
}

// Bounds of one transaction of a restore's records: a store restored
// in one would hold every record in memory until it commits.
const (
	restoreBatchRecords = 1000
	restoreBatchBytes   = 8 << 20
)

// putRecords writes the records scan reads into st, a transaction per
// batch of at most restoreBatchRecords records or restoreBatchBytes.
func putRecords(ctx context.Context, st store.Store, scan func(func(e *Entry) error) error) error {
	var batch []*Entry
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := st.Update(ctx, func(tx store.Tx) error {
			for _, e := range batch {
				if err := tx.Put(e.Name, e.Value); err != nil {
					return err
				}
			}
			return nil
		})
		clear(batch)
		batch, size = batch[:0], 0
		return err
	}
	err := scan(func(e *Entry) error {
		if e.Kind != kindRecord {
			return nil
		}
		batch = append(batch, e)
		size += len(e.Name) + len(e.Value)
		if len(batch) >= restoreBatchRecords || size >= restoreBatchBytes {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// readings reads a backup file once per step of a restore, from its
// start. The file is not held, in memory or copied: a backup is as large
// as the audit trail, gigabytes. So someone who can write the file (a
// shared mount) could rewrite it in place between two readings, or
// during one, and a check made by the first reading alone would let the
// others write what it never checked: an audit file or row that is not
// re-checked afterwards as the records are (verify). Every reading
// therefore checks the tag, and must find the checksum the first reading
// authenticated: what a step wrote is then, byte for byte, what the first
// reading checked (the checksum is SHA-256 of every byte read), or the
// step fails at the end of its reading, before it commits its records,
// commits its audit rows or gives its audit files their names. Checking
// that the file kept its size and modification time would trust what
// the file's writer sets; a private copy would need the backup's size
// again in disk space.
type readings struct {
	f       backupFile
	key     []byte // the root key's BackupKey
	allowV1 bool   // take a version 1 file, which has no tag
	first   *found // what the first reading authenticated
}

// scan reads the whole file, as ScanAuthenticated does, calling fn with
// each entry.
func (r *readings) scan(fn func(e *Entry) error) error {
	fi, err := r.f.Stat()
	if err != nil {
		return err
	}
	if _, err := r.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	o := scanOptions{authenticate: true, key: r.key, allowV1: r.allowV1}
	if r.first != nil {
		o.sum = r.first.sum
	}
	found, err := scan(r.f, fi.Size(), o, fn)
	if err == nil && r.first == nil {
		r.first = &found
	}
	return err
}

// taken says when the backup was taken, as a restore reports it before it
// writes anything. An older backup of the same store has as good a tag
// as the latest (a restore cannot tell that another one was taken since,
// and its target is empty, with no time of its own to compare), so
// whoever can replace a backup can have deleted keys, revoked access keys
// and retired grants come back: the time, under the tag, is what lets the
// operator see that the backup is not the one meant.
func taken(f found, now time.Time) string {
	if f.created.IsZero() {
		return fmt.Sprintf("The backup does not say when it was taken (format version %d): make sure it is the one you mean to restore.", f.version)
	}
	ago := func(n time.Duration, unit string) string {
		if n != 1 {
			unit += "s"
		}
		return fmt.Sprintf("%d %s ago", n, unit)
	}
	var when string
	switch d := now.Sub(f.created); {
	case d < 0:
		when = "later than this machine's clock"
	case d < time.Minute:
		when = "less than a minute ago"
	case d < time.Hour:
		when = ago(d/time.Minute, "minute")
	case d < 48*time.Hour:
		when = ago(d/time.Hour, "hour")
	default:
		when = ago(d/(24*time.Hour), "day")
	}
	return fmt.Sprintf("The backup was taken at %s (%s): make sure it is the one you mean to restore.", f.created.Format(time.RFC3339), when)
}

// RestoreOptions are the choices of a restore.
type RestoreOptions struct {
	// AllowUnauthenticated takes a version 1 file, which has no
	// authentication tag: whoever could write it could have changed the
	// policies, grants and access keys in it.
	AllowUnauthenticated bool

	// beforeFinish, a test's, runs before the last transaction of a
	// restore, and fails the restore there if it returns an error.
	beforeFinish func() error
}

// contents is what the first reading of a backup found: the number of
// records and their digest (as migrate.Digest), and of sealed values.
type contents struct {
	records, sealed int
	digest          [sha256.Size]byte
	// authenticated: its records carry their tags (internal/authstore).
	authenticated bool
}

// checkSealed reads the whole backup and checks its records as
// recordCheck does.
func checkSealed(scan func(func(e *Entry) error) error, root *keys.RootKey) (contents, error) {
	rc := newRecordCheck(root)
	files := make(map[string]bool)
	err := scan(func(e *Entry) error {
		if e.Kind == kindAuditFile {
			if files[string(e.Name)] {
				return fmt.Errorf("%w: the audit file %s is in it twice", ErrFormat, e.Name)
			}
			files[string(e.Name)] = true
		}
		if e.Kind != kindRecord {
			return nil
		}
		return rc.add(e.Name, e.Value)
	})
	if err != nil {
		return contents{}, err
	}
	return rc.result()
}

// verify reads st again and compares it with the backup, record for record
// (by count and digest), and opens every sealed value in it.
func verify(ctx context.Context, st store.Store, want contents, root *keys.RootKey) error {
	n, got, err := migrate.Digest(ctx, st, 1000)
	if err != nil {
		return err
	}
	if n != want.records || got != want.digest {
		return fmt.Errorf("after the restore the store holds %d records (SHA-256 %x), the backup %d (SHA-256 %x)", n, got, want.records, want.digest)
	}
	_, err = rekey.Check(ctx, st, root)
	return err
}

// restoreAudit writes the backup's audit files into dir (if not "") and
// its audit rows into loc's database (if it is one), and reports how many
// of each the backup holds.
func restoreAudit(ctx context.Context, scan func(func(e *Entry) error) error, dir string, loc migrate.Location, written *[]string) (files, rows int, err error) {
	if dir != "" {
		if err := datadir.Prepare(dir); err != nil {
			return 0, 0, err
		}
	}
	var pgTx pgx.Tx
	if loc.DSN != "" {
		pg, err := pgstore.Open(ctx, loc.DSN)
		if err != nil {
			return 0, 0, err
		}
		defer pg.Close()
		if pgTx, err = pg.Pool().Begin(ctx); err != nil {
			return 0, 0, err
		}
		defer pgTx.Rollback(ctx)
	}
	// The files wait under temporary names until the reading has ended
	// and found the file authenticated: until then no audit file holds
	// what the tag has not vouched for, even if the restore is killed.
	type stagedFile struct {
		name string
		file *atomicfile.Staged
	}
	var staged []stagedFile
	defer func() {
		for _, s := range staged {
			s.file.Remove()
		}
	}()
	err = scan(func(e *Entry) error {
		switch {
		case e.Kind == kindAuditFile:
			files++
			if dir == "" {
				return nil
			}
			s, err := atomicfile.Stage(filepath.Join(dir, string(e.Name)), e.File, 0o600)
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: truncated entry", ErrFormat)
			}
			if err == nil {
				staged = append(staged, stagedFile{string(e.Name), s})
			}
			return err
		case e.Kind == kindAuditRow:
			rows++
			if pgTx == nil {
				return nil
			}
			return insertAuditRow(ctx, pgTx, string(e.Name), e.Value)
		}
		return nil
	})
	if err != nil {
		return files, rows, err
	}
	for _, s := range staged {
		created, err := s.file.Link()
		if created {
			*written = append(*written, s.name)
		}
		if err == nil && !created {
			err = fmt.Errorf("%w: %s appeared in %s during the restore", ErrNotEmpty, s.name, dir)
		}
		if err != nil {
			return files, rows, err
		}
	}
	if pgTx != nil {
		err = pgTx.Commit(ctx)
	}
	return files, rows, err
}

// undo removes every record of st, the audit files named in written
// from dir, and, if rowsIn names a PostgreSQL database, every row of its
// audit tables (a restore commits them before its last transaction): what
// a failed restore wrote into a target that was empty, trail and all.
func undo(ctx context.Context, st store.Store, dir string, written []string, rowsIn string) error {
	var errs []error
	for _, name := range written {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if rowsIn != "" {
		errs = append(errs, deleteAuditRows(ctx, rowsIn))
	}
	err := st.Update(ctx, func(tx store.Tx) error {
		var names [][]byte
		err := tx.Scan(nil, nil, func(k, _ []byte) (bool, error) {
			names = append(names, bytes.Clone(k))
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, k := range names {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// ReadRecord returns the value of the record name in the backup file at
// path, or nil when it holds none: how a restore finds the wrapped root
// key (keys.WrappedRootRecord) of a store whose root key is in a token.
func ReadRecord(path string, name []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var found []byte
	err = Scan(f, fi.Size(), func(e *Entry) error {
		if e.Kind == kindRecord && bytes.Equal(e.Name, name) {
			found = e.Value
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return found, nil
}
