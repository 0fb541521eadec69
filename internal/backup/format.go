// Package backup is `kms backup` and `kms restore`: a snapshot of a key
// store (every record, still sealed under the root key) and of its audit
// trail, in one file with a version header, a SHA-256 checksum and an
// authentication tag under a key derived from the root key, and its
// restore into an empty store, which checks the tag before it writes
// anything. docs/backup.md describes the file format.
package backup

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Magic opens every backup file; the byte after it is the format version.
const Magic = "openkms-backup\n"

// Format versions. Version 2 is version 1 with an authentication tag
// after the checksum: HMAC-SHA-256, under the root key's BackupKey, of
// authLabel and the checksum. Version 3 is version 2 with the time the
// snapshot was taken after the version byte, under the checksum and so
// under the tag: a backup can be replaced by an older one of the same
// store, whose tag is as good, and a restore shows the time so that the
// operator can see that. Backups are written as version 3; a restore
// reads versions 2 and 3, and refuses version 1, which anyone can make,
// unless told to take it (RestoreOptions.AllowUnauthenticated).
const (
	VersionUnauthenticated = 1
	VersionUndated         = 2
	Version                = 3
)

// authLabel starts what the tag of a version 2 or 3 file is computed
// over. The two need no labels of their own: the version byte is under
// the checksum the tag covers.
const authLabel = "openkms backup v2\n"

// ErrUnauthenticated is returned for a version 1 file where an
// authenticated one is required.
var ErrUnauthenticated = errors.New("the backup is not authenticated (format version 1: anyone can write one)")

// tagFor is the authentication tag of a version 2 or 3 file whose
// checksum is sum, under key.
func tagFor(key, sum []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(authLabel))
	m.Write(sum)
	return m.Sum(nil)
}

// Entry kinds.
const (
	kindRecord    = 1    // a store record: name and value
	kindAuditFile = 2    // a file of a data directory's audit trail: name and content
	kindAuditRow  = 3    // a row of a PostgreSQL audit table: table name and the row as JSON
	kindEnd       = 0xff // followed by the entry count and the checksum
)

// Limits that keep a hostile file from making the parser allocate much
// more than the file's own size. A record's value and an audit row are
// held whole, and before the tag at the end of the file can tell whether
// the file is genuine, so their length is bounded too, not by the file's
// size: a sparse file claims gigabytes at no cost. The bound is far above
// what any holds: a store record is at most a few hundred KiB (a key
// record: its 32 KiB policy, escaped in JSON, its description and 50
// tags), an audit row one line of the trail, whose request parameters the
// server cuts to 64 KiB (internal/api/audit.go). An audit file is not
// held (Scan streams it) and has no such bound.
const (
	maxNameLen  = 4096
	maxValueLen = 16 << 20
)

// checkValueLen refuses a value of n bytes in an entry of kind that holds
// its value whole (a record or an audit row) and is longer than
// maxValueLen.
func checkValueLen(kind byte, n uint64) error {
	if (kind == kindRecord || kind == kindAuditRow) && n > maxValueLen {
		return fmt.Errorf("%w: an entry of %d bytes, too long for a record or an audit row (at most %d)", ErrFormat, n, maxValueLen)
	}
	return nil
}

// ErrFormat is returned for a file that is not a backup this version
// reads, is truncated, or fails its checksum.
var ErrFormat = errors.New("not a valid backup file")

// Record is one store record.
type Record struct {
	Key, Value []byte
}

// File is one file of the audit trail, by its name in the data directory.
type File struct {
	Name string
	Data []byte
}

// AuditTables are the PostgreSQL audit tables a backup holds rows of, in
// the order a restore inserts them.
var AuditTables = []string{"kms_audit_chains", "kms_audit_keys", "kms_audit_records", "kms_audit_digests", "kms_audit_registry"}

// Row is one row of a PostgreSQL audit table, as a JSON object of its
// columns.
type Row struct {
	Table string
	JSON  []byte
}

