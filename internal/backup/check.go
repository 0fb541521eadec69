package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Counts are what Check found in a backup file.
type Counts struct {
	Records, AuditFiles, AuditRows int
	Bytes                          int64
	// Created is when the snapshot was taken (version 3); zero before.
	Created time.Time
}

// Check reads a backup file from r as a stream, without holding its
// entries in memory, and checks its header, the framing of its entries
// (a record or an audit row no longer than a restore takes), the entry
// count and the checksum, and that a version 2 or 3 file has its tag
// (which only a restore, with the root key, can check). It does not check
// what Parse checks of the entries themselves (their order, file names,
// JSON).
func Check(r io.Reader) (Counts, error) {
	var c Counts
	h := sha256.New()
	cr := &countingReader{r: r}
	tr := io.TeeReader(cr, h)
	head := make([]byte, len(Magic)+1)
	if _, err := io.ReadFull(tr, head); err != nil || string(head[:len(Magic)]) != Magic {
		return c, fmt.Errorf("%w: no backup header", ErrFormat)
	}
	version := head[len(Magic)]
	if version < VersionUnauthenticated || version > Version {
		return c, fmt.Errorf("%w: format version %d, this kms reads versions %d to %d", ErrFormat, version, VersionUnauthenticated, Version)
	}
	var n uint64
	var buf [8]byte
	if version >= Version {
		if _, err := io.ReadFull(tr, buf[:8]); err != nil {
			return c, fmt.Errorf("%w: truncated", ErrFormat)
		}
		c.Created = time.Unix(0, int64(binary.BigEndian.Uint64(buf[:]))).UTC()
	}
	for {
		if _, err := io.ReadFull(tr, buf[:1]); err != nil {
			return c, fmt.Errorf("%w: truncated", ErrFormat)
		}
		kind := buf[0]
		if kind == kindEnd {
			if _, err := io.ReadFull(tr, buf[:8]); err != nil || binary.BigEndian.Uint64(buf[:]) != n {
				return c, fmt.Errorf("%w: entry count does not match", ErrFormat)
			}
			break
		}
		if _, err := io.ReadFull(tr, buf[:4]); err != nil {
			return c, fmt.Errorf("%w: truncated entry", ErrFormat)
		}
		nl := binary.BigEndian.Uint32(buf[:4])
		if nl > maxNameLen {
			return c, fmt.Errorf("%w: name too long", ErrFormat)
		}
		if _, err := io.CopyN(io.Discard, tr, int64(nl)); err != nil {
			return c, fmt.Errorf("%w: truncated entry", ErrFormat)
		}
		if _, err := io.ReadFull(tr, buf[:8]); err != nil {
			return c, fmt.Errorf("%w: truncated entry", ErrFormat)
		}
		vl := binary.BigEndian.Uint64(buf[:8])
		if err := checkValueLen(kind, vl); err != nil {
			return c, err
		}
		if vl > 1<<62 {
			return c, fmt.Errorf("%w: value too long", ErrFormat)
		}
		if _, err := io.CopyN(io.Discard, tr, int64(vl)); err != nil {
			return c, fmt.Errorf("%w: truncated entry", ErrFormat)
		}
		switch kind {
		case kindRecord:
			c.Records++
		case kindAuditFile:
			c.AuditFiles++
		case kindAuditRow:
			c.AuditRows++
		default:
			return c, fmt.Errorf("%w: unknown entry kind %d", ErrFormat, kind)
		}
		n++
	}
	want := h.Sum(nil)
	var sum [sha256.Size]byte
	if _, err := io.ReadFull(cr, sum[:]); err != nil || !bytes.Equal(sum[:], want) {
		return c, fmt.Errorf("%w: checksum mismatch (the file is damaged or truncated)", ErrFormat)
	}
	if version >= VersionUndated {
		if _, err := io.ReadFull(cr, sum[:]); err != nil {
			return c, fmt.Errorf("%w: no authentication tag after the checksum (the file is truncated)", ErrFormat)
		}
	}
	if k, _ := cr.Read(buf[:1]); k != 0 {
		return c, fmt.Errorf("%w: data after the checksum", ErrFormat)
	}
	c.Bytes = cr.n
	return c, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
