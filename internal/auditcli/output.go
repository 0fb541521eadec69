package auditcli

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/openkms/kms/internal/datadir"
)

// refuseOutputInTrail refuses o.Output (given as flag) in the data
// directory or an archive directory o reads: written there, an export
// named after a segment takes its place, and events appended to one
// break its chain. With appending set (events), an output that is a file
// of those directories by another name (a symbolic or hard link) is
// refused too; an export is renamed into place, which replaces a link
// rather than the file it names.
func refuseOutputInTrail(o Options, flag string, appending bool) error {
	if o.Output == "" {
		return nil
	}
	refuse := datadir.RefuseOutputIn
	if appending {
		refuse = datadir.RefuseAppendTo
	}
	for _, dir := range append([]string{o.DataDir}, o.ArchiveDirs...) {
		if err := refuse(dir, o.Output, flag); err != nil {
			return err
		}
	}
	return nil
}

// openOutput opens the file of --output for appending JSON lines,
// creating it with mode 0600. A last line without its newline, what a
// run stopped by a full disk or a crash left of a record, is cut off
// first: the record it began is appended again whole by the next run
// that selects it, and the next record starts a line of its own instead
// of being glued to the broken one. A file whose last line could not be
// such a record (it does not begin a JSON object, or is longer than any
// record) is refused, not cut: it is not a file of this command's, and
// cutting would destroy what someone else wrote.
func openOutput(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := cutPartialLine(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// maxPartialLine bounds the part of a record a run cut short can have
// left: more than any record's line.
const maxPartialLine = 1 << 20

// errNotRecords refuses an output file that does not end in what this
// command writes.
var errNotRecords = errors.New("its last line is not part of an audit record (JSON lines): give --output a file of its own")

// cutPartialLine truncates f after its last newline, if what follows it
// is part of a record (all of f, if it has no newline and is such a
// part); it returns errNotRecords, changing nothing, if what follows
// could not be.
func cutPartialLine(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	n := min(size, maxPartialLine+1)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil {
		return err
	}
	tail := buf
	if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
		tail = buf[i+1:]
		if len(tail) == 0 {
			return lastLineIsRecord(buf[:i], n < size)
		}
	} else if n < size {
		return errNotRecords // a line longer than any record
	}
	if tail[0] != '{' || len(tail) > maxPartialLine {
		return errNotRecords
	}
	if err := f.Truncate(size - int64(len(tail))); err != nil {
		return fmt.Errorf("cutting off a last line left incomplete: %w", err)
	}
	return f.Sync()
}

// lastLineIsRecord returns errNotRecords unless the last line of text
// (a file's end without its final newline; more of the file before it
// when cut is set) could be a whole record: one JSON object on a line of
// at most maxPartialLine bytes. A file ending in a newline is what every
// text file is, so its last line is looked at too: a configuration or a
// log given by mistake is refused, not appended to.
func lastLineIsRecord(text []byte, cut bool) error {
	j := bytes.LastIndexByte(text, '\n')
	if j < 0 && cut {
		return errNotRecords // a line longer than any record
	}
	line := text[j+1:]
	if len(line) < 2 || line[0] != '{' || line[len(line)-1] != '}' || len(line) > maxPartialLine {
		return errNotRecords
	}
	return nil
}
