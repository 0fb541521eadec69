// Package backup is `kms backup` and `kms restore`: a snapshot of a key
// store (every record, still sealed under the root key) and of its audit
// trail, in one file with a version header and a SHA-256 checksum, and its
// restore into an empty store. docs/backup.md describes the file format.
package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Magic opens every backup file; the byte after it is the format version.
const Magic = "openkms-backup\n"

// Version is the format version this package writes and reads.
const Version = 1

// Entry kinds.
const (
	kindRecord    = 1    // a store record: name and value
	kindAuditFile = 2    // a file of a data directory's audit trail: name and content
	kindAuditRow  = 3    // a row of a PostgreSQL audit table: table name and the row as JSON
	kindEnd       = 0xff // followed by the entry count and the checksum
)

// Limits that keep a hostile file from making the parser allocate much
// more than the file's own size.
const (
	maxNameLen = 4096
)

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
var AuditTables = []string{"kms_audit_chains", "kms_audit_keys", "kms_audit_records", "kms_audit_digests"}

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
}

// Marshal encodes s as a backup file:
//
//	Magic ‖ version (1 byte)
//	entries: kind (1 byte) ‖ name length (4 bytes) ‖ name ‖ value length (8 bytes) ‖ value
//	kindEnd ‖ entry count (8 bytes) ‖ SHA-256 of every byte before it
//
// Integers are big-endian.
func Marshal(s *Snapshot) []byte {
	var b bytes.Buffer
	e := NewEncoder(&b)
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

// Parse decodes a backup file. It checks the checksum before it reads any
// entry, and returns no partial value: any defect is ErrFormat. Entries
// come by kind (records, audit files, audit rows), records in strictly
// ascending key order, so that Parse then Marshal gives back data exactly.
func Parse(data []byte) (*Snapshot, error) {
	head := len(Magic) + 1
	if len(data) < head || string(data[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("%w: no backup header", ErrFormat)
	}
	if v := data[len(Magic)]; v != Version {
		return nil, fmt.Errorf("%w: format version %d, this kms reads version %d", ErrFormat, v, Version)
	}
	if len(data) < head+1+8+sha256.Size {
		return nil, fmt.Errorf("%w: truncated", ErrFormat)
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("%w: checksum mismatch (the file is damaged or truncated)", ErrFormat)
	}
	s := &Snapshot{}
	rest := body[head:]
	n := uint64(0)
	last := byte(kindRecord)
	for {
		if len(rest) == 0 {
			return nil, fmt.Errorf("%w: no end marker", ErrFormat)
		}
		kind := rest[0]
		rest = rest[1:]
		if kind == kindEnd {
			if len(rest) != 8 || binary.BigEndian.Uint64(rest) != n {
				return nil, fmt.Errorf("%w: entry count does not match", ErrFormat)
			}
			return s, nil
		}
		var name, value []byte
		var ok bool
		if name, value, rest, ok = readEntry(rest); !ok {
			return nil, fmt.Errorf("%w: truncated entry", ErrFormat)
		}
		if kind < last {
			return nil, fmt.Errorf("%w: entries out of order", ErrFormat)
		}
		last = kind
		switch kind {
		case kindRecord:
			if len(name) == 0 ||
				len(s.Records) > 0 && bytes.Compare(s.Records[len(s.Records)-1].Key, name) >= 0 {
				return nil, fmt.Errorf("%w: records out of order", ErrFormat)
			}
			s.Records = append(s.Records, Record{Key: name, Value: value})
		case kindAuditFile:
			if !validFileName(string(name)) {
				return nil, fmt.Errorf("%w: bad audit file name %q", ErrFormat, name)
			}
			s.AuditFiles = append(s.AuditFiles, File{Name: string(name), Data: value})
		case kindAuditRow:
			if !slices.Contains(AuditTables, string(name)) || !json.Valid(value) {
				return nil, fmt.Errorf("%w: bad audit row", ErrFormat)
			}
			s.AuditRows = append(s.AuditRows, Row{Table: string(name), JSON: value})
		default:
			return nil, fmt.Errorf("%w: unknown entry kind %d", ErrFormat, kind)
		}
		n++
	}
}

func readEntry(b []byte) (name, value, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, nil, false
	}
	nl := binary.BigEndian.Uint32(b)
	b = b[4:]
	if nl > maxNameLen || uint64(len(b)) < uint64(nl)+8 {
		return nil, nil, nil, false
	}
	name, b = b[:nl], b[nl:]
	vl := binary.BigEndian.Uint64(b)
	b = b[8:]
	if uint64(len(b)) < vl {
		return nil, nil, nil, false
	}
	return name, b[:vl], b[vl:], true
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
