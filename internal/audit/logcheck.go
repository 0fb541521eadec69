package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// LogCheck checks a log file's chain line by line, as it is read, and
// keeps only what the checks after it need: the problems, the counts, and
// the claimed hashes of the lines it was asked to keep (those that signed
// digests and high-water marks name). A trail of any size is checked in
// memory bounded by its longest line and its digests (Named), not by its
// records.
//
// Verified and Problems are what VerifyAll returns for the same log
// (VerifyAll is built on it).
type LogCheck struct {
	prev     string
	want     uint64 // the sequence number the next record must carry
	lines    uint64 // complete lines so far
	verified int    // records before the first break
	problems []*Problem
	named    *Named
	next     int  // the first of named.seqs not before the next line
	cut      bool // the log ends with an incomplete line
}

// NewLogCheck returns a check that keeps the hashes the lines in named
// claim, in named (nil: none).
func NewLogCheck(named *Named) *LogCheck {
	if named == nil {
		named = &Named{}
	}
	named.prepare()
	return &LogCheck{prev: genesis, want: 1, named: named}
}

// Line checks the next complete line of the log, b, without its newline.
// It does not keep b.
func (c *LogCheck) Line(b []byte) {
	c.lines++
	seqs := c.named.seqs
	for c.next < len(seqs) && seqs[c.next] < c.lines {
		c.next++
	}
	if c.next < len(seqs) && seqs[c.next] == c.lines {
		// A line that is not a record has no hash: a digest naming it
		// does not match.
		var ln line
		_ = json.Unmarshal(b, &ln)
		c.named.note(c.next, ln.Hash)
	}
	if len(b) > maxLine {
		c.problems = append(c.problems, &Problem{Line: int(c.lines), Reason: errLongLine.Error()})
		c.want++
		return
	}
	hash, _, err := checkLine(b, c.prev, c.want)
	if err == nil {
		c.prev, c.want = hash, c.want+1
		if len(c.problems) == 0 {
			c.verified++
		}
		return
	}
	c.problems = append(c.problems, &Problem{Line: int(c.lines), Reason: err.Error()})
	// Take up the chain again after this line.
	c.want++
	if h, seq, ok := lineHead(b); ok {
		c.prev, c.want = h, seq+1
	}
}

// Incomplete notes that the log ends, after the lines given, with a line
// cut short.
func (c *LogCheck) Incomplete() {
	c.cut = true
	c.problems = append(c.problems, &Problem{Line: int(c.lines) + 1, Reason: "the last line is incomplete"})
}

// EndsIncomplete reports whether the log ends with a line cut short,
// which is then the last of Problems. A server that is running may be
// writing that line.
func (c *LogCheck) EndsIncomplete() bool { return c.cut }

// Verified is the number of records that chain correctly from the first,
// before the first problem.
func (c *LogCheck) Verified() int { return c.verified }

// Problems are the breaks found, in the order of the log.
func (c *LogCheck) Problems() []*Problem { return c.problems }

// Lines is the number of complete lines checked.
func (c *LogCheck) Lines() uint64 { return c.lines }

// Hashes are the hashes the kept lines claim (Named.Hash), as far as the
// lines checked so far go.
func (c *LogCheck) Hashes() *Named { return c.named }

// Read checks every line of r, a log or the rest of one; a last line
// without its newline is noted incomplete.
func (c *LogCheck) Read(r io.Reader) error { return c.readLines(r, false) }

// readLines checks every line of r. A last line without its newline is
// checked as complete if complete is set (a segment before the last,
// which the trail closed with a complete line and without zeros after
// it), else noted incomplete; then r ends at its first zero byte
// (SegmentData).
func (c *LogCheck) readLines(r io.Reader, complete bool) error {
	if !complete {
		r = SegmentData(r)
	}
	rest, err := eachLine(r, func(b []byte) error { c.Line(b); return nil })
	if err != nil || len(rest) == 0 {
		return err
	}
	if complete {
		c.Line(rest)
	} else {
		c.Incomplete()
	}
	return nil
}

// maxLine bounds the lines a reader of the trail holds in memory. The
// server's records are far shorter: a request body is at most 1 MiB, and
// a record holds its parameters (escaped, at most 6 bytes a byte) and a
// few short fields. A longer line can only be damage or an edit.
const maxLine = 64 << 20

// errLongLine is the problem of a line longer than maxLine.
var errLongLine = fmt.Errorf("not a record: the line is longer than %d MiB", maxLine>>20)

// eachLine calls fn with every complete line of r, without its newline,
// and returns the bytes after the last newline. A line longer than
// maxLine is given as its first maxLine+1 bytes: no record is that long.
// fn must not keep the line; an error of fn stops the reading and is
// returned.
func eachLine(r io.Reader, fn func([]byte) error) ([]byte, error) {
	return eachLineIn(bufio.NewReaderSize(r, 1<<20), fn)
}

// eachLineIn is eachLine reading through br.
func eachLineIn(br *bufio.Reader, fn func([]byte) error) ([]byte, error) {
	var long []byte // the start of a line longer than br's buffer
	for {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = appendCapped(long, b)
			continue
		}
		cut := false
		if len(long) > 0 {
			long = appendCapped(long, b)
			cut = err == nil && long[len(long)-1] != '\n'
			b, long = long, long[:0]
		}
		switch {
		case err == io.EOF:
			return b, nil
		case err != nil:
			return nil, err
		case !cut:
			b = b[:len(b)-1]
		}
		if err := fn(b); err != nil {
			return nil, err
		}
	}
}

// appendCapped appends b to the part of a line in long, up to maxLine+1
// bytes, doubling long's capacity as it grows.
func appendCapped(long, b []byte) []byte {
	b = b[:min(len(b), maxLine+1-len(long))]
	if len(long)+len(b) > cap(long) {
		grown := make([]byte, len(long), min(max(2*cap(long), len(long)+len(b)), maxLine+1))
		copy(grown, long)
		long = grown
	}
	return append(long, b...)
}

// CheckSegments checks segs (ordered by number) with c as one log, the
// lines of each after those of the one before, and returns where each
// segment's lines start: starts[i] is the number of lines before segs[i],
// for Locate. A segment is read as a stream, not into memory.
func CheckSegments(segs []Segment, c *LogCheck) (starts []int, err error) {
	starts = make([]int, len(segs))
	for i, s := range segs {
		starts[i] = int(c.lines)
		f, err := os.Open(s.Path)
		if err != nil {
			return nil, err
		}
		// A segment is closed with its last line complete: a line cut
		// short there would merge with the next segment's first.
		err = c.readLines(f, i < len(segs)-1)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return starts, nil
}
