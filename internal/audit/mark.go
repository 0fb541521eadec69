package audit

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// CheckResume checks a data directory's trail against its high-water
// mark before a server goes on appending to it; seq and hash are the
// trail's last record (OpenDirChecked), mark the line of the newest digest
// as the key store keeps it (MarkRecord), pub the trail's signing key and
// digests the path of the digest file. It only reads.
//
// Without it a server would carry on from a trail whose newest records
// (and digests) were cut off, or replaced, while it was stopped, and its
// next digest would overwrite the mark that shows it, so that kms audit
// verify later reports the trail intact. It refuses, with the reason, a
// mark that is not signed by pub, that names a record past the end of the
// trail or one whose hash the trail does not hold, or a digest newer than
// the digest file's last. A mark naming a record in a segment no longer
// in dir (archived) is not checked here: kms audit verify --archive-dir
// checks it.
func CheckResume(dir string, seq uint64, hash string, mark []byte, pub ed25519.PublicKey, digests string) error {
	var dg Digest
	if json.Unmarshal(mark, &dg) != nil || pub == nil || !dg.signatureValid(pub) {
		return fmt.Errorf("the high-water mark in the key store (%s) is not a digest signed by the trail's key", MarkRecord)
	}
	cut := func(what string) error {
		return fmt.Errorf("the high-water mark in the key store names record %d, but %s: the trail was cut off or edited while the server was stopped (run kms audit verify; restore the data directory from a backup)", dg.Sequence, what)
	}
	switch {
	case dg.Sequence > seq:
		return cut(fmt.Sprintf("the trail ends at record %d", seq))
	case dg.Sequence == seq && dg.Hash != hash:
		return cut("the trail's record of that number is another")
	case dg.Sequence < seq:
		h, found, err := recordHash(dir, dg.Sequence)
		if err != nil {
			return err
		}
		if found && h != dg.Hash {
			return cut("the trail's record of that number is another")
		}
	}
	newest, err := newestDigest(digests)
	if err != nil {
		return err
	}
	if newest < dg.Sequence {
		return cut(fmt.Sprintf("the newest digest in %s names record %d", filepath.Base(digests), newest))
	}
	return nil
}

// newestDigest returns the record the last complete digest of the file
// at path names, 0 if it has none.
func newestDigest(path string) (uint64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	b, _, err := lastLine(f, fi.Size())
	if err != nil || b == nil {
		return 0, err
	}
	var dg Digest
	if err := json.Unmarshal(b, &dg); err != nil {
		return 0, fmt.Errorf("%s: the last digest is damaged: %w (run kms audit verify)", filepath.Base(path), err)
	}
	return dg.Sequence, nil
}

// recordHash returns the hash that record seq of dir's trail claims,
// found by its position in the segment whose first record is at or before
// it (a segment's records are numbered in a row); found is false if no
// segment in dir holds it.
func recordHash(dir string, seq uint64) (hash string, found bool, err error) {
	segs, err := Segments(dir)
	if err != nil {
		return "", false, err
	}
	for i := len(segs) - 1; i >= 0; i-- {
		hash, found, err := segmentRecordHash(segs[i], seq)
		if err != nil || found {
			return hash, found, err
		}
	}
	return "", false, nil
}

// segmentRecordHash is recordHash in one segment: found is false if the
// segment's first record comes after seq.
func segmentRecordHash(s Segment, seq uint64) (string, bool, error) {
	f, err := os.Open(s.Path)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(SegmentData(f), 1<<20)
	damaged := func(what string) error {
		return fmt.Errorf("%s is damaged: %s (run kms audit verify)", s.Name(), what)
	}
	line, err := readLine(br)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		// No complete record: the segment a crash left with its first
		// line cut short, which the start cuts off after this check.
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	hash, first, ok := lineHead(line)
	switch {
	case !ok:
		return "", false, damaged("its first line is not a record")
	case first > seq:
		return "", false, nil
	case first == seq:
		return hash, true, nil
	}
	for n := seq - first - 1; n > 0; n-- {
		if err := skipLine(br); err != nil {
			return "", false, damaged(fmt.Sprintf("it ends before record %d", seq))
		}
	}
	if line, err = readLine(br); err != nil {
		return "", false, damaged(fmt.Sprintf("it ends before record %d", seq))
	}
	hash, got, ok := lineHead(line)
	if !ok || got != seq {
		return "", false, damaged(fmt.Sprintf("record %d is not where its number puts it", seq))
	}
	return hash, true, nil
}

// readLine returns the next complete line of br, without its newline.
func readLine(br *bufio.Reader) ([]byte, error) {
	b, err := br.ReadBytes('\n')
	if err == io.EOF && len(b) > 0 {
		return nil, io.ErrUnexpectedEOF // a last line cut short is not a record
	}
	if err != nil {
		return nil, err
	}
	return b[:len(b)-1], nil
}

// skipLine reads past the next newline of br.
func skipLine(br *bufio.Reader) error {
	for {
		_, err := br.ReadSlice('\n')
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}
