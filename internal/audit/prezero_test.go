package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

func zeroRec(name string) *Record {
	return &Record{EventVersion: "1.11", EventName: name, EventSource: "kms.amazonaws.com", EventType: "AwsApiCall",
		RequestParameters: json.RawMessage(`{"keyId":"k"}`), ResponseElements: json.RawMessage("null")}
}

// writeTrail writes a trail of n records to dir, in segments of at most
// maxBytes, and closes it.
func writeTrail(t *testing.T, dir string, maxBytes int64, n int) {
	t.Helper()
	l, err := OpenDir(dir, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// appendN appends n records to l, eight at a time.
func appendN(t *testing.T, l *Log, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := l.Append(zeroRec(fmt.Sprint("Op", i))); err != nil {
				t.Error(err)
			}
		})
		if i%8 == 7 {
			wg.Wait()
		}
	}
	wg.Wait()
}

// waitZeros waits for the zeros l's sink is writing ahead of its records.
func waitZeros(l *Log) {
	s := l.sink.(*fileSink)
	s.zeroing.Lock()
	s.zeroing.Unlock()
}

// checkTrail verifies dir's segments as one log, and that no segment but
// the last holds a zero byte.
func checkTrail(t *testing.T, dir string, want int) {
	t.Helper()
	segs, err := Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs[:len(segs)-1] {
		if b, _ := os.ReadFile(s.Path); bytes.IndexByte(b, 0) >= 0 || b[len(b)-1] != '\n' {
			t.Fatalf("%s, a closed segment, holds zeros or ends in part of a line", s.Name())
		}
	}
	c := NewLogCheck(nil)
	if _, err := CheckSegments(segs, c); err != nil {
		t.Fatal(err)
	}
	if c.Verified() != want || c.Problems() != nil || c.EndsIncomplete() {
		t.Fatalf("verify: %d records (want %d), problems %v, incomplete %v", c.Verified(), want, c.Problems(), c.EndsIncomplete())
	}
}

// The active segment holds zeros after its records while the log is
// open, which readers take as its end; closing cuts them.
func TestPrezeroedSegment(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenDir(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 20)
	waitZeros(l)
	path := filepath.Join(dir, FirstSegment)
	b, _ := os.ReadFile(path)
	end := bytes.IndexByte(b, 0)
	if end < 0 || len(b)-end < zeroChunk/2 || bytes.Count(b[:end], []byte("\n")) != 20 || b[end-1] != '\n' {
		t.Fatalf("segment of %d bytes, zeros from %d: want 20 records, then zeros", len(b), end)
	}
	if len(bytes.Trim(b[end:], "\x00")) != 0 {
		t.Fatal("bytes other than zeros after the records")
	}
	f, _ := os.Open(path)
	n, err := SegmentDataLength(f)
	f.Close()
	if err != nil || n != int64(end) {
		t.Fatalf("SegmentDataLength = %d, %v; want %d", n, err, end)
	}
	checkTrail(t, dir, 20)

	appendN(t, l, 5)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if bytes.IndexByte(b, 0) >= 0 || bytes.Count(b, []byte("\n")) != 25 || b[len(b)-1] != '\n' {
		t.Fatalf("closed segment of %d bytes: want its 25 records and nothing after", len(b))
	}
	checkTrail(t, dir, 25)
}

// A crash leaves the zeros: the next open continues the chain at the first
// of them, and drops what follows it, which after a power loss can be
// part of a batch never acknowledged.
func TestPrezeroedCrash(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenDir(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendN(t, l, 12)
	waitZeros(l)
	crashed, _ := os.ReadFile(filepath.Join(dir, FirstSegment)) // as SIGKILL leaves it
	end := bytes.IndexByte(crashed, 0)
	if end < 0 {
		t.Fatal("no zeros after the records")
	}

	for _, c := range []struct {
		name  string
		after []byte // written 8 KiB past the records
	}{
		{"killed", nil},
		{"power loss", []byte(`{"hash":"00","event":{"sequence":14}}` + "\n")},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := t.TempDir()
			b := bytes.Clone(crashed)
			copy(b[end+8192:], c.after)
			if err := os.WriteFile(filepath.Join(d, FirstSegment), b, 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := OpenDir(d, 64<<20)
			if err != nil {
				t.Fatal(err)
			}
			appendN(t, l, 3)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(filepath.Join(d, FirstSegment))
			if bytes.IndexByte(got, 0) >= 0 || bytes.Contains(got, []byte(`"hash":"00"`)) || !bytes.HasPrefix(got, crashed[:end]) {
				t.Fatalf("after reopening: %d bytes, zeros or the stray line kept, or records lost", len(got))
			}
			checkTrail(t, d, 15)
		})
	}
}

// Rolls cut each segment to its records while the log goes on in the
// next; small segments zero a quarter of their size ahead.
func TestPrezeroedRolls(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenDir(dir, 4096)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 100)
	waitZeros(l)
	if segs, _ := Segments(dir); len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	checkTrail(t, dir, 100)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkTrail(t, dir, 100)
}

