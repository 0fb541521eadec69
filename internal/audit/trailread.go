package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The trail read page by page, as stored, for a server that hands its
// trail to auditors over its API (docs/audit.md, "Reading the trail over
// the API"): the lines of a chain's records and digests after a position,
// the chains, and the public keys. A record's or digest's position is its
// line number in a file (from 1) or its seq in PostgreSQL, which for a
// record is its sequence number in an intact chain. Both readers read a
// running server's trail: it is append-only, and a line still being
// written is left out.

// FileTrail reads the trail an embedded server keeps in its data
// directory: one chain, named "", in its segment files (audit.log,
// audit-000002.log, ...), its digests in audit-digests.log and their key
// in audit.pub. A record's position counts the lines of the segments the
// directory holds, one after the other. It is safe for concurrent use.
type FileTrail struct {
	dir     string
	digests lineIndex

	mu       sync.Mutex
	segments map[string]*segmentIndex // by file name
}

// segmentIndex is what FileTrail knows of a segment: its line index and,
// once a later segment exists (it is closed), its number of lines.
type segmentIndex struct {
	lines  lineIndex
	closed bool
	count  int64
}

// NewFileTrail returns the reader of the trail in the data directory dir.
func NewFileTrail(dir string) *FileTrail {
	return &FileTrail{dir: dir, segments: map[string]*segmentIndex{}}
}

// Chains returns the one chain of a log file, "".
func (t *FileTrail) Chains(context.Context) ([]string, error) { return []string{""}, nil }

// Records returns the lines of audit.log after line after, at most limit
// of them and, past the first, at most maxBytes bytes of lines; more
// reports whether a complete line follows them. A chain other than ""
// has no records.
func (t *FileTrail) Records(_ context.Context, chain string, after int64, limit, maxBytes int) ([]Row, bool, error) {
	if chain != "" {
		return nil, false, nil
	}
	segs, err := Segments(t.dir)
	if err != nil {
		return nil, false, err
	}
	var base int64 // lines in the segments before
	var rows []Row
	size := 0 // bytes of rows' lines
	for i, seg := range segs {
		x := t.segment(seg.Name())
		last := i == len(segs)-1
		if !last {
			count, err := x.lineCount(seg.Path)
			if err != nil {
				return nil, false, err
			}
			if base+count <= after {
				base += count
				continue
			}
		}
		page, more, err := x.lines.page(seg.Path, max(after-base, 0), limit-len(rows), maxBytes)
		if err != nil {
			return nil, false, err
		}
		for _, r := range page {
			// Past the first line, the page keeps to maxBytes across
			// segments too.
			if len(rows) > 0 && size+len(r.Line) > maxBytes {
				return rows, true, nil
			}
			r.Seq += base
			rows = append(rows, r)
			size += len(r.Line)
		}
		if more || len(rows) == limit {
			if !more && !last {
				// The page ends at the segment's end: more follow only
				// if a later segment holds a line (a server killed
				// just after a roll leaves the last one empty).
				if more, err = t.linesIn(segs[i+1:], maxBytes); err != nil {
					return nil, false, err
				}
			}
			return rows, more, nil
		}
		if !last {
			base += x.count
		}
	}
	return rows, false, nil
}

// linesIn reports whether any of segs, the segments after those read,
// holds a complete line: closed ones by their count, the last by reading
// its first line.
func (t *FileTrail) linesIn(segs []Segment, maxBytes int) (bool, error) {
	for i, seg := range segs {
		x := t.segment(seg.Name())
		if i < len(segs)-1 {
			count, err := x.lineCount(seg.Path)
			if count > 0 || err != nil {
				return err == nil, err
			}
			continue
		}
		rows, _, err := x.lines.page(seg.Path, 0, 1, maxBytes)
		return len(rows) > 0, err
	}
	return false, nil
}

// segment returns the index of the segment named name.
func (t *FileTrail) segment(name string) *segmentIndex {
	t.mu.Lock()
	defer t.mu.Unlock()
	x := t.segments[name]
	if x == nil {
		x = new(segmentIndex)
		t.segments[name] = x
	}
	return x
}

// lineCount returns the number of complete lines of a closed segment,
// counted once.
func (x *segmentIndex) lineCount(path string) (int64, error) {
	x.lines.mu.Lock()
	closed, count := x.closed, x.count
	x.lines.mu.Unlock()
	if closed {
		return count, nil
	}
	count, err := countLines(path)
	if err != nil {
		return 0, err
	}
	x.lines.mu.Lock()
	x.closed, x.count = true, count
	x.lines.mu.Unlock()
	return count, nil
}