// Snapshot is what a backup file holds.
type Snapshot struct {
	// Records are the store's records in ascending key order.
	Records []Record
	// AuditFiles are the audit trail's files (a data directory's trail).
	AuditFiles []File
	// AuditRows are the rows of a PostgreSQL store's audit tables.
	AuditRows []Row
	// Created is when the snapshot was taken, by the clock of what took
	// it (version 3); zero in an older file.
	Created time.Time
	// Tag is the authentication tag of a version 2 or 3 file; nil for
	// version 1.
	Tag []byte
}

// Marshal encodes s as a backup file:
//
//	Magic ‖ version (1 byte)
//	version 3 only: when the snapshot was taken (8 bytes: Unix time in nanoseconds)
//	entries: kind (1 byte) ‖ name length (4 bytes) ‖ name ‖ value length (8 bytes) ‖ value
//	kindEnd ‖ entry count (8 bytes) ‖ SHA-256 of every byte before it
//	version 2 and 3 only: the authentication tag (32 bytes)
//
// Integers are big-endian. With s.Tag it writes that tag (as Parse read
// it), in version 3 if s.Created is set (a time from 1678 to 2262), else
// version 2; without s.Tag, version 1. MarshalAuthenticated makes a new
// tag.
func Marshal(s *Snapshot) []byte {
	return marshal(s, newEncoder)
}

// MarshalAuthenticated is Marshal that writes a new tag made with key (a
// root key's BackupKey): version 3 if s.Created is set, else version 2.
func MarshalAuthenticated(s *Snapshot, key []byte) []byte {
	return marshal(s, func(w io.Writer, _, _ []byte, created time.Time) *Encoder { return NewEncoder(w, key, created) })
}

func marshal(s *Snapshot, encoder func(w io.Writer, key, tag []byte, created time.Time) *Encoder) []byte {
	var b bytes.Buffer
	e := encoder(&b, nil, s.Tag, s.Created)
	for _, r := range s.Records {
		e.Record(r.Key, r.Value)
	}
	for _, f := range s.AuditFiles {
		e.AuditFile(f.Name, f.Data)
	}
	for _, r := range s.AuditRows {
		e.AuditRow(r.Table, r.JSON)
	}
	e.Close() // a bytes.Buffer does not fail
	return b.Bytes()
}

