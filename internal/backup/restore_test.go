package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/authstore"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/outbox"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/store/pgstore"
	"github.com/openkms/kms/internal/store/pgtest"
)

// A backup that names an audit file twice is refused before anything is
// written: the second copy could only fail once the records were in.
func TestRestoreRefusesAnAuditFileTwice(t *testing.T) {
	root := testRoot(t)
	snap := &Snapshot{
		Records:    []Record{{Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)}},
		AuditFiles: []File{{Name: "audit.log", Data: []byte("a\n")}, {Name: "audit.log", Data: []byte("b\n")}},
	}
	file := filepath.Join(t.TempDir(), "b.kmsbak")
	if err := os.WriteFile(file, MarshalAuthenticated(snap, root.BackupKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	err := Restore(context.Background(), file, Where{DataDir: dir}, root, RestoreOptions{}, new(bytes.Buffer))
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "audit.log is in it twice") {
		t.Fatalf("Restore = %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused restore wrote into the target: %v", err)
	}
	// The same backup without the second copy restores.
	snap.AuditFiles = snap.AuditFiles[:1]
	os.WriteFile(file, MarshalAuthenticated(snap, root.BackupKey()), 0o600)
	if err := Restore(context.Background(), file, Where{DataDir: dir}, root, RestoreOptions{}, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
}

func testRoot(t *testing.T) *keys.RootKey {
	t.Helper()
	raw := make([]byte, keys.RootKeySize)
	rand.Read(raw)
	root, err := keys.NewRootKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// A backup of a store whose records are authenticated (internal/authstore)
// restores only if every record in it is: one without its tag is refused,
// though the backup itself is authentic, and nothing is written.
func TestRestoreChecksRecordTags(t *testing.T) {
	root := testRoot(t)
	name := []byte("key/us-east-1/k1")
	for _, tc := range []struct {
		what  string
		value []byte
		ok    bool
	}{
		{"its tag", authstore.NewKey(root).Seal(name, []byte(`{"v":1}`)), true},
		{"no tag", []byte(`{"v":1}`), false},
		{"another root key's tag", authstore.NewKey(testRoot(t)).Seal(name, []byte(`{"v":1}`)), false},
	} {
		snap := &Snapshot{Records: []Record{{Key: name, Value: tc.value}, {Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)}}}
		file := filepath.Join(t.TempDir(), "b.kmsbak")
		if err := os.WriteFile(file, MarshalAuthenticated(snap, root.BackupKey()), 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "restored")
		err := Restore(context.Background(), file, Where{DataDir: dir}, root, RestoreOptions{}, new(bytes.Buffer))
		if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, authstore.ErrUnauthenticated) {
			t.Errorf("a record with %s: %v", tc.what, err)
		}
		if _, statErr := os.Stat(filepath.Join(dir, "kms.db")); !tc.ok && statErr == nil {
			t.Errorf("a record with %s: kms.db was written", tc.what)
		}
	}
}