// A SegmentReader stops at the zeros and reads the records written over
// them next time, each once.
func TestSegmentReaderZeros(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenDir(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := NewSegmentReader(dir)
	defer r.Close()
	var seqs []uint64
	read := func() {
		t.Helper()
		err := r.Next(func(b []byte) error {
			_, rec, _, err := parseLine(append(b, '\n'))
			if err != nil {
				return err
			}
			seqs = append(seqs, rec.Sequence)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		if err := l.Append(zeroRec(fmt.Sprint("Op", i))); err != nil {
			t.Fatal(err)
		}
		waitZeros(l)
		if i%7 == 0 {
			read()
		}
	}
	read()
	if len(seqs) != 30 {
		t.Fatalf("read %d records, want 30", len(seqs))
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("read %v, want 1..30 in order", seqs)
		}
	}
}

// Pages of the trail end at the zeros, and the records written over them
// come in the next page, numbered on.
func TestFileTrailZeros(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenDir(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	trail := NewFileTrail(dir)
	var after int64
	for round := range 3 {
		appendN(t, l, 5)
		waitZeros(l)
		rows, more, err := trail.Records(context.Background(), "", after, 100, 1<<20)
		if err != nil || more || len(rows) != 5 {
			t.Fatalf("round %d: %d rows, more %v, %v; want 5", round, len(rows), more, err)
		}
		for i, r := range rows {
			if r.Seq != after+int64(i)+1 || bytes.IndexByte(r.Line, 0) >= 0 {
				t.Fatalf("round %d: row %d is line %d (%.20q)", round, i, r.Seq, r.Line)
			}
			if _, rec, _, err := parseLine(append(r.Line, '\n')); err != nil || rec.Sequence != uint64(r.Seq) {
				t.Fatalf("round %d: line %d is not record %d: %v", round, r.Seq, r.Seq, err)
			}
		}
		after += 5
	}
}

// Zeros that cannot be written (a full disk) cost only speed: records are
// appended past them, and the zeros are tried once more per segment.
func TestPrezeroFailure(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenDir(dir, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	s := l.sink.(*fileSink)
	var tries atomic.Int32
	s.zeroing.Lock() // the first chunk is written; the next ones fail
	s.zeros = func(_ *os.File, from, _ int64) (int64, error) {
		tries.Add(1)
		return from, errors.New("no space left on device")
	}
	s.zeroing.Unlock()
	obs := &zeroObserver{}
	l.Observe(obs)
	appendN(t, l, 400)
	waitZeros(l)
	segs, _ := Segments(dir)
	if len(segs) < 2 || tries.Load() != int32(len(segs)) {
		t.Fatalf("%d segments, %d tries to write zeros: want one per segment", len(segs), tries.Load())
	}
	if got := obs.failed.Load(); got != tries.Load() {
		t.Fatalf("%d failures reported to the observer, %d tries failed", got, tries.Load())
	}
	checkTrail(t, dir, 400)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkTrail(t, dir, 400)
}

// zeroObserver counts the failures to write zeros it is told of.
type zeroObserver struct{ failed atomic.Int32 }

func (*zeroObserver) Appended(time.Duration, error)       {}
func (*zeroObserver) Committed(int, time.Duration, error) {}
func (o *zeroObserver) ZerosFailed(error)                 { o.failed.Add(1) }

// SegmentData ends any bytes at their first zero byte, however they are
// read, and SegmentDataLength agrees.
func FuzzSegmentData(f *testing.F) {
	f.Add([]byte("{\"hash\":\"ab\"}\n\x00\x00\x00"), uint8(3))
	f.Add([]byte("r1\nr2\ncut\x00\x00r3\n"), uint8(1))
	f.Add([]byte("\x00"), uint8(0))
	f.Add([]byte("no zeros\n"), uint8(7))
	f.Fuzz(func(t *testing.T, b []byte, step uint8) {
		want := b
		if i := bytes.IndexByte(b, 0); i >= 0 {
			want = b[:i]
		}
		var r io.Reader = bytes.NewReader(b)
		switch step % 3 {
		case 1:
			r = iotest.OneByteReader(r)
		case 2:
			r = iotest.HalfReader(r)
		}
		got, err := io.ReadAll(SegmentData(r))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("SegmentData read %q, %v; want %q", got, err, want)
		}
		n, err := SegmentDataLength(bytes.NewReader(b))
		if err != nil || n != int64(len(want)) {
			t.Fatalf("SegmentDataLength = %d, %v; want %d", n, err, len(want))
		}
	})
}

// Records that go into a segment after the reader reached its end, and
// before the server rolled to the next, are read before the next.
func TestSegmentReaderRollAfterEnd(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 64<<20, 3)
	first, _ := os.ReadFile(filepath.Join(dir, FirstSegment))
	lines := bytes.SplitAfter(first, []byte("\n"))
	// Segment 1 holds records 1 and 2 when the reader reaches its end;
	// record 3 and segment 2 come before it looks for the next.
	os.WriteFile(filepath.Join(dir, FirstSegment), bytes.Join(lines[:2], nil), 0o600)
	r := NewSegmentReader(dir)
	defer r.Close()
	r.atEnd = func() {
		r.atEnd = nil
		f, _ := os.OpenFile(filepath.Join(dir, FirstSegment), os.O_WRONLY|os.O_APPEND, 0)
		f.Write(lines[2])
		f.Close()
		os.WriteFile(filepath.Join(dir, SegmentName(2)), nil, 0o600)
	}
	var n int
	if err := r.Next(func([]byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("read %d records, want the 3 of segment 1", n)
	}
}

// A line the reader saw half written, and that a crash left torn, is cut
// by the restarted server and written over by its next records: the
// reader reads those records as they are, not joined to the torn half.
func TestSegmentReaderTornLineRewritten(t *testing.T) {
	dir := t.TempDir()
	seg := filepath.Join(dir, FirstSegment)
	writeTrail(t, dir, 64<<20, 3)
	intact, _ := os.ReadFile(seg)
	// The server killed while writing record 4: the first part of a line
	// like its others, and zeros after it.
	torn := append(bytes.Clone(intact), intact[:40]...)
	os.WriteFile(seg, append(torn, make([]byte, 4096)...), 0o600)
	r := NewSegmentReader(dir)
	defer r.Close()
	var got [][]byte
	read := func() {
		t.Helper()
		if err := r.Next(func(b []byte) error { got = append(got, bytes.Clone(b)); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	read()
	if len(got) != 3 {
		t.Fatalf("read %d lines before the restart, want 3", len(got))
	}
	// The restart cuts the torn line; records 4 and 5 go where it was.
	l, err := OpenDir(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 2)
	waitZeros(l)
	read()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	read()
	final, _ := os.ReadFile(seg)
	want := bytes.Split(bytes.TrimSuffix(final, []byte("\n")), []byte("\n"))
	if len(got) != len(want) {
		t.Fatalf("read %d lines, the segment holds %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("line %d read as\n%s\nthe segment holds\n%s", i+1, got[i], want[i])
		}
	}
}

// The zeros are written and fsynced through a descriptor of their own, so
// that their fdatasync cannot take a write error's report from the one
// that acknowledges records (fileSink.extend).
func TestPrezeroOwnDescriptor(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenDir(dir, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	s := l.sink.(*fileSink)
	var shared, extensions atomic.Int32
	s.zeroing.Lock()
	s.zeros = func(f *os.File, from, to int64) (int64, error) {
		extensions.Add(1)
		s.mu.RLock()
		if f == s.f {
			shared.Add(1)
		}
		s.mu.RUnlock()
		return writeZeros(f, from, to)
	}
	s.zeroing.Unlock()
	appendN(t, l, 400)
	waitZeros(l)
	if extensions.Load() == 0 || shared.Load() != 0 {
		t.Fatalf("%d of %d extensions wrote the zeros through the records' descriptor", shared.Load(), extensions.Load())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkTrail(t, dir, 400)
}

// A SegmentReader (export --follow) holds at most maxLine bytes of a line:
// a longer one, which only damage or an edit makes, stops it with an
// error, each time it is read, after the lines before it.
func TestSegmentReaderOverlongLine(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 1<<30, 3)
	f, err := os.OpenFile(filepath.Join(dir, FirstSegment), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{'x'}, 1<<20)
	for range maxLine>>20 + 1 {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	r := NewSegmentReader(dir)
	defer r.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for try := range 2 {
		lines := 0
		err := r.Next(func([]byte) error { lines++; return nil })
		if want := 3 * (1 - try); lines != want || !errors.Is(err, errLongLine) {
			t.Fatalf("read %d lines, then %v; want %d, then the line's length", lines, err, want)
		}
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 3*maxLine {
		t.Errorf("reading took %d MiB", alloc>>20)
	}
}

// A segment before the last that ends in part of a line (only damage or
// an edit makes one: a segment is cut to its records before the next is
// started) stops a SegmentReader with an error, after its complete lines,
// rather than ending the reading there as if the trail ended.
func TestSegmentReaderDamagedClosedSegment(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 16<<10, 100)
	segs, err := Segments(dir)
	if err != nil || len(segs) < 2 {
		t.Fatalf("%d segments, %v: want at least 2", len(segs), err)
	}
	first, _ := os.ReadFile(segs[0].Path)
	whole := bytes.Count(first, []byte("\n"))
	if whole < 3 {
		t.Fatalf("%s holds %d lines: want a few", segs[0].Name(), whole)
	}
	if err := os.WriteFile(segs[0].Path, first[:len(first)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	r := NewSegmentReader(dir)
	defer r.Close()
	lines := 0
	err = r.Next(func([]byte) error { lines++; return nil })
	if lines != whole-1 || err == nil || !strings.Contains(err.Error(), segs[0].Name()+" ends in part of a line") {
		t.Fatalf("read %d lines, then %v; want the %d complete lines of %s, then the damage", lines, err, whole-1, segs[0].Name())
	}
}