// Parse decodes a backup file. It returns no partial value: any defect,
// a checksum that does not match included, is ErrFormat. Entries come by
// kind (records, audit files, audit rows), records in strictly ascending
// key order, so that Parse then Marshal gives back data exactly.
func Parse(data []byte) (*Snapshot, error) {
	s := &Snapshot{}
	found, err := decode(bytes.NewReader(data), int64(len(data)), func(kind byte, name, value []byte) error {
		switch kind {
		case kindRecord:
			s.Records = append(s.Records, Record{Key: name, Value: value})
		case kindAuditFile:
			s.AuditFiles = append(s.AuditFiles, File{Name: string(name), Data: value})
		case kindAuditRow:
			s.AuditRows = append(s.AuditRows, Row{Table: string(name), JSON: value})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.Created, s.Tag = found.created, found.tag
	return s, nil
}

// Decode reads a backup file of size bytes from r as a stream and calls fn
// with each entry (kind is 1 for a record, 2 for an audit file, 3 for an
// audit row), in the order of the file. It checks everything Parse does,
// but the checksum only at the end: a caller that must not act on a
// damaged file decodes it twice, first to check it. An error from fn ends
// the decoding and is returned unchanged. name and value are new slices
// for each call; size bounds what a hostile length can make Decode
// allocate. An audit file's whole content is in memory at the call: Scan
// streams it instead.
func Decode(r io.Reader, size int64, fn func(kind byte, name, value []byte) error) error {
	_, err := decode(r, size, fn)
	return err
}

func decode(r io.Reader, size int64, fn func(kind byte, name, value []byte) error) (found, error) {
	return scan(r, size, scanOptions{}, func(e *Entry) error {
		value := e.Value
		if e.Kind == kindAuditFile {
			value = make([]byte, e.Size)
			if _, err := io.ReadFull(e.File, value); err != nil {
				return fmt.Errorf("%w: truncated entry", ErrFormat)
			}
		}
		return fn(e.Kind, e.Name, value)
	})
}

// Entry is one entry of a backup file as Scan hands it over.
type Entry struct {
	Kind byte   // 1 a record, 2 an audit file, 3 an audit row
	Name []byte // the record's key, the file's name or the row's table
	// Value is a record's value or an audit row's JSON; nil for a file.
	Value []byte
	// File reads an audit file's content, Size bytes, from the backup as
	// it goes: it fails with io.ErrUnexpectedEOF on a backup cut short
	// within them. Scan skips what the callback leaves unread.
	File io.Reader
	Size int64 // the length of the value or file
}

// Scan reads a backup file of size bytes from r as a stream and calls fn
// with each entry, in the order of the file, checking what Decode checks.
// It holds one record or audit row in memory at a time (at most 16 MiB:
// a longer one is refused before it is read), and no audit file: their
// content passes through e.File. An error from fn ends the scan and is
// returned unchanged. The checksum is checked only at the end,
// so a callback may have acted on an entry of a damaged file (see Decode).
// The tag of a version 2 or 3 file is read but not checked:
// ScanAuthenticated checks it.
func Scan(r io.Reader, size int64, fn func(e *Entry) error) error {
	_, err := scan(r, size, scanOptions{}, fn)
	return err
}

// ScanAuthenticated is Scan that also checks, at the end, that the file
// is version 2 or 3 and its tag was made with key (a root key's BackupKey):
// a version 1 file is ErrUnauthenticated, unless allowUnauthenticated;
// another tag is ErrFormat.
func ScanAuthenticated(r io.Reader, size int64, key []byte, allowUnauthenticated bool, fn func(e *Entry) error) error {
	_, err := scan(r, size, scanOptions{key: key, allowV1: allowUnauthenticated, authenticate: true}, fn)
	return err
}

type scanOptions struct {
	authenticate bool // check the tag with key
	key          []byte
	allowV1      bool // with authenticate, take a version 1 file
	// sum, if set, is the checksum the file must have: the one an earlier
	// reading of it authenticated. A file changed since, even into
	// another with a good tag, is refused.
	sum []byte
}

// found is what scan found in a file besides its entries.
type found struct {
	version byte
	created time.Time // when the snapshot was taken (version 3); zero before
	sum     []byte    // the checksum
	tag     []byte    // the tag of a version 2 or 3 file; nil for version 1
}

func scan(r io.Reader, size int64, o scanOptions, fn func(e *Entry) error) (found, error) {
	h := sha256.New()
	br := bufio.NewReaderSize(r, 64<<10)
	tr := io.TeeReader(br, h)
	read := func(n uint64) ([]byte, bool) {
		if n > uint64(size) {
			return nil, false
		}
		b := make([]byte, n)
		_, err := io.ReadFull(tr, b)
		return b, err == nil
	}
	head, ok := read(uint64(len(Magic) + 1))
	if !ok || string(head[:len(Magic)]) != Magic {
		return found{}, fmt.Errorf("%w: no backup header", ErrFormat)
	}
	version := head[len(Magic)]
	if version < VersionUnauthenticated || version > Version {
		return found{}, fmt.Errorf("%w: format version %d, this kms reads versions %d to %d", ErrFormat, version, VersionUnauthenticated, Version)
	}
	var created time.Time
	if version >= Version {
		b, ok := read(8)
		if !ok {
			return found{}, fmt.Errorf("%w: truncated", ErrFormat)
		}
		created = time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC()
	}
	var n uint64
	last := byte(kindRecord)
	var lastKey []byte
	for {
		kb, ok := read(1)
		if !ok {
			return found{}, fmt.Errorf("%w: truncated", ErrFormat)
		}
		kind := kb[0]
		if kind == kindEnd {
			count, ok := read(8)
			if !ok || binary.BigEndian.Uint64(count) != n {
				return found{}, fmt.Errorf("%w: entry count does not match", ErrFormat)
			}
			break
		}
		if kind < last {
			return found{}, fmt.Errorf("%w: entries out of order", ErrFormat)
		}
		last = kind
		nl, ok := read(4)
		if !ok || binary.BigEndian.Uint32(nl) > maxNameLen {
			return found{}, fmt.Errorf("%w: truncated entry", ErrFormat)
		}
		name, ok := read(uint64(binary.BigEndian.Uint32(nl)))
		if !ok {
			return found{}, fmt.Errorf("%w: truncated entry", ErrFormat)
		}
		vl, ok := read(8)
		if !ok {
			return found{}, fmt.Errorf("%w: truncated entry", ErrFormat)
		}
		vn := binary.BigEndian.Uint64(vl)
		if err := checkValueLen(kind, vn); err != nil {
			return found{}, err
		}
		if vn > uint64(size) {
			return found{}, fmt.Errorf("%w: truncated entry", ErrFormat)
		}
		e := &Entry{Kind: kind, Name: name, Size: int64(vn)}
		var file *exactReader
		switch kind {
		case kindRecord, kindAuditRow:
			if e.Value, ok = read(vn); !ok {
				return found{}, fmt.Errorf("%w: truncated entry", ErrFormat)
			}
		case kindAuditFile:
			file = &exactReader{r: tr, left: e.Size}
			e.File = file
		}
		switch kind {
		case kindRecord:
			if len(name) == 0 || lastKey != nil && bytes.Compare(lastKey, name) >= 0 {
				return found{}, fmt.Errorf("%w: records out of order", ErrFormat)
			}
			lastKey = name
		case kindAuditFile:
			if !isAuditFile(string(name)) {
				return found{}, fmt.Errorf("%w: bad audit file name %q", ErrFormat, name)
			}
		case kindAuditRow:
			if !slices.Contains(AuditTables, string(name)) || !json.Valid(e.Value) {
				return found{}, fmt.Errorf("%w: bad audit row", ErrFormat)
			}
		default:
			return found{}, fmt.Errorf("%w: unknown entry kind %d", ErrFormat, kind)
		}
		if err := fn(e); err != nil {
			return found{}, err
		}
		if file != nil {
			if _, err := io.Copy(io.Discard, file); err != nil {
				return found{}, fmt.Errorf("%w: truncated entry", ErrFormat)
			}
		}
		n++
	}
	want := h.Sum(nil)
	sum := make([]byte, sha256.Size)
	if _, err := io.ReadFull(br, sum); err != nil || !bytes.Equal(sum, want) {
		return found{}, fmt.Errorf("%w: checksum mismatch (the file is damaged or truncated)", ErrFormat)
	}
	var tag []byte
	if version >= VersionUndated {
		tag = make([]byte, sha256.Size)
		if _, err := io.ReadFull(br, tag); err != nil {
			return found{}, fmt.Errorf("%w: no authentication tag after the checksum (the file is truncated)", ErrFormat)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return found{}, fmt.Errorf("%w: data after the checksum", ErrFormat)
	}
	switch {
	case o.sum != nil && !bytes.Equal(sum, o.sum):
		return found{}, fmt.Errorf("%w: the file changed since it was first read and authenticated", ErrFormat)
	case !o.authenticate:
	case tag == nil && !o.allowV1:
		return found{}, ErrUnauthenticated
	case tag != nil && !hmac.Equal(tag, tagFor(o.key, sum)):
		return found{}, fmt.Errorf("%w: its authentication tag does not match: it was not written under this root key, or was changed since", ErrFormat)
	}
	return found{version: version, created: created, sum: sum, tag: tag}, nil
}

// exactReader reads the next left bytes of r, and fails with
// io.ErrUnexpectedEOF if r ends before them.
type exactReader struct {
	r    io.Reader
	left int64
}

func (x *exactReader) Read(p []byte) (int, error) {
	if x.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > x.left {
		p = p[:x.left]
	}
	n, err := x.r.Read(p)
	x.left -= int64(n)
	if err == io.EOF && x.left > 0 {
		err = io.ErrUnexpectedEOF
	} else if err == io.EOF {
		err = nil
	}
	return n, err
}

// validFileName accepts a plain file name: no directory, no dot files, so
// that a restore writes only inside the data directory.
func validFileName(name string) bool {
	if name == "" || len(name) > 255 || name[0] == '.' {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