// A restore takes only a backup whose tag was made under its root key:
// one edited since it was written (its checksum made again, as anyone
// can) is refused before anything is written, and so is one rewritten as
// format version 1, which has no tag, unless the restore is told to take
// it.
func TestRestoreAuthenticates(t *testing.T) {
	root := testRoot(t)
	accessKey := []byte("iam/accesskey/AKIAEXAMPLE")
	snap := &Snapshot{Records: []Record{
		{Key: accessKey, Value: authstore.NewKey(root).Seal(accessKey, []byte(`{"v":1,"id":"AKIAEXAMPLE","account":"111122223333","userName":"alice"}`))},
		{Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)},
	}}
	good := MarshalAuthenticated(snap, root.BackupKey())
	restore := func(t *testing.T, data []byte, opts RestoreOptions) (string, error) {
		t.Helper()
		file := filepath.Join(t.TempDir(), "b.kmsbak")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "restored")
		return dir, Restore(context.Background(), file, Where{DataDir: dir}, root, opts, new(bytes.Buffer))
	}
	if _, err := restore(t, good, RestoreOptions{}); err != nil {
		t.Fatalf("the backup as written: %v", err)
	}
	edited, err := Parse(good)
	if err != nil || edited.Tag == nil {
		t.Fatalf("Parse: %v, tag %x", err, edited.Tag)
	}
	edited.Records[0].Value = []byte(`{"v":1,"id":"AKIAEXAMPLE","account":"111122223333"}`) // alice's key made the root's
	// An old backup made to look new, its checksum made again.
	dated := *snap
	dated.Created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	redated, err := Parse(MarshalAuthenticated(&dated, root.BackupKey()))
	if err != nil {
		t.Fatal(err)
	}
	redated.Created = redated.Created.AddDate(1, 0, 0)
	for name, tc := range map[string]struct {
		data []byte
		opts RestoreOptions
		want string
	}{
		"edited, its checksum made again": {Marshal(edited), RestoreOptions{}, "authentication tag does not match"},
		"edited, allowed unauthenticated": {Marshal(edited), RestoreOptions{AllowUnauthenticated: true}, "authentication tag does not match"},
		"edited, made version 1":          {Marshal(&Snapshot{Records: edited.Records}), RestoreOptions{}, "--allow-unauthenticated"},
		"its tag cut off":                 {good[:len(good)-32], RestoreOptions{}, "no authentication tag"},
		"under another root key":          {MarshalAuthenticated(snap, testRoot(t).BackupKey()), RestoreOptions{}, "authentication tag does not match"},
		"its time changed":                {Marshal(redated), RestoreOptions{}, "authentication tag does not match"},
	} {
		t.Run(name, func(t *testing.T) {
			dir, err := restore(t, tc.data, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore = %v, want an error saying %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the refused restore wrote into the target: %v", err)
			}
		})
	}
	if _, err := restore(t, Marshal(&Snapshot{Records: snap.Records}), RestoreOptions{AllowUnauthenticated: true}); err != nil {
		t.Fatalf("a version 1 backup with --allow-unauthenticated: %v", err)
	}
}

// rewrittenFile is a backup file that is rewritten in place, through its
// path, when it is rewound for the reading numbered at (1 the first), as
// someone else who can write it might do while a restore reads it. With
// atEnd, it calls atEnd when a reading reaches the end of the file.
type rewrittenFile struct {
	*os.File
	at      int
	data    []byte
	rewinds int
	atEnd   func(reading int)
}

func (f *rewrittenFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	if err == io.EOF && f.atEnd != nil {
		f.atEnd(f.rewinds)
	}
	return n, err
}

func (f *rewrittenFile) Seek(offset int64, whence int) (int64, error) {
	if offset == 0 && whence == io.SeekStart {
		f.rewinds++
		if f.rewinds == f.at {
			if err := os.WriteFile(f.Name(), f.data, 0o600); err != nil {
				return 0, err
			}
		}
	}
	return f.File.Seek(offset, whence)
}

