package auditcli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// dirSource is the trail of an embedded server's data directory: one
// chain in its segment files (audit.log, audit-000002.log, ...), its
// digests in audit-digests.log and their public key in audit.pub. The
// files are append-only and read without locks, so the server may be
// running. Segments moved to archive directories are read from there.
type dirSource struct {
	dir      string
	archives []string // directories holding archived segments
	// archive is set when dir is itself an archive: a copy of the trail's
	// first segments, whose later records are elsewhere.
	archive bool
	reader  *audit.SegmentReader // read by next
	// live is set when a server is known to be running on the trail (read
	// over its API): its newest records may be younger than its first
	// digest.
	live bool
	// running is set when the operator says a server runs on the data
	// directory (--live): a kms.db found locked is then taken to be held
	// by it, and its mark is left unchecked. Without it, a locked kms.db
	// is a failure: anyone who can open the file can lock it.
	running bool
}

func openDir(dir string, archives []string, archive, running bool) (*dirSource, error) {
	segs, err := audit.MergeSegments(append([]string{dir}, archives...)...)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return nil, fmt.Errorf("open %s: no audit trail (no segment file such as %s)", filepath.Join(dir, audit.FirstSegment), audit.FirstSegment)
	}
	return &dirSource{dir: dir, archives: archives, archive: archive, running: running}, nil
}

func (s *dirSource) chains() bool { return false }

func (s *dirSource) close() error {
	if s.reader != nil {
		return s.reader.Close()
	}
	return nil
}

func (s *dirSource) verify(_ context.Context, pub ed25519.PublicKey) ([]audit.Report, error) {
	a, err := s.readAnchors()
	if err != nil {
		return nil, err
	}
	defer a.close()
	segs, err := audit.MergeSegments(append([]string{s.dir}, s.archives...)...)
	if err != nil {
		return nil, err
	}
	// The log is checked as it is read, keeping the hashes of only the
	// records that the digests and the marks name.
	check := audit.NewLogCheck(a.named())
	starts, err := audit.CheckSegments(segs, check)
	if err != nil {
		return nil, err
	}
	problems := check.Problems()
	var notes []string
	if check.EndsIncomplete() && s.serverRunning(a) {
		// A running server writes a batch of lines with one write, which
		// a read at that moment may see in part.
		problems = check.DropIncomplete()
		notes = append(notes, fmt.Sprintf("the last line of %s is incomplete: the running server is writing it, so it was not checked", segs[len(segs)-1].Name()))
	}
	if len(segs) > 1 || len(segs) == 1 && segs[0].N > 1 {
		for _, p := range problems {
			if p.Line > 0 && !p.Digest {
				name, line := audit.Locate(segs, starts, p.Line)
				p.Reason += fmt.Sprintf(" (%s, line %d)", name, line)
			}
		}
	}
	problems = append(audit.SegmentGaps(segs), problems...)
	first, err := firstEventTime(segs[0])
	if err != nil {
		return nil, err
	}
	return s.report(check, problems, notes, first, a, pub)
}

// serverRunning reports whether a server is taken to be running on the
// trail: read over its API, or a kms.db found locked with --live.
func (s *dirSource) serverRunning(a *anchors) bool {
	return s.live || s.running && errors.Is(a.storeErr, boltstore.ErrLocked)
}

