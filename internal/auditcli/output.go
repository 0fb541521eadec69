package auditcli

import (
	"bytes"
	"fmt"
	"os"
)

// openOutput opens the file of --output for appending JSON lines,
// creating it with mode 0600. A last line without its newline, what a
// run stopped by a full disk or a crash left of a record, is cut off
// first: the record it began is appended again whole by the next run
// that selects it, and the next record starts a line of its own instead
// of being glued to the broken one.
func openOutput(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := cutPartialLine(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: cutting off a last line left incomplete: %w", path, err)
	}
	return f, nil
}

// cutPartialLine truncates f after its last newline, if bytes follow it
// (all of f, if it has none).
func cutPartialLine(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	end := fi.Size()
	buf := make([]byte, 64<<10)
	for at := end; at > 0; {
		n := min(int64(len(buf)), at)
		at -= n
		if _, err := f.ReadAt(buf[:n], at); err != nil {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = at + int64(i) + 1
			break
		}
		end = at
	}
	if end == fi.Size() {
		return nil
	}
	if err := f.Truncate(end); err != nil {
		return err
	}
	return f.Sync()
}
