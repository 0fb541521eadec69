package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// A data directory's trail is one chain cut into numbered segment files
// (docs/audit.md, "Segments"): segment 1 is audit.log, the name the trail
// always had, and segment n > 1 is audit-NNNNNN.log (n in at least six
// digits, without a sign). The first record of segment n+1 chains to the
// last record of segment n; no record is split across segments. A log
// rolls to a new segment when the batch it is about to write would take
// the active segment past its size limit, so a segment exceeds the limit
// only when a single batch does.

// FirstSegment is the name of segment 1.
const FirstSegment = "audit.log"

// DefaultSegmentBytes is the size past which a data directory's trail
// rolls to a new segment unless told otherwise.
const DefaultSegmentBytes = 256 << 20

// SegmentName returns the file name of segment n (n >= 1).
func SegmentName(n int) string {
	if n <= 1 {
		return FirstSegment
	}
	return fmt.Sprintf("audit-%06d.log", n)
}

// ParseSegmentName returns the number of the segment whose file name is
// name, and false if name is not a segment's: exactly the names
// SegmentName returns.
func ParseSegmentName(name string) (int, bool) {
	if name == FirstSegment {
		return 1, true
	}
	digits, ok := strings.CutPrefix(name, "audit-")
	if !ok {
		return 0, false
	}
	if digits, ok = strings.CutSuffix(digits, ".log"); !ok || len(digits) < 6 || len(digits) > 9 {
		return 0, false
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 2 || SegmentName(n) != name {
		return 0, false
	}
	return n, true
}

// Segment is one segment file of a trail.
type Segment struct {
	N    int    // its number, from 1
	Path string // the file
}

// Name returns the segment's file name.
func (s Segment) Name() string { return filepath.Base(s.Path) }

// Segments lists the segment files in dir, ordered by number. A missing
// directory holds none.
func Segments(dir string) ([]Segment, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var segs []Segment
	for _, e := range entries {
		if n, ok := ParseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			segs = append(segs, Segment{N: n, Path: filepath.Join(dir, e.Name())})
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].N < segs[j].N })
	return segs, nil
}

// MergeSegments lists the segments of several directories (a data
// directory and the archives its older segments were moved to), ordered
// by number. A segment in more than one of them must have the same bytes
// in each, else it is an error.
func MergeSegments(dirs ...string) ([]Segment, error) {
	byN := map[int]Segment{}
	for _, dir := range dirs {
		segs, err := Segments(dir)
		if err != nil {
			return nil, err
		}
		for _, s := range segs {
			if prev, ok := byN[s.N]; ok {
				same, err := sameBytes(prev.Path, s.Path)
				if err != nil {
					return nil, err
				}
				if !same {
					return nil, fmt.Errorf("%s and %s differ", prev.Path, s.Path)
				}
				continue
			}
			byN[s.N] = s
		}
	}
	out := make([]Segment, 0, len(byN))
	for _, s := range byN {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].N < out[j].N })
	return out, nil
}

// sameBytes reports whether the files at a and b hold the same bytes,
// comparing them piece by piece.
func sameBytes(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 256<<10), make([]byte, 256<<10)
	for {
		na, erra := io.ReadFull(fa, ba)
		nb, errb := io.ReadFull(fb, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		endA := erra == io.EOF || erra == io.ErrUnexpectedEOF
		endB := errb == io.EOF || errb == io.ErrUnexpectedEOF
		switch {
		case erra != nil && !endA:
			return false, erra
		case errb != nil && !endB:
			return false, errb
		case endA || endB:
			return endA == endB, nil
		}
	}
}

// SegmentGaps returns a problem for each segment missing before or
// between segs (ordered by number): the trail starts at segment 1 and
// numbers its segments without gaps.
func SegmentGaps(segs []Segment) []*Problem {
	var problems []*Problem
	want := 1
	for _, s := range segs {
		for ; want < s.N; want++ {
			problems = append(problems, &Problem{Reason: fmt.Sprintf("segment %d (%s) is missing: it was removed, or archived elsewhere (give its directory with --archive-dir)", want, SegmentName(want))})
		}
		want = s.N + 1
	}
	return problems
}

// Locate returns the segment and the line in it of line n (from 1) of the
// log CheckSegments checked, for a message.
func Locate(segs []Segment, starts []int, n int) (string, int) {
	i := sort.Search(len(starts), func(i int) bool { return starts[i] >= n }) - 1
	if i < 0 {
		return "", n
	}
	return segs[i].Name(), n - starts[i]
}

// SegmentData returns a reader of r, a segment's bytes, that ends at its
// first zero byte. The server writes zeros ahead of its records in the
// active segment (docs/audit.md, "Segments"), and a crash can leave them
// there until the next start cuts them: no record holds a zero byte, so
// the records end where the zeros start. A closed segment has none.
func SegmentData(r io.Reader) io.Reader { return &segmentData{r: r} }

