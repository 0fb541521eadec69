package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzSegmentReader drives a trail's segments as a server does, in the
// order ops gives, with a reader following them: complete lines appended,
// a line written in part and then finished, or cut by a crash and the
// restart that writes new lines where it began, a roll to the next
// segment, with zeros after the records of the active one or none.
// Whenever it reads, the reader must have given exactly the complete
// lines so far, in order: each once, none joined to another, none a line
// that was cut.
func FuzzSegmentReader(f *testing.F) {
	f.Add([]byte{0, 4, 1, 4, 3, 0, 4}, true)
	f.Add([]byte{1, 4, 1, 4, 2, 4, 0, 1, 3, 1, 2, 4}, false)
	f.Add([]byte{0, 0, 4, 1, 1, 4, 3, 1, 4, 2, 4}, true)
	f.Add([]byte{0, 4, 5, 4, 0, 5, 0, 4, 1, 5, 2, 5, 4}, true)
	f.Fuzz(func(t *testing.T, ops []byte, zeros bool) {
		if len(ops) > 200 {
			ops = ops[:200]
		}
		dir := t.TempDir()
		seg := filepath.Join(dir, FirstSegment)
		var closed []byte // the lines of the segments before the active one
		var data []byte   // the active segment's records and any line in progress
		n := 1
		write := func() {
			b := data
			if zeros {
				b = append(bytes.Clone(data), make([]byte, 4096)...)
			}
			if err := os.WriteFile(seg, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		write()
		r := NewSegmentReader(dir)
		defer r.Close()
		var got []string
		check := func() {
			if err := r.Next(func(b []byte) error { got = append(got, string(b)); return nil }); err != nil {
				t.Fatal(err)
			}
			complete := append(bytes.Clone(closed), data[:bytes.LastIndexByte(data, '\n')+1]...)
			want := bytes.Split(complete, []byte("\n"))
			want = want[:len(want)-1]
			if len(got) != len(want) {
				t.Fatalf("read %d lines, the segment has %d complete:\n%q\n%q", len(got), len(want), got, want)
			}
			for i := range want {
				if got[i] != string(want[i]) {
					t.Fatalf("line %d read as %q, the segment holds %q", i+1, got[i], want[i])
				}
			}
		}
		for i, op := range ops {
			switch op % 6 {
			case 0: // a batch of one complete line
				data = fmt.Appendf(data, "{\"line\":%d}\n", i)
			case 1: // part of a line, the rest to come
				data = fmt.Appendf(data, "{\"part\":%d", i)
			case 2: // the line in progress finished
				if len(data) > 0 && data[len(data)-1] != '\n' {
					data = append(data, "}\n"...)
				}
			case 3: // killed, and restarted: the cut line is dropped
				data = data[:bytes.LastIndexByte(data, '\n')+1]
			case 4:
				check()
				continue
			case 5: // a roll, between batches: the segment cut to its records
				if len(data) > 0 && data[len(data)-1] != '\n' {
					continue
				}
				if err := os.WriteFile(seg, data, 0o600); err != nil {
					t.Fatal(err)
				}
				closed, data = append(closed, data...), nil
				n++
				seg = filepath.Join(dir, SegmentName(n))
			}
			write()
		}
		check()
	})
}