// readAnchors reads the digests and the high-water marks, before the log.
// A running server appends a record, then a digest naming it, then the
// mark naming that digest: reading them in the other order, each read
// finds at least what the one before it names.
func (s *dirSource) readAnchors() (*anchors, error) {
	var a anchors
	a.storeMark, a.storeErr = boltstore.ReadValue(filepath.Join(s.dir, "kms.db"), []byte(audit.MarkRecord), time.Second)
	a.fileMark, _ = os.ReadFile(filepath.Join(s.dir, audit.MarkFile))
	f, err := os.Open(filepath.Join(s.dir, "audit-digests.log"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &a, nil
	case err != nil:
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	a.digests = io.NewSectionReader(f, 0, fi.Size())
	a.digestFile = f
	return &a, nil
}

// report is the report on a log that check checked, with the problems
// and notes found in it, and first the eventTime of its first record: the
// digests and the marks are checked against it.
func (s *dirSource) report(check *audit.LogCheck, problems []*audit.Problem, notes []string, first string, a *anchors, pub ed25519.PublicKey) ([]audit.Report, error) {
	r := audit.Report{Records: uint64(check.Verified()), Notes: notes, More: check.Dropped()}
	// The digests are checked even on a broken chain: every break is
	// reported, not only the first.
	if err := s.verifyDigests(check, first, a, pub, &r); err != nil {
		return nil, err
	}
	// Breaks of the chain first, then those of the digests.
	all := append(problems, r.Later...)
	r.Problem, r.Later = nil, nil
	for _, p := range all {
		if r.Problem == nil {
			r.Problem = p
		} else {
			r.Later = append(r.Later, p)
		}
	}
	return []audit.Report{r}, nil
}

// anchors are what a data directory's log is checked against, read
// before it: the digests and the high-water marks.
type anchors struct {
	storeMark []byte // the mark in kms.db
	storeErr  error  // why there is none
	fileMark  []byte // audit-head.json, or nil
	// digests are the bytes audit-digests.log held when it was read
	// first, read from the file as needed: the digests of a long-lived
	// trail are too many to hold.
	digests    *io.SectionReader // nil if there is no digest file
	digestFile *os.File
}

func (a *anchors) close() {
	if a.digestFile != nil {
		a.digestFile.Close()
	}
}

// digestLines reads the lines of the digests that keep accepts. keep sees
// each line once, with its newline if it has one.
func (a *anchors) digestLines(keep func(line []byte) bool) io.Reader {
	if a.digests == nil {
		return bytes.NewReader(nil)
	}
	return &keptLines{br: bufio.NewReader(io.NewSectionReader(a.digests, 0, a.digests.Size())), keep: keep}
}

// keptLines reads the lines of br that keep accepts.
type keptLines struct {
	br   *bufio.Reader
	keep func([]byte) bool
	line []byte // the rest of the line being read
	err  error  // br's, once it is at its end
}

func (k *keptLines) Read(p []byte) (int, error) {
	for len(k.line) == 0 {
		if k.err != nil {
			return 0, k.err
		}
		var b []byte
		b, k.err = k.br.ReadBytes('\n')
		if len(b) > 0 && k.keep(b) {
			k.line = b
		}
	}
	n := copy(p, k.line)
	k.line = k.line[n:]
	return n, nil
}

// named returns the numbers of the records the digests and the marks
// name, whose hashes are checked against theirs. A line that is not a
// digest names none: it is reported when the digests are checked.
func (a *anchors) named() *audit.Named {
	named := &audit.Named{}
	add := func(ln []byte) {
		if dg, err := audit.ParseDigest(bytes.TrimSpace(ln)); err == nil {
			named.Add(dg.Sequence)
		}
	}
	// A read error here comes again when the digests are checked.
	_, _ = io.Copy(io.Discard, a.digestLines(func(ln []byte) bool { add(ln); return false }))
	add(a.storeMark)
	add(a.fileMark)
	return named
}

// newTrailGrace is how old the first record of a running server's log may
// be without a digest: a server signs its trail's head every few seconds
// (5 by default) and at shutdown.
const newTrailGrace = 30 * time.Second

// verifyDigests checks the signed digests beside the log with pub or else
// with audit.pub, and the log and the digests against the trail's
// high-water mark, kept in the key store and in audit-head.json. check is
// the log's, and first the eventTime of its first record. It adds to
// r.Later every problem, r.Digests the digests that verify, r.Total the
// records, and r.Notes what could not be checked. A log with records and
// no key, or no digests unless it is new, does not verify: cutting off
// the newest records together with the digests, or removing the key, must
// not pass. Nor does one whose kms.db is locked, unless s.running: a lock
// anyone can take must not switch off the check of the mark there.
func (s *dirSource) verifyDigests(check *audit.LogCheck, first string, a *anchors, pub ed25519.PublicKey, r *audit.Report) error {
	// A digest names a record by its sequence number, matched wherever
	// the record stands; records is where the chain ends.
	hashes, records := check.Hashes(), check.End()
	r.Total = check.Lines()
	r.Intact, r.IntactFirst, r.IntactLast = check.Intact()
	add := func(reason string) {
		r.Later = append(r.Later, &audit.Problem{Digest: true, Reason: reason})
	}
	if pub == nil {
		b, err := os.ReadFile(filepath.Join(s.dir, "audit.pub"))
		switch {
		case errors.Is(err, os.ErrNotExist):
			if r.Total > 0 {
				add("audit.pub is missing, so the digests cannot be checked (give the key with --public-key)")
			}
			return nil
		case err != nil:
			return err
		}
		if pub, err = audit.ParsePublicKey(b); err != nil {
			return errors.New("audit.pub is " + err.Error())
		}
	}
	later := 0 // digests of records after an archive's last
	var newest uint64
	digests := a.digestLines(func(ln []byte) bool {
		dg, err := audit.ParseDigest(bytes.TrimSpace(ln))
		switch {
		case err != nil:
		case s.archive && dg.Sequence > records:
			// An archive holds the trail's first segments: digests of
			// later records are checked with the trail that holds them.
			later++
			return false
		case dg.Sequence > newest:
			newest = dg.Sequence
		}
		return true
	})
	count, good, problems, err := audit.VerifyDigestsAll(digests, pub, hashes, records)
	if err != nil {
		return err
	}
	if s.archive {
		if later > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%d signed digests name records after the archive's last (record %d): they are checked with the trail that holds those records", later, records))
		}
		a.storeMark, a.storeErr, a.fileMark = nil, os.ErrNotExist, nil
	}
	r.Digests, r.DigestsRead = good, count
	r.Later = append(r.Later, problems...)
	r.More += uint64(count - good - len(problems)) // the problems not kept
	// The high-water mark: the newest digest as the server last wrote it.
	mark, err := a.storeMark, a.storeErr
	live := s.serverRunning(a)
	if count == 0 && r.Total > 0 && later == 0 {
		// A server signs its trail at shutdown and, running, every few
		// seconds: only a running server's trail whose first record is
		// recent may have no digest yet.
		t, terr := time.Parse(audit.TimeFormat, first)
		if !live || terr != nil || time.Since(t) > newTrailGrace {
			add(fmt.Sprintf("no signed digest covers the log, whose first record is from %s: the digests were removed (audit-digests.log is missing or empty), or the server stopped without signing its trail", first))
		}
	}
	switch {
	case err == nil:
		if p := audit.CheckMark(mark, pub, hashes, records, newest, "kms.db"); p != nil {
			r.Later = append(r.Later, p)
		}
	case errors.Is(err, boltstore.ErrLocked) && s.running:
		r.Notes = append(r.Notes, "the high-water mark in kms.db was not checked: a running server holds the key store (--live; audit-head.json was checked instead, if present)")
	case errors.Is(err, boltstore.ErrLocked):
		// A lock is no proof of a server: anyone who can open kms.db can
		// take one, to have a trail cut back to an older digest pass.
		add("the high-water mark in kms.db could not be checked: kms.db is locked, by a server running on the data directory or by another process (if a server runs on it, give --live to verify without that mark)")
	case errors.Is(err, os.ErrNotExist), errors.Is(err, store.ErrNotFound):
	default:
		r.Notes = append(r.Notes, "the high-water mark in kms.db was not checked: "+err.Error())
	}
	if a.fileMark != nil {
		if p := audit.CheckMark(bytes.TrimSpace(a.fileMark), pub, hashes, records, newest, audit.MarkFile); p != nil {
			r.Later = append(r.Later, p)
		}
	}
	return nil
}

// firstEventTime returns the eventTime of the first record of seg, the
// first segment of a log, or "" if it has none.
func firstEventTime(seg audit.Segment) (string, error) {
	f, err := os.Open(seg.Path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := bufio.NewReader(audit.SegmentData(f)).ReadBytes('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return eventTime(b), nil
}

// eventTime returns the eventTime of the record on line b, or "" if b is
// not a record.
func eventTime(b []byte) string {
	var ln struct {
		Event struct {
			EventTime string `json:"eventTime"`
		} `json:"event"`
	}
	if json.Unmarshal(b, &ln) != nil {
		return ""
	}
	return ln.Event.EventTime
}

// next reads the segments from where the last call stopped, to the last
// complete line. The archived segments come first, once.
func (s *dirSource) next(_ context.Context, keep func(*audit.Record) bool, fn func(record) error) error {
	fn = keepOnly(keep, fn)
	each := func(b []byte) error {
		rec, event, err := audit.ParseLine(b)
		if err != nil {
			return err
		}
		return fn(record{rec: rec, event: event})
	}
	if s.reader == nil {
		// Archived segments that the data directory no longer holds.
		own, err := audit.Segments(s.dir)
		if err != nil {
			return err
		}
		segs, err := audit.MergeSegments(append([]string{s.dir}, s.archives...)...)
		if err != nil {
			return err
		}
		for _, seg := range segs {
			if len(own) > 0 && seg.N >= own[0].N {
				break
			}
			err := audit.ReadClosed(seg.Path, func(r *audit.Record, event json.RawMessage) error {
				return fn(record{rec: r, event: event})
			})
			if err != nil {
				return err
			}
		}
		s.reader = audit.NewSegmentReader(s.dir)
	}
	return s.reader.Next(each)
}