// A restore reads its backup once per step, and the file may change
// between the readings: the one that checks the tag and the ones that
// write. Whatever a later reading finds other than what the first one
// authenticated (an edit whose checksum was made again, or another
// backup with a good tag of its own) fails the restore, and no record or
// audit file of it is left in the target.
func TestRestoreRefusesAFileChangedBetweenReadings(t *testing.T) {
	root := testRoot(t)
	check := authstore.CheckRecord(root)
	snap := func(log string) *Snapshot {
		return &Snapshot{
			Records:    []Record{{Key: keys.RootCheckRecord, Value: check}},
			AuditFiles: []File{{Name: "audit.log", Data: []byte(log)}},
		}
	}
	good := MarshalAuthenticated(snap("genuine\n"), root.BackupKey())
	edited, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	edited.AuditFiles[0].Data = []byte("forged\n")
	for name, forged := range map[string][]byte{
		"edited, its checksum made again":     Marshal(edited),
		"another backup under the same key":   MarshalAuthenticated(snap("forged\n"), root.BackupKey()),
		"the same bytes written again (good)": good,
	} {
		for _, at := range []int{2, 3} {
			t.Run(fmt.Sprintf("%s before reading %d", name, at), func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "b.kmsbak")
				if err := os.WriteFile(path, good, 0o600); err != nil {
					t.Fatal(err)
				}
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				rf := &rewrittenFile{File: f, at: at, data: forged}
				dir := filepath.Join(t.TempDir(), "restored")
				err = restoreFrom(context.Background(), path, rf, Where{DataDir: dir}, root, RestoreOptions{}, new(bytes.Buffer))
				if rf.rewinds < at {
					t.Fatalf("the restore read the file %d times, not %d", rf.rewinds, at)
				}
				log, _ := os.ReadFile(filepath.Join(dir, "audit.log"))
				if bytes.Equal(forged, good) {
					if err != nil || string(log) != "genuine\n" {
						t.Fatalf("Restore = %v, audit.log %q", err, log)
					}
					return
				}
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("Restore = %v, want ErrFormat; audit.log %q", err, log)
				}
				left, _ := os.ReadDir(dir)
				for _, e := range left {
					if e.Name() != "kms.db" {
						t.Errorf("the failed restore left %s in the target", e.Name())
					}
				}
				st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				st.View(context.Background(), func(tx store.Tx) error {
					return tx.Scan(nil, nil, func(k, _ []byte) (bool, error) {
						t.Errorf("the failed restore left the record %s in the target", k)
						return true, nil
					})
				})
			})
		}
	}
}

// The audit files of a backup take their names only once the reading
// that copied them has reached the end of the file and checked its tag:
// a restore killed before then leaves no audit file holding what the tag
// has not vouched for.
func TestRestoreNamesAuditFilesOnceAuthenticated(t *testing.T) {
	root := testRoot(t)
	snap := &Snapshot{
		Records: []Record{{Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)}},
		// More than one read of the file's buffer, so that the end of the
		// file is read after the audit file was copied.
		AuditFiles: []File{{Name: "audit.log", Data: bytes.Repeat([]byte("a line\n"), 64<<10)}},
	}
	path := filepath.Join(t.TempDir(), "b.kmsbak")
	if err := os.WriteFile(path, MarshalAuthenticated(snap, root.BackupKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := filepath.Join(t.TempDir(), "restored")
	ends := 0
	rf := &rewrittenFile{File: f, atEnd: func(int) {
		ends++
		if _, err := os.Stat(filepath.Join(dir, "audit.log")); err == nil {
			t.Errorf("audit.log has its name at the end of reading %d, before the tag is checked", ends)
		}
	}}
	if err := restoreFrom(context.Background(), path, rf, Where{DataDir: dir}, root, RestoreOptions{}, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if ends != 3 {
		t.Fatalf("the restore reached the end of the file %d times, want 3", ends)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "audit.log")); !bytes.Equal(b, snap.AuditFiles[0].Data) {
		t.Fatalf("audit.log holds %d bytes, want %d", len(b), len(snap.AuditFiles[0].Data))
	}
}

// A restore says, before it writes anything, when the snapshot was taken:
// an older backup of the same store has as good a tag as the latest, and
// the time, which the tag covers, is how the operator sees which one it
// is. A backup of format version 2, which records no time, still
// restores, and the restore says that it cannot tell.
func TestRestoreSaysWhenTheBackupWasTaken(t *testing.T) {
	root := testRoot(t)
	snap := &Snapshot{Records: []Record{{Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)}}}
	restore := func(t *testing.T, data []byte) string {
		t.Helper()
		file := filepath.Join(t.TempDir(), "b.kmsbak")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := Restore(context.Background(), file, Where{DataDir: filepath.Join(t.TempDir(), "restored")}, root, RestoreOptions{}, &out); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	dated := *snap
	dated.Created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if out := restore(t, MarshalAuthenticated(&dated, root.BackupKey())); !strings.HasPrefix(out, "The backup was taken at 2026-01-02T03:04:05Z (") {
		t.Errorf("restoring a backup of version 3, it says:\n%s", out)
	}
	if out := restore(t, MarshalAuthenticated(snap, root.BackupKey())); !strings.HasPrefix(out, "The backup does not say when it was taken (format version 2)") {
		t.Errorf("restoring a backup of version 2, it says:\n%s", out)
	}
}

func TestTaken(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		ago  time.Duration
		want string
	}{
		{-time.Hour, "2026-03-01T13:00:00Z (later than this machine's clock)"},
		{30 * time.Second, "2026-03-01T11:59:30Z (less than a minute ago)"},
		{90 * time.Second, "2026-03-01T11:58:30Z (1 minute ago)"},
		{47 * time.Hour, "2026-02-27T13:00:00Z (47 hours ago)"},
		{50 * 24 * time.Hour, "2026-01-10T12:00:00Z (50 days ago)"},
	} {
		got := taken(found{version: Version, created: now.Add(-c.ago)}, now)
		if !strings.Contains(got, "taken at "+c.want+":") {
			t.Errorf("%v ago: %q", c.ago, got)
		}
	}
}

