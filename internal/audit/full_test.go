package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// limitFileSize sets this process's soft limit on the size of the files
// it writes (RLIMIT_FSIZE) to soft for the rest of the test: a write past
// it is cut at the limit, and the next one gets EFBIG, as one onto a full
// disk gets ENOSPC (Go ignores SIGXFSZ). It returns a function that lifts
// the limit again.
func limitFileSize(t *testing.T, soft uint64) func() {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = min(soft, old.Max)
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	lift := func() {
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(lift)
	return lift
}

// TestFullFileGoesOn: a batch that a log file refuses for want of room
// (cut short by the size limit) fails its Append and every Retry while
// there is no room; once there is, Retry succeeds without reopening the
// log, the part of the batch written is gone, and the records appended
// then follow the last one appended before, in one intact chain.
func TestFullFileGoesOn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 3 {
		if err := l.Append(zeroRec("Before")); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	lift := limitFileSize(t, uint64(fi.Size())+50)
	if err := l.Append(zeroRec("Refused")); !errors.Is(err, unix.EFBIG) {
		t.Fatalf("Append past the limit: %v, want EFBIG", err)
	}
	if err := l.Retry(); !errors.Is(err, unix.EFBIG) {
		t.Fatalf("Retry while there is no room: %v, want EFBIG", err)
	}
	lift()
	if err := l.Retry(); err != nil {
		t.Fatalf("Retry once there is room: %v", err)
	}
	for range 2 {
		if err := l.Append(zeroRec("After")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, problem, err := Verify(f)
	if err != nil || problem != nil || n != 5 {
		t.Fatalf("verify: %d records, %v, %v; want 5 intact", n, problem, err)
	}
	if b, _ := os.ReadFile(path); len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("the log does not end in a whole line")
	}
}

// TestFullSegmentGoesOn: a prezeroed segment's trail whose roll to the
// next segment is cut short by the size limit takes records again once
// there is room, and every segment verifies as one chain with the
// records appended before and after.
func TestFullSegmentGoesOn(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenDir(dir, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n := 0
	for ; n < 3; n++ {
		if err := l.Append(zeroRec("Before")); err != nil {
			t.Fatal(err)
		}
	}
	// Records fill the first segment; then the limit lets only the
	// first 50 bytes of the next be written, which the batch that rolls
	// to it writes first.
	sink := l.sink.(*fileSink)
	for per := sink.size / int64(n); sink.size+per <= sink.max; n++ {
		if err := l.Append(zeroRec("Before")); err != nil {
			t.Fatal(err)
		}
	}
	waitZeros(l)
	lift := limitFileSize(t, 50)
	if err := l.Append(zeroRec("Refused")); !errors.Is(err, unix.EFBIG) || sink.n != 2 {
		t.Fatalf("Append past the limit: %v in segment %d, want EFBIG in segment 2", err, sink.n)
	}
	if err := l.Retry(); err == nil {
		t.Fatal("Retry while there is no room succeeded")
	}
	goesOnWithRoom(t, l, lift, dir, 20, n+20)
}

// TestDigestCutShortGoesOn: a digest cut short by the size limit fails
// its Write and leaves no part of its line behind, so that the next
// digest, once there is room, is a line of its own and every digest
// verifies.
func TestDigestCutShortGoesOn(t *testing.T) {
	dir := t.TempDir()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	logPath, digPath := filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit-digests.log")
	l, err := Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := OpenDigester(digPath, priv)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := range 3 {
		if err := l.Append(zeroRec("Encrypt")); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			fi, err := os.Stat(digPath)
			if err != nil {
				t.Fatal(err)
			}
			lift := limitFileSize(t, uint64(fi.Size())+40)
			if err := d.Write(l, now); !errors.Is(err, unix.EFBIG) {
				t.Fatalf("digest past the limit: %v, want EFBIG", err)
			}
			lift()
		}
		if err := d.Write(l, now); err != nil {
			t.Fatal(err)
		}
	}
	logB, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	keep := &Named{}
	for i := range 3 {
		keep.Add(uint64(i + 1))
	}
	c := NewLogCheck(keep)
	if err := c.Read(bytes.NewReader(logB)); err != nil {
		t.Fatal(err)
	}
	digB, err := os.ReadFile(digPath)
	if err != nil {
		t.Fatal(err)
	}
	if n, p, err := VerifyDigests(bytes.NewReader(digB), pub, c.Hashes(), c.Lines()); n != 3 || p != nil || err != nil {
		t.Fatalf("digests: %d verified, %v, %v; want 3\n%s", n, p, err, digB)
	}
}

// TestRollRefusedProbesTheNextSegment: while the next segment cannot be
// created for want of room (no inode left, say), Retry fails, though the
// active segment has room: a call it let go ahead would change things and
// then be refused when its record rolls. Once the segment can be created,
// Retry rolls to it and the trail goes on as one chain.
func TestRollRefusedProbesTheNextSegment(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenDir(dir, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sink := l.sink.(*fileSink)
	n := 1
	if err := l.Append(zeroRec("Before")); err != nil {
		t.Fatal(err)
	}
	for per := sink.size; sink.size+per <= sink.max; n++ {
		if err := l.Append(zeroRec("Before")); err != nil {
			t.Fatal(err)
		}
	}
	waitZeros(l)
	full := &os.PathError{Op: "open", Err: unix.ENOSPC}
	sink.create = func(string) (*os.File, error) { return nil, full }
	if err := l.Append(zeroRec("Refused")); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("Append that rolls: %v, want ENOSPC", err)
	}
	for range 2 {
		if err := l.Retry(); !errors.Is(err, unix.ENOSPC) {
			t.Fatalf("Retry while the next segment cannot be created: %v, want ENOSPC", err)
		}
	}
	sink.create = createSegment
	if err := l.Retry(); err != nil || sink.n != 2 {
		t.Fatalf("Retry once the segment can be created: %v, in segment %d; want nil in segment 2", err, sink.n)
	}
	appendN(t, l, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkTrail(t, dir, n+10)
}

// TestRollSyncFailureFailsForGood: an fsync of the roll that fails with
// ENOSPC (as NFS, or a file system that allocates blocks only when it
// writes pages back, reports a write it could not store) is not a write
// refused at the call: pages written before may be lost, and the report
// is given once. The trail stays failed, though the next segment could
// be created and the fsync would pass now.
func TestRollSyncFailureFailsForGood(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenDir(dir, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sink := l.sink.(*fileSink)
	if err := l.Append(zeroRec("Before")); err != nil {
		t.Fatal(err)
	}
	for per := sink.size; sink.size+per <= sink.max; {
		if err := l.Append(zeroRec("Before")); err != nil {
			t.Fatal(err)
		}
	}
	waitZeros(l)
	sink.fsync = func(f *os.File) error { return &os.PathError{Op: "sync", Path: f.Name(), Err: unix.ENOSPC} }
	if err := l.Append(zeroRec("Refused")); !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("Append that rolls: %v, want ENOSPC", err)
	}
	sink.fsync = nil
	if err := l.Retry(); err == nil {
		t.Fatal("Retry after a failed fsync succeeded")
	}
	if err := l.Append(zeroRec("After")); err == nil {
		t.Fatal("Append after a failed fsync succeeded")
	}
}

// commitBatch commits recs as one batch of l, as the leader of a group
// commit would, and returns the batch's error.
func commitBatch(l *Log, recs ...*Record) error {
	batch := make([]*entry, len(recs))
	for i, r := range recs {
		batch[i] = &entry{rec: r, head: appendRecordHead(nil, r), done: make(chan error, 1)}
	}
	l.mu.Lock()
	l.leading = true
	l.mu.Unlock()
	err := l.safeCommit(batch)
	low := l.roomAfter(err)
	l.mu.Lock()
	l.passLead(err, low)
	l.mu.Unlock()
	return err
}

// TestRefusedBatchKeepsItsWholeLines: a batch cut short after its first
// line is refused, but that line, which a reader following the trail has
// read, stays as the record it read; the records appended once there is
// room follow it. The reader then reads the trail as one intact chain,
// the answered records included, as does verify.
func TestRefusedBatchKeepsItsWholeLines(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenDir(dir, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sink := l.sink.(*fileSink)
	for range 2 {
		if err := l.Append(zeroRec("Before")); err != nil {
			t.Fatal(err)
		}
	}
	var read bytes.Buffer
	r := NewSegmentReader(dir)
	defer r.Close()
	follow := func() {
		t.Helper()
		if err := r.Next(func(b []byte) error {
			read.Write(b)
			read.WriteByte('\n')
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	follow()
	waitZeros(l)
	per := sink.size / 2
	lift := limitFileSize(t, uint64(sink.size+per+per/2))
	if err := commitBatch(l, zeroRec("Refused"), zeroRec("Refused"), zeroRec("Refused")); !errors.Is(err, unix.EFBIG) {
		t.Fatalf("a batch past the limit: %v, want EFBIG", err)
	}
	follow() // the refused batch's first line, whole
	lift()
	if err := l.Retry(); err != nil {
		t.Fatalf("Retry once there is room: %v", err)
	}
	for range 2 {
		if err := l.Append(zeroRec("After")); err != nil {
			t.Fatal(err)
		}
	}
	follow()
	c := NewLogCheck(nil)
	if err := c.Read(bytes.NewReader(read.Bytes())); err != nil {
		t.Fatal(err)
	}
	if c.Verified() != 5 || c.Problems() != nil {
		t.Fatalf("the reader's copy: %d records verified (want 5), problems %v:\n%s", c.Verified(), c.Problems(), read.Bytes())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkTrail(t, dir, 5)
}

// TestFullDiskRefusesCallsBeforeTheirChange: once the zeros ahead of a
// segment's records cannot be extended (a full disk) and less than the
// reserve of them is left, Retry, which every call asks before it begins,
// refuses new calls while the records of calls under way still fit: no
// Append fails, so no call that changed something has it refused after.
// Once there is room, Retry makes more and the trail goes on.
func TestFullDiskRefusesCallsBeforeTheirChange(t *testing.T) {
	dir := t.TempDir()
	l, s, n, lift := fillToReserve(t, dir)
	err := l.Err()
	var low *errLowRoom
	if !errors.As(err, &low) || !errors.Is(err, unix.EFBIG) || low.left <= 0 || low.left >= s.reserve() {
		t.Fatalf("Err with the zeros nearly used up: %v; want the room left (0 < left < %d) and EFBIG", err, s.reserve())
	}
	obs := &zeroObserver{}
	l.Observe(obs)
	if err := l.Retry(); !errors.Is(err, unix.EFBIG) {
		t.Fatalf("Retry while there is still no room: %v, want EFBIG", err)
	}
	if obs.failed.Load() == 0 {
		t.Error("the zeros Retry's check could not write were not reported (kms_audit_prezero_failures_total)")
	}
	// The calls under way when the room ran low still have theirs.
	for range 3 {
		if err := l.Append(zeroRec("UnderWay")); err != nil {
			t.Fatalf("Append of a call under way: %v", err)
		}
	}
	goesOnWithRoom(t, l, lift, dir, 20, n+3+20)
}

// TestStartOnFullDiskRefusesCalls: a trail opened where no zeros can be
// written ahead of its records (a full disk) refuses calls from the
// first, before any changes something; once there is room, Retry lets
// them in.
func TestStartOnFullDiskRefusesCalls(t *testing.T) {
	dir := t.TempDir()
	writeTrail(t, dir, 64<<10, 3)
	fi, err := os.Stat(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	lift := limitFileSize(t, uint64(fi.Size()))
	l, err := OpenDir(dir, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var low *errLowRoom
	if err := l.Err(); !errors.As(err, &low) || !errors.Is(err, unix.EFBIG) {
		t.Fatalf("Err of a trail opened on a full disk: %v, want its room low for EFBIG", err)
	}
	if err := l.Retry(); !errors.Is(err, unix.EFBIG) {
		t.Fatalf("Retry with no room: %v, want EFBIG", err)
	}
	goesOnWithRoom(t, l, lift, dir, 5, 8)
}

// TestLittleRoomIsUsedUpToTheReserve: zeros refused partway for want of
// room (a disk with less room than an extension of them) keep what they
// wrote, and records go on over all of it: new calls are refused only
// once less than the reserve is left of the room there was, not as soon
// as less than the reserve is left of the zeros written before. (Counted
// from those, a disk with a few MiB free refused calls, or made each pay
// a check, while it had room for thousands of records.)
func TestLittleRoomIsUsedUpToTheReserve(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenDir(dir, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := l.sink.(*fileSink)
	waitZeros(l)
	// The next extension gets three quarters of its zeros.
	room := s.zeroed.Load() + s.chunk()*3/4
	lift := limitFileSize(t, uint64(room))
	n := 0
	for ; l.Err() == nil; n++ {
		if n > 1000 {
			t.Fatal("the trail took 1000 records past the size limit without refusing calls")
		}
		if err := l.Append(zeroRec("Room")); err != nil {
			t.Fatalf("Append %d, of a call admitted by Retry: %v", n, err)
		}
		waitZeros(l)
		if err := l.Err(); err != nil && s.size <= room-s.reserve() {
			t.Fatalf("Err with %d bytes of room left after the records (the reserve: %d): %v", room-s.size, s.reserve(), err)
		}
	}
	var low *errLowRoom
	if err := l.Err(); !errors.As(err, &low) || !errors.Is(err, unix.EFBIG) || low.left != room-s.size {
		t.Fatalf("Err with the room nearly used up: %v; want the %d bytes left and EFBIG", err, room-s.size)
	}
	if err := l.Retry(); !errors.Is(err, unix.EFBIG) {
		t.Fatalf("Retry while there is still no room: %v, want EFBIG", err)
	}
	goesOnWithRoom(t, l, lift, dir, 20, n+20)
}

// TestCommitFindsRoomAgain: a commit that ends with less than the reserve
// left, the zeros having been refused for want of room, tries again to
// write the reserve, as Retry's check does, before it reports the room
// low: a Retry that finds a commit under way takes that commit's outcome,
// and a disk that has room again must not refuse the calls that wait on
// it.
func TestCommitFindsRoomAgain(t *testing.T) {
	dir := t.TempDir()
	l, s, n, lift := fillToReserve(t, dir)
	// A call under way commits once there is room again. The zeros
	// are written without the log's lock, which the calls enqueuing
	// their records take.
	lift()
	var calls atomic.Int32
	var locked atomic.Bool
	s.zeroing.Lock()
	s.zeros = func(f *os.File, from, to int64) (int64, error) {
		if calls.Add(1) == 1 { // the commit's; the next run in the background
			if !l.mu.TryLock() {
				locked.Store(true)
			} else {
				l.mu.Unlock()
			}
		}
		return writeZeros(f, from, to)
	}
	s.zeroing.Unlock()
	if err := l.Append(zeroRec("UnderWay")); err != nil {
		t.Fatalf("Append of a call under way: %v", err)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("Err after a commit with room again: %v, want nil", err)
	}
	if calls.Load() == 0 || locked.Load() {
		t.Fatalf("%d writes of zeros, the first with the log locked: %v; want it unlocked", calls.Load(), locked.Load())
	}
	appendN(t, l, 20)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkTrail(t, dir, n+1+20)
}

// TestZerosFailingOtherwiseWhileRoomIsLow: once calls are refused for
// want of room, a check (Retry) whose zeros, ahead of those the file has,
// fail otherwise (an I/O error) costs only speed, as such a failure of
// the zeros does elsewhere: the records are appended after them, and the
// trail is not failed for good.
func TestZerosFailingOtherwiseWhileRoomIsLow(t *testing.T) {
	dir := t.TempDir()
	l, s, n, lift := fillToReserve(t, dir)
	lift()
	s.zeroing.Lock()
	s.zeros = func(_ *os.File, from, _ int64) (int64, error) {
		return from, &os.PathError{Op: "write", Path: "zeros", Err: unix.EIO}
	}
	s.zeroing.Unlock()
	if err := l.Retry(); err != nil {
		t.Fatalf("Retry with room, the zeros failing with EIO: %v, want nil (records appended)", err)
	}
	appendN(t, l, 20)
	if err := l.Err(); err != nil {
		t.Fatalf("Err after appending past the zeros: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkTrail(t, dir, n+20)
}

// fillToReserve opens a trail in dir in segments of 64 KiB, limits the
// size of the files this process writes to the end of the zeros it wrote
// ahead of its records (a full disk), and appends records one at a time,
// each admitted by Err, until Err reports the room low. It returns the
// log, its sink, the records appended and a function that lifts the limit.
func fillToReserve(t *testing.T, dir string) (*Log, *fileSink, int, func()) {
	t.Helper()
	l, err := OpenDir(dir, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := l.sink.(*fileSink)
	waitZeros(l)
	lift := limitFileSize(t, uint64(s.zeroed.Load()))
	n := 0
	for ; l.Err() == nil; n++ {
		if n > 1000 {
			t.Fatal("the trail took 1000 records past the size limit without refusing calls")
		}
		if err := l.Append(zeroRec("Before")); err != nil {
			t.Fatalf("Append %d, of a call admitted by Err: %v", n, err)
		}
		waitZeros(l) // the extension tried in the background has failed
	}
	return l, s, n, lift
}

// goesOnWithRoom lifts the size limit (lift), checks that Retry lets
// calls in again, appends more records, closes the log and checks that
// the trail in dir holds want records as one chain.
func goesOnWithRoom(t *testing.T, l *Log, lift func(), dir string, more, want int) {
	t.Helper()
	lift()
	if err := l.Retry(); err != nil {
		t.Fatalf("Retry once there is room: %v", err)
	}
	appendN(t, l, more)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	checkTrail(t, dir, want)
}
