package backup

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"time"
)

// Encoder writes a backup file entry by entry, so that a snapshot goes to
// its file without being held in memory. Entries must come in the order
// Parse requires: records in ascending key order, then audit files, then
// audit rows. The first error sticks: later calls return it and write
// nothing.
type Encoder struct {
	w   io.Writer
	h   hash.Hash
	err error
	key []byte // makes the tag of a version 2 or 3 file
	tag []byte // the tag to write as it is (Marshal)
	// Counts are the entries written so far, by kind.
	Records, AuditFiles, AuditRows int
}

// NewEncoder returns an Encoder that writes a backup file to w: with key
// (a root key's BackupKey), version 3, authenticated under it and saying
// that the snapshot was taken at created (a file as an older kms wrote
// it, version 2, if created is zero); without key, version 1, which a
// restore refuses unless told to take it.
func NewEncoder(w io.Writer, key []byte, created time.Time) *Encoder {
	return newEncoder(w, key, nil, created)
}

// newEncoder is NewEncoder that may be given the tag to write instead of
// a key to make it with.
func newEncoder(w io.Writer, key, tag []byte, created time.Time) *Encoder {
	e := &Encoder{h: sha256.New(), key: key, tag: tag}
	e.w = io.MultiWriter(w, e.h)
	switch {
	case key == nil && tag == nil:
		e.write([]byte(Magic), []byte{VersionUnauthenticated})
	case created.IsZero():
		e.write([]byte(Magic), []byte{VersionUndated})
	default:
		e.write([]byte(Magic), []byte{Version}, binary.BigEndian.AppendUint64(nil, uint64(created.UnixNano())))
	}
	return e
}

func (e *Encoder) write(parts ...[]byte) error {
	for _, p := range parts {
		if e.err != nil {
			return e.err
		}
		_, e.err = e.w.Write(p)
	}
	return e.err
}

func (e *Encoder) entry(kind byte, name, value []byte) error {
	if err := e.head(kind, name, int64(len(value))); err != nil {
		return err
	}
	return e.write(value)
}

// head writes an entry's kind, its name and the length n of its value.
func (e *Encoder) head(kind byte, name []byte, n int64) error {
	return e.write([]byte{kind}, binary.BigEndian.AppendUint32(nil, uint32(len(name))), name,
		binary.BigEndian.AppendUint64(nil, uint64(n)))
}

// Record writes a store record.
func (e *Encoder) Record(key, value []byte) error {
	e.Records++
	return e.entry(kindRecord, key, value)
}

// AuditFile writes a file of a data directory's audit trail.
func (e *Encoder) AuditFile(name string, data []byte) error {
	e.AuditFiles++
	return e.entry(kindAuditFile, []byte(name), data)
}

// AuditFileFrom writes a file of a data directory's audit trail, its n
// bytes read from r as they are written: a segment or the digests of a
// long-lived trail are too large to hold.
func (e *Encoder) AuditFileFrom(name string, r io.Reader, n int64) error {
	e.AuditFiles++
	if err := e.head(kindAuditFile, []byte(name), n); err != nil {
		return err
	}
	if _, err := io.CopyN(e.w, r, n); err != nil {
		e.err = fmt.Errorf("audit file %s: %w", name, err)
	}
	return e.err
}

// AuditRow writes a row of a PostgreSQL audit table, as JSON.
func (e *Encoder) AuditRow(table string, json []byte) error {
	e.AuditRows++
	return e.entry(kindAuditRow, []byte(table), json)
}

// Close writes the end marker, the entry count, the checksum and, in a
// version 2 or 3 file, the tag. It does not close the underlying Writer.
func (e *Encoder) Close() error {
	n := uint64(e.Records + e.AuditFiles + e.AuditRows)
	if err := e.write([]byte{kindEnd}, binary.BigEndian.AppendUint64(nil, n)); err != nil {
		return err
	}
	sum := e.h.Sum(nil)
	_, e.err = e.w.Write(sum) // hashing the checksum too does no harm: the hash is done
	if e.err == nil && (e.key != nil || e.tag != nil) {
		tag := e.tag
		if tag == nil {
			tag = tagFor(e.key, sum)
		}
		_, e.err = e.w.Write(tag)
	}
	return e.err
}