// A restore does not go into a data directory that holds an audit trail,
// whichever of its files is there: servers started on the restored store
// would go on with another store's trail. Nothing is written.
func TestRestoreRefusesADirectoryWithATrail(t *testing.T) {
	root := testRoot(t)
	snap := &Snapshot{Records: []Record{{Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)}}}
	file := filepath.Join(t.TempDir(), "b.kmsbak")
	if err := os.WriteFile(file, MarshalAuthenticated(snap, root.BackupKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"audit.log", "audit-000002.log", "audit-digests.log", "audit.pub", "audit-head.json"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		err := Restore(context.Background(), file, Where{DataDir: dir}, root, RestoreOptions{}, new(bytes.Buffer))
		if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "already holds an audit trail ("+filepath.Join(dir, name)+")") {
			t.Errorf("restore into a directory holding %s: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "kms.db")); err == nil {
			t.Errorf("the refused restore into a directory holding %s made kms.db", name)
		}
	}
}

// A restore writes its records a batch at a time, so that a large store
// is not held in memory whole; until the store is whole and verified it
// is marked unfinished (store.UnfinishedCopyRecord), which no server
// starts on. A restore that fails after batches were written (the file
// changed before the reading that writes them) leaves the target empty,
// and one that succeeds leaves every record and no mark.
func TestRestoreInBatches(t *testing.T) {
	root := testRoot(t)
	ak := authstore.NewKey(root)
	records := []Record{{Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)}}
	n := 2*restoreBatchRecords + restoreBatchRecords/2
	for i := range n {
		name := []byte(fmt.Sprintf("key/us-east-1/k%05d", i))
		records = append(records, Record{Key: name, Value: ak.Seal(name, []byte(`{"v":1}`))})
	}
	slices.SortFunc(records, func(a, b Record) int { return bytes.Compare(a.Key, b.Key) })
	snap := &Snapshot{Records: records, AuditFiles: []File{{Name: "audit.log", Data: []byte("genuine\n")}}}
	good := MarshalAuthenticated(snap, root.BackupKey())
	snap.AuditFiles[0].Data = []byte("forged\n")
	forged := MarshalAuthenticated(snap, root.BackupKey())

	for _, tc := range []struct {
		name string
		data []byte
	}{{"changed before its records are written", forged}, {"as written", good}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "b.kmsbak")
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			dir := filepath.Join(t.TempDir(), "restored")
			err = restoreFrom(context.Background(), path, &rewrittenFile{File: f, at: 2, data: tc.data}, Where{DataDir: dir}, root, RestoreOptions{}, new(bytes.Buffer))
			ok := bytes.Equal(tc.data, good)
			if ok != (err == nil) {
				t.Fatalf("Restore = %v", err)
			}
			st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			held := 0
			st.View(context.Background(), func(tx store.Tx) error {
				return tx.Scan(nil, nil, func(_, _ []byte) (bool, error) { held++; return true, nil })
			})
			if want := map[bool]int{true: len(records), false: 0}[ok]; held != want {
				t.Errorf("the target holds %d records, want %d", held, want)
			}
			if err := st.View(context.Background(), store.CheckCopyFinished); err != nil {
				t.Errorf("after the restore: %v", err)
			}
		})
	}
}

