package audit

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// LogCheck checks a log file's chain line by line, as it is read, and
// keeps only what the checks after it need: the problems, the counts, and
// the claimed hashes of the records it was asked to keep (those that
// signed digests and high-water marks name, by sequence number). A trail
// of any size is checked in memory bounded by its longest line and its
// digests (Named), not by its records.
//
// A digest names a record by its sequence number, and the check keeps the
// hash of the record that carries that number wherever it stands: after a
// record removed, inserted or duplicated, the records after it still
// match their digests. The chain itself is followed by each record's
// sequence number and previousHash (follow.go), so that one change is
// reported once, where it is.
//
// Verified and Problems are what VerifyAll returns for the same log
// (VerifyAll is built on it). The accessors (but Lines) are for after the
// last line: they judge a record left pending at the end.
type LogCheck struct {
	chain chainFollower
	lines uint64 // complete lines so far
	named *Named
	cut   bool // the log ends with an incomplete line
}

// NewLogCheck returns a check that keeps the hashes the records whose
// sequence numbers are in named claim, in named (nil: none).
func NewLogCheck(named *Named) *LogCheck {
	if named == nil {
		named = &Named{}
	}
	named.prepare()
	return &LogCheck{chain: newChainFollower(), named: named}
}

// Line checks the next complete line of the log, b, without its newline.
// It does not keep b.
func (c *LogCheck) Line(b []byte) {
	c.lines++
	if len(b) > maxLine {
		c.chain.notRecord(c.lines, errLongLine.Error())
		return
	}
	h, reason := readHead(b)
	if reason != "" {
		c.chain.notRecord(c.lines, reason)
		return
	}
	if i := c.named.index(h.seq); i >= 0 {
		c.named.note(i, h.hash)
	}
	h.line = c.lines
	c.chain.record(h)
}

// Incomplete notes that the log ends, after the lines given, with a line
// cut short.
func (c *LogCheck) Incomplete() {
	c.finish()
	c.cut = true
	c.chain.add(&Problem{Line: int(c.lines) + 1, Reason: "the last line is incomplete"})
}

// finish judges the record left pending by the last line, if any, as
// the log's last.
func (c *LogCheck) finish() { c.chain.end() }

// EndsIncomplete reports whether the log ends with a line cut short,
// which is then the last of the breaks. A server that is running may be
// writing that line (DropIncomplete).
func (c *LogCheck) EndsIncomplete() bool { return c.cut }

// Verified is the number of records that chain correctly from the first,
// before the first problem.
func (c *LogCheck) Verified() int { c.finish(); return int(c.chain.verified) }

// Problems are the breaks found, in the order of the log: the first
// 1,000 of them (Dropped counts the others).
func (c *LogCheck) Problems() []*Problem { c.finish(); return c.chain.problems }

// Dropped is the number of breaks found past those Problems keeps.
func (c *LogCheck) Dropped() uint64 { c.finish(); return c.chain.dropped }

// DropIncomplete takes the incomplete last line (EndsIncomplete) out of
// the breaks: a running server is writing it. It returns the breaks.
func (c *LogCheck) DropIncomplete() []*Problem {
	f := &c.chain
	c.finish()
	if !c.cut {
		return f.problems
	}
	c.cut = false
	if n := len(f.problems); n > 0 && f.problems[n-1].Line == int(c.lines)+1 {
		f.problems = f.problems[:n-1]
	} else {
		f.dropped--
	}
	return f.problems
}

// Lines is the number of complete lines checked.
func (c *LogCheck) Lines() uint64 { return c.lines }

// End is the sequence number of the chain's last record, as the chain
// was followed (0 if it has none): the record a digest or a mark must not
// name a later one than, or records were cut off.
func (c *LogCheck) End() uint64 { c.finish(); return c.chain.cur.seq }

// Intact returns the records that chain intact after the last break of
// the chain (all of them if it has none): how many, and the sequence
// numbers of the first and the last (0, 0 if none). A line cut short at
// the end is no break of the records before it.
func (c *LogCheck) Intact() (n, first, last uint64) {
	c.finish()
	f := &c.chain
	if f.tail == 0 {
		return 0, 0, 0
	}
	return f.tail, f.tailFirst, f.cur.seq
}

// Hashes are the hashes the kept records claim (Named.Hash), as far as
// the lines checked so far go.
func (c *LogCheck) Hashes() *Named { c.finish(); return c.named }

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