// SegmentDataLength returns the number of bytes of the segment f before
// its first zero byte, reading it whole.
func SegmentDataLength(f io.ReaderAt) (int64, error) {
	buf := make([]byte, 128<<10)
	var off int64
	for {
		n, err := f.ReadAt(buf, off)
		if i := bytes.IndexByte(buf[:n], 0); i >= 0 {
			return off + int64(i), nil
		}
		off += int64(n)
		if err == io.EOF {
			return off, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

type segmentData struct {
	r   io.Reader
	end bool
}

func (d *segmentData) Read(p []byte) (int, error) {
	if d.end {
		return 0, io.EOF
	}
	n, err := d.r.Read(p)
	if i := bytes.IndexByte(p[:n], 0); i >= 0 {
		d.end = true
		if i == 0 {
			return 0, io.EOF
		}
		return i, nil
	}
	return n, err
}

// SegmentReader reads the complete lines of a trail's segments in order,
// from where the last Next stopped, following the trail as it grows and
// rolls, and across a restart of a server that was killed mid-line. It
// holds at most maxLine bytes of a line: a longer one, which only damage
// or an edit makes, is an error. It is not safe for concurrent use.
type SegmentReader struct {
	dir     string
	cur     int // the number of the segment being read; 0 before the first
	f       *os.File
	off     int64  // where the next read of f starts
	closed  bool   // a later segment was seen: f grows no more
	partial []byte // a line the server is still writing
	buf     []byte
	// atEnd, if set (by a test), is called when a read of the segment
	// reaches its end, before the reader looks for the next.
	atEnd func()
}

// NewSegmentReader returns a reader of the segments in dir.
func NewSegmentReader(dir string) *SegmentReader { return &SegmentReader{dir: dir} }

// Next calls fn with each complete line (without its newline) written
// since the last call, across segments. It reads the active segment up
// to the zeros ahead of its records, and reads on from there next time:
// the server writes its next records over them.
func (r *SegmentReader) Next(fn func(line []byte) error) error {
	for {
		if r.f == nil {
			segs, err := Segments(r.dir)
			if err != nil {
				return err
			}
			i := sort.Search(len(segs), func(i int) bool { return segs[i].N > r.cur })
			if i == len(segs) {
				return nil
			}
			if r.f, err = os.Open(segs[i].Path); err != nil {
				return err
			}
			r.cur, r.off, r.closed = segs[i].N, 0, false
		}
		if r.buf == nil {
			r.buf = make([]byte, 64<<10)
		}
		if err := r.recheckPartial(); err != nil {
			return err
		}
		zeros := false
		for !zeros {
			n, err := r.f.ReadAt(r.buf, r.off)
			data := r.buf[:n]
			if i := bytes.IndexByte(data, 0); i >= 0 {
				data, zeros = data[:i], true
			}
			r.off += int64(len(data))
			for len(data) > 0 {
				i := bytes.IndexByte(data, '\n')
				n := i // the bytes of the line in data
				if i < 0 {
					n = len(data)
				}
				if len(r.partial)+n > maxLine {
					return r.longLine(len(data))
				}
				if i < 0 {
					r.partial = appendCapped(r.partial, data)
					break
				}
				line := data[:i]
				if len(r.partial) > 0 {
					line = append(r.partial, line...)
					r.partial = r.partial[:0]
				}
				if err := fn(line); err != nil {
					return err
				}
				data = data[i+1:]
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if zeros {
			return nil // the active segment, to be read on from r.off
		}
		if r.atEnd != nil {
			r.atEnd()
		}
		// At the end of this segment: go on to the next if there is one
		// and this one ended with a complete line. Records may have gone
		// into this one after the read above and before the next was
		// started, so it is read once more after the next is seen.
		segs, err := Segments(r.dir)
		if err != nil {
			return err
		}
		if len(segs) == 0 || segs[len(segs)-1].N <= r.cur {
			return nil
		}
		if !r.closed {
			r.closed = true
			continue
		}
		if len(r.partial) > 0 {
			// A segment is cut to its records before the next one is
			// started: this one was damaged or edited since.
			return errDamagedSegment(SegmentName(r.cur))
		}
		r.f.Close()
		r.f = nil
	}
}

// longLine stops the reading at a line longer than any record, of which
// the reader has kept the start (partial) and has left unread bytes of
// the segment read: a later Next reads the line again, and stops again.
func (r *SegmentReader) longLine(unread int) error {
	start := r.off - int64(unread) - int64(len(r.partial))
	r.off, r.partial = start, r.partial[:0]
	return fmt.Errorf("%s, line at byte %d: %w", SegmentName(r.cur), start, errLongLine)
}

// recheckPartial makes sure the start of a line read before is still in
// the segment. A server killed while writing that line leaves it torn;
// the next start cuts it and writes its next records where it was. The
// reader then drops what it kept and reads the line again from its
// start.
func (r *SegmentReader) recheckPartial() error {
	if len(r.partial) == 0 {
		return nil
	}
	start := r.off - int64(len(r.partial))
	now := r.buf
	if len(now) < len(r.partial) {
		now = make([]byte, len(r.partial))
	}
	now = now[:len(r.partial)]
	n, err := r.f.ReadAt(now, start)
	if err != nil && err != io.EOF {
		return err
	}
	if !bytes.Equal(now[:n], r.partial) {
		r.partial, r.off = r.partial[:0], start
	}
	return nil
}

// Close closes the segment being read.
func (r *SegmentReader) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// errDamagedSegment is the error of a closed segment that ends in part
// of a line. A segment is cut to its records before the next one is
// started, so it was damaged or edited since.
func errDamagedSegment(name string) error {
	return fmt.Errorf("%s ends in part of a line, and a later segment has begun: the trail is damaged (kms audit verify finds where)", name)
}