// What names places in a backup's trail stays with that trail: restored
// into a store of the same kind, which gets the trail, it stays; into the
// other kind, whose servers keep their trail elsewhere, it is left out.
// The outbox entries: a server would find none of their records and
// write each again. The high-water mark of a data directory's trail
// (audit.MarkRecord), restored into a data directory from a backup whose
// trail is in PostgreSQL rows (a cluster once restored from a data
// directory's backup), as kms migrate leaves it out: kept, it named a
// record of a trail the directory does not have, and the server refused
// to start on the restored directory, saying that its trail was cut off.
func TestRestoreKeepsWhatNamesTheTrailOnlyWithIt(t *testing.T) {
	root := testRoot(t)
	name := outbox.Key("e-1")
	entry := Record{Key: name, Value: authstore.NewKey(root).Seal(name, []byte(`{"chain":"c","after":0,"committed":"2026-12-07T06:00:00Z","record":{}}`))}
	mark := Record{Key: []byte(audit.MarkRecord), Value: []byte(`{"seq":7,"hash":"x"}`)}
	check := Record{Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)}
	records := []Record{check, entry, mark}
	slices.SortFunc(records, func(a, b Record) int { return bytes.Compare(a.Key, b.Key) })
	for _, tc := range []struct {
		what string
		snap *Snapshot
		kept bool
	}{
		{"a data directory's", &Snapshot{Records: records, AuditFiles: []File{{Name: "audit.log", Data: []byte("a\n")}}}, true},
		{"a cluster's", &Snapshot{Records: records, AuditRows: []Row{{Table: "kms_audit_chains", JSON: []byte(`{"chain":"c"}`)}}}, false},
	} {
		file := filepath.Join(t.TempDir(), "b.kmsbak")
		if err := os.WriteFile(file, MarshalAuthenticated(tc.snap, root.BackupKey()), 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "restored")
		var out bytes.Buffer
		if err := Restore(context.Background(), file, Where{DataDir: dir}, root, RestoreOptions{}, &out); err != nil {
			t.Fatalf("%s backup: %v", tc.what, err)
		}
		st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			what string
			key  []byte
		}{{"outbox entry", name}, {"the trail's mark", mark.Key}} {
			err := st.View(context.Background(), func(tx store.Tx) error { _, err := tx.Get(r.key); return err })
			if kept := err == nil; kept != tc.kept {
				t.Errorf("%s backup restored into a data directory: %s kept %v, want %v (%v)", tc.what, r.what, kept, tc.kept, err)
			}
		}
		st.Close()
		if said := strings.Contains(out.String(), "1 audit outbox records were not restored"); said == tc.kept {
			t.Errorf("%s backup: the summary says so %v:\n%s", tc.what, said, out.String())
		}
	}
}