// countLines counts the newlines of the file at path, reading it in
// pieces: a segment is too large to hold in memory to count.
func countLines(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	buf := make([]byte, 256<<10)
	for {
		k, err := f.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte("\n")))
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// Digests is Records for audit-digests.log.
func (t *FileTrail) Digests(_ context.Context, chain string, after int64, limit, maxBytes int) ([]Row, bool, error) {
	if chain != "" {
		return nil, false, nil
	}
	return t.digests.page(filepath.Join(t.dir, "audit-digests.log"), after, limit, maxBytes)
}

// PublicKey returns audit.pub, or nil if there is none.
func (t *FileTrail) PublicKey(_ context.Context, chain string) ([]byte, error) {
	if chain != "" {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(t.dir, "audit.pub"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// markEvery is how many lines apart a lineIndex marks offsets.
const markEvery = 1024

// lineIndex remembers where every markEvery-th line of an append-only file
// starts, so that a page far into the file is read without reading
// everything before it.
type lineIndex struct {
	mu    sync.Mutex
	marks []int64 // marks[i]: the offset of line i*markEvery+1, a complete line
}

// page reads the complete lines of the file at path after line after. A
// missing file has no lines.
func (x *lineIndex) page(path string, after int64, limit, maxBytes int) ([]Row, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	n, off := x.start(after)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, false, err
	}
	br := bufio.NewReader(SegmentData(f))
	var rows []Row
	size := 0
	for {
		b, err := br.ReadBytes('\n')
		if err == io.EOF {
			return rows, false, nil // nothing, or a line still being written
		}
		if err != nil {
			return nil, false, err
		}
		n++
		if n > after {
			if len(rows) == limit || len(rows) > 0 && size+len(b)-1 > maxBytes {
				return rows, true, nil
			}
			rows = append(rows, Row{Seq: n, Line: b[:len(b)-1]})
			size += len(b) - 1
		}
		off += int64(len(b))
		x.mark(n, off)
	}
}

// start returns the last marked line at or before line after+1: the
// number of lines before it and its offset.
func (x *lineIndex) start(after int64) (lines, off int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	i := min(after/markEvery, int64(len(x.marks)))
	if i == 0 {
		return 0, 0
	}
	return i * markEvery, x.marks[i-1]
}

// mark notes that line n+1 starts at off, n lines being complete before
// it.
func (x *lineIndex) mark(n, off int64) {
	if n%markEvery != 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if int64(len(x.marks)) == n/markEvery-1 {
		x.marks = append(x.marks, off)
	}
}

// PostgresTrail reads the trail of a cluster from its PostgreSQL tables: a
// chain per server process. It only reads. It is safe for concurrent use.
type PostgresTrail struct {
	pool *pgxpool.Pool
}

// NewPostgresTrail returns the reader of the trail in the database of
// pool, which stays the caller's.
func NewPostgresTrail(pool *pgxpool.Pool) *PostgresTrail {
	return &PostgresTrail{pool: pool}
}

// Chains returns every chain named in any of the audit tables, ordered by
// id, as VerifyPostgres checks them.
func (t *PostgresTrail) Chains(ctx context.Context) ([]string, error) {
	rows, _ := t.pool.Query(ctx, listChains)
	chains, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("audit: list the chains: %w", err)
	}
	return chains, nil
}

// Records returns the rows of chain in kms_audit_records after seq after,
// ordered by seq, at most limit of them and, past the first, at most
// maxBytes bytes of lines; more reports whether another row follows them.
func (t *PostgresTrail) Records(ctx context.Context, chain string, after int64, limit, maxBytes int) ([]Row, bool, error) {
	return t.page(ctx, `SELECT seq, line FROM kms_audit_records WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3`, chain, after, limit, maxBytes)
}

// Digests is Records for kms_audit_digests.
func (t *PostgresTrail) Digests(ctx context.Context, chain string, after int64, limit, maxBytes int) ([]Row, bool, error) {
	return t.page(ctx, `SELECT seq, line FROM kms_audit_digests WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3`, chain, after, limit, maxBytes)
}

func (t *PostgresTrail) page(ctx context.Context, query, chain string, after int64, limit, maxBytes int) ([]Row, bool, error) {
	rows, _ := t.pool.Query(ctx, query, chain, after, limit+1)
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Row])
	if err != nil {
		return nil, false, fmt.Errorf("audit: read chain %s: %w", chain, err)
	}
	size := 0
	for i, r := range all {
		if i == limit || i > 0 && size+len(r.Line) > maxBytes {
			return all[:i], true, nil
		}
		size += len(r.Line)
	}
	return all, false, nil
}

// PublicKey returns the chain's PEM key in kms_audit_keys, or nil if it
// has none.
func (t *PostgresTrail) PublicKey(ctx context.Context, chain string) ([]byte, error) {
	var key string
	err := t.pool.QueryRow(ctx, `SELECT public_key FROM kms_audit_keys WHERE chain = $1`, chain).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read the key of chain %s: %w", chain, err)
	}
	return []byte(key), nil
}