// A data directory's backup restored into PostgreSQL: its trail goes
// into the data directory given beside, which the cluster's servers do
// not read, so its outbox entries are left out.
func TestRestoreIntoPostgresLeavesOutboxEntriesOut(t *testing.T) {
	root := testRoot(t)
	name := outbox.Key("e-1")
	records := []Record{
		{Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)},
		{Key: name, Value: authstore.NewKey(root).Seal(name, []byte(`{"chain":"","after":0,"committed":"2026-12-07T06:00:00Z","record":{}}`))},
	}
	slices.SortFunc(records, func(a, b Record) int { return bytes.Compare(a.Key, b.Key) })
	snap := &Snapshot{Records: records, AuditFiles: []File{{Name: "audit.log", Data: []byte("a\n")}}}
	file := filepath.Join(t.TempDir(), "b.kmsbak")
	if err := os.WriteFile(file, MarshalAuthenticated(snap, root.BackupKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	dsn := pgtest.Start(t)
	var out bytes.Buffer
	where := Where{DataDir: filepath.Join(t.TempDir(), "restored"), Storage: dsn}
	if err := Restore(context.Background(), file, where, root, RestoreOptions{}, &out); err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = st.View(context.Background(), func(tx store.Tx) error { _, err := tx.Get(name); return err })
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the outbox entry in PostgreSQL: %v, want it left out", err)
	}
	if !strings.Contains(out.String(), "1 audit outbox records were not restored") {
		t.Errorf("the summary does not say so:\n%s", out.String())
	}
}

// A store that holds part of a copy (store.UnfinishedCopyRecord: a
// restore or migration into it was killed) gets no backup, as no server
// starts on it, and a backup holding that mark is refused by a restore
// before it writes anything, saying why: restored, the part would have
// looked whole, or the restore would have failed only after writing,
// with the store's records miscounted.
func TestBackupAndRestoreRefuseAnUnfinishedCopy(t *testing.T) {
	root := testRoot(t)
	snap := &Snapshot{Records: []Record{
		{Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)},
		{Key: store.UnfinishedCopyRecord, Value: []byte("kms restore from elsewhere has not finished")},
	}}
	slices.SortFunc(snap.Records, func(a, b Record) int { return bytes.Compare(a.Key, b.Key) })
	file := filepath.Join(t.TempDir(), "b.kmsbak")
	if err := os.WriteFile(file, MarshalAuthenticated(snap, root.BackupKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	err := Restore(context.Background(), file, Where{DataDir: dir}, root, RestoreOptions{}, new(bytes.Buffer))
	if !errors.Is(err, store.ErrUnfinishedCopy) {
		t.Fatalf("restore of a backup holding %s: %v", store.UnfinishedCopyRecord, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kms.db")); err == nil {
		t.Fatal("the refused restore made kms.db")
	}

	// A data directory left holding part of a copy.
	src := filepath.Join(t.TempDir(), "half")
	if err := os.Mkdir(src, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(src, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(tx store.Tx) error {
		for _, r := range snap.Records {
			if err := tx.Put(r.Key, r.Value); err != nil {
				return err
			}
		}
		return nil
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	rootFor := func(context.Context, store.Store) (*keys.RootKey, error) { return root, nil }
	out := filepath.Join(t.TempDir(), "half.kmsbak")
	err = Write(context.Background(), Where{DataDir: src}, out, rootFor, new(bytes.Buffer))
	if !errors.Is(err, store.ErrUnfinishedCopy) {
		t.Fatalf("backup of a store holding %s: %v", store.UnfinishedCopyRecord, err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("the refused backup was written")
	}
}

// A --storage that is not a URL is refused by a restore, as by the
// server, before anything is written. Read as a data directory, it was
// restored into without its audit files, keeping the store's
// high-water mark of that trail and its outbox entries (a server on the
// directory would find its trail cut off), and into a directory holding
// another store's trail.
func TestRestoreRefusesStorageNamingADirectory(t *testing.T) {
	root := testRoot(t)
	snap := &Snapshot{
		Records:    []Record{{Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)}},
		AuditFiles: []File{{Name: "audit.log", Data: []byte("a\n")}},
	}
	file := filepath.Join(t.TempDir(), "b.kmsbak")
	if err := os.WriteFile(file, MarshalAuthenticated(snap, root.BackupKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	withTrail := t.TempDir()
	if err := os.WriteFile(filepath.Join(withTrail, "audit.log"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{withTrail, filepath.Join(t.TempDir(), "new")} {
		err := Restore(context.Background(), file, Where{Storage: dir}, root, RestoreOptions{}, new(bytes.Buffer))
		if !errors.Is(err, ErrStorageNotURL) {
			t.Errorf("restore into --storage %s: %v", dir, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "kms.db")); err == nil {
			t.Errorf("the refused restore into --storage %s made kms.db", dir)
		}
	}
	dir := filepath.Join(t.TempDir(), "restored")
	if err := Restore(context.Background(), file, Where{DataDir: dir}, root, RestoreOptions{}, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "audit.log")); err != nil || string(got) != "a\n" {
		t.Errorf("the restored directory's audit.log: %q, %v", got, err)
	}
}

// A restore into a target left holding part of a copy (a restore or
// migration into it killed) is refused as one into a target that is not
// empty, and says that it holds an unfinished copy to empty, not only
// that it holds records.
func TestRestoreIntoAnUnfinishedCopySaysSo(t *testing.T) {
	root := testRoot(t)
	snap := &Snapshot{Records: []Record{{Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)}}}
	file := filepath.Join(t.TempDir(), "b.kmsbak")
	if err := os.WriteFile(file, MarshalAuthenticated(snap, root.BackupKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "half")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Put([]byte("iam/user/111122223333/a"), []byte("{}")); err != nil {
			return err
		}
		return tx.Put(store.UnfinishedCopyRecord, []byte("kms restore from b.kmsbak has not finished"))
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	err = Restore(context.Background(), file, Where{DataDir: dir}, root, RestoreOptions{}, new(bytes.Buffer))
	if !errors.Is(err, ErrNotEmpty) || !errors.Is(err, store.ErrUnfinishedCopy) {
		t.Errorf("restore into a target holding part of a copy: %v", err)
	}
}

// A restore into PostgreSQL commits the backup's audit rows before its
// last transaction; one that fails there removes them with the records,
// so that the target is empty, as the error says, and a restore again
// is not refused as "already holds an audit trail".
func TestFailedRestoreIntoPostgresRemovesItsAuditRows(t *testing.T) {
	root := testRoot(t)
	snap := &Snapshot{
		Records: []Record{{Key: keys.RootCheckRecord, Value: authstore.CheckRecord(root)}},
		AuditRows: []Row{
			{Table: "kms_audit_chains", JSON: []byte(`{"chain":"c","started_at":"2026-12-07T06:00:00Z","host":"h"}`)},
			{Table: "kms_audit_records", JSON: []byte(`{"chain":"c","seq":1,"line":"{}"}`)},
		},
	}
	file := filepath.Join(t.TempDir(), "b.kmsbak")
	if err := os.WriteFile(file, MarshalAuthenticated(snap, root.BackupKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	dsn := pgtest.Start(t)
	ctx := context.Background()
	failed := errors.New("injected failure before the last transaction")
	err := Restore(ctx, file, Where{Storage: dsn}, root, RestoreOptions{beforeFinish: func() error { return failed }}, new(bytes.Buffer))
	if !errors.Is(err, failed) || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("the failed restore: %v", err)
	}
	pg, err := pgstore.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range append([]string{"kms_records"}, AuditTables...) {
		var n int
		if err := pg.Pool().QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s after the failed restore: %d rows (%v), want none", table, n, err)
		}
	}
	pg.Close()
	var out bytes.Buffer
	if err := Restore(ctx, file, Where{Storage: dsn}, root, RestoreOptions{}, &out); err != nil {
		t.Fatalf("the restore again: %v", err)
	}
	if !strings.Contains(out.String(), "Restored 2 audit table rows") {
		t.Errorf("the restore again says:\n%s", out.String())
	}
}
