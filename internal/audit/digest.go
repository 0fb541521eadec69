package audit

import (
	"bufio"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Digests anchor the chain, as CloudTrail's digest files do: from time to
// time the server signs the sequence number and hash of the newest record
// with an Ed25519 key and stores the digest apart from the records (a
// file, or a table). A chain alone cannot show that its newest records
// were cut off; a digest can, back to the last digest: the chain must
// still hold a record with that sequence number and hash. The public key
// is kept beside the trail, so anyone can check the digests without the
// server's secrets.

// Digest is one signed statement of the chain's head. A digest of a chain
// in PostgreSQL also names the head of the chain registry as it was when
// signed (registry.go): its number of entries and the last one's hash.
type Digest struct {
	Sequence   uint64 `json:"sequence"`
	Hash       string `json:"hash"`
	Time       string `json:"time"`
	Chains     uint64 `json:"chains,omitempty"`
	ChainsHash string `json:"chainsHash,omitempty"`
	Signature  string `json:"signature"` // base64 Ed25519 over signedBytes
}

// signedBytes is what the signature covers: version 1 without the
// registry's head, version 2 with it, so that stripping the head from a
// digest breaks its signature.
func (d *Digest) signedBytes() []byte {
	head := strconv.FormatUint(d.Sequence, 10) + "\n" + d.Hash + "\n" + d.Time + "\n"
	if d.Chains == 0 && d.ChainsHash == "" {
		return []byte("openkms audit digest v1\n" + head)
	}
	return []byte("openkms audit digest v2\n" + head + strconv.FormatUint(d.Chains, 10) + "\n" + d.ChainsHash + "\n")
}

// signatureValid reports whether d is signed by pub.
func (d *Digest) signatureValid(pub ed25519.PublicKey) bool {
	sig, err := base64.StdEncoding.DecodeString(d.Signature)
	return err == nil && ed25519.Verify(pub, d.signedBytes(), sig)
}

// A digestSink stores digests: a file (OpenDigester) or PostgreSQL
// (OpenPostgresDigester).
type digestSink interface {
	// write stores the digest of record seq, line being its JSON. It
	// returns once the digest is durable.
	write(seq uint64, line []byte) error
	close() error
}

// Digester signs the head of a Log and stores the digest. It is safe for
// concurrent use.
type Digester struct {
	mu     sync.Mutex
	out    digestSink
	chain  string // the chain it signs for; "" for a log file
	key    ed25519.PrivateKey
	last   uint64
	marked func(line []byte) error // nil: no high-water mark kept
	// registry returns the chain registry's head, for a chain in
	// PostgreSQL; nil for a log file.
	registry func() (uint64, string, error)
}

// OnDigest makes d call fn with each digest's line once the digest is
// stored, for the caller to keep it as the trail's high-water mark apart
// from the trail (MarkRecord, MarkFile). An error of fn is Write's.
func (d *Digester) OnDigest(fn func(line []byte) error) { d.marked = fn }

// The high-water mark of a data directory's trail: a copy of its newest
// digest, signed as every digest is, kept in the key store under
// MarkRecord and in the data directory as MarkFile. Cutting off the
// newest records, or the newest digests with them, leaves the mark naming
// a digest and a record the trail no longer holds.
const (
	MarkRecord = "meta/audit-head"
	MarkFile   = "audit-head.json"
)

// CheckMark checks a high-water mark (the line of a digest) against a log
// whose records' hashes by sequence number are given, whose chain ends at
// record end (LogCheck.End) and whose newest digest names record newest
// (0 if it has none). It returns a problem if the mark is not signed by
// pub or names what the trail no longer holds; the problem's Line is 0,
// as the mark is a line of neither the log nor its digest file.
func CheckMark(mark []byte, pub ed25519.PublicKey, hashes *Named, end, newest uint64, where string) *Problem {
	p := &Problem{Digest: true}
	var dg Digest
	switch {
	case json.Unmarshal(mark, &dg) != nil:
		p.Reason = fmt.Sprintf("the high-water mark in %s is not a digest", where)
	case pub == nil || !dg.signatureValid(pub):
		p.Reason = fmt.Sprintf("the high-water mark in %s has a signature that does not verify", where)
	case dg.Sequence > end && !hashes.holds(dg.Sequence):
		p.Reason = fmt.Sprintf("the high-water mark in %s names record %d, but the log ends at record %d (records were cut off)", where, dg.Sequence, end)
	case !hashes.holds(dg.Sequence):
		p.Reason = fmt.Sprintf("the high-water mark in %s names record %d, which the log does not hold (it was removed)", where, dg.Sequence)
	case !hashes.claimsHash(dg.Sequence, dg.Hash):
		p.Reason = fmt.Sprintf("the high-water mark in %s does not match record %d", where, dg.Sequence) + crowdedNote(hashes, dg.Sequence)
	case newest < dg.Sequence:
		p.Reason = fmt.Sprintf("the high-water mark in %s names a digest of record %d, but the newest digest names record %d (digests were removed)", where, dg.Sequence, newest)
	default:
		return nil
	}
	return p
}

// crowdedNote is what a digest or a mark that does not match record seq
// adds when more records carry that number than their claims were kept
// of (Named.crowded): the record it names may be among those left out.
func crowdedNote(hashes *Named, seq uint64) string {
	if !hashes.crowded(seq) {
		return ""
	}
	return fmt.Sprintf(" as far as it was looked for: more than %d records carry that number with hashes of their own (records were inserted)", maxOtherClaims+1)
}

// OpenDigester opens (creating if needed) the digest file at path. It
// reads only the last digest, to go on from it; kms audit verify checks
// them all. A last line cut short (a machine crash while it was written)
// was never acknowledged and is cut off, so that the next digest starts a
// line of its own.
func OpenDigester(path string, key ed25519.PrivateKey) (*Digester, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	last, end, err := lastDigest(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Digester{out: &digestFile{f: f, end: end}, key: key, last: last}, nil
}

// lastDigest returns the record the last digest of f names (0 if it has
// none) and the size of f, after cutting off an incomplete last line.
func lastDigest(f *os.File) (uint64, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	b, end, err := lastLine(f, fi.Size())
	if err != nil {
		return 0, 0, err
	}
	if end != fi.Size() {
		if err := f.Truncate(end); err != nil {
			return 0, 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, 0, err
		}
	}
	if end == 0 {
		return 0, 0, nil
	}
	var dg Digest
	if err := json.Unmarshal(b, &dg); err != nil {
		return 0, 0, fmt.Errorf("digest file: the last digest is damaged: %w (run kms audit verify)", err)
	}
	return dg.Sequence, end, nil
}

// Write signs the log's head and stores the digest, unless nothing was
// logged since the last one.
func (d *Digester) Write(l *Log, now time.Time) error {
	if l.Chain() != d.chain {
		return fmt.Errorf("audit: the digester of chain %q cannot sign chain %q", d.chain, l.Chain())
	}
	// The head is read under the lock, so that two writers at once (the
	// ticker and a backup) cannot sign an older head after a newer one.
	d.mu.Lock()
	defer d.mu.Unlock()
	seq, hash := l.Head()
	if seq == 0 || seq == d.last {
		return nil
	}
	if err := l.durable(); err != nil {
		return err
	}
	dg := Digest{Sequence: seq, Hash: hash, Time: FormatTime(now)}
	if d.registry != nil {
		var err error
		if dg.Chains, dg.ChainsHash, err = d.registry(); err != nil {
			return err
		}
	}
	dg.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(d.key, dg.signedBytes()))
	b, err := json.Marshal(&dg)
	if err != nil {
		return err
	}
	if err := d.out.write(seq, b); err != nil {
		return err
	}
	d.last = seq
	if d.marked != nil {
		return d.marked(b)
	}
	return nil
}

// ParseDigest parses a digest's line, without verifying it.
func ParseDigest(b []byte) (*Digest, error) {
	var dg Digest
	if err := json.Unmarshal(b, &dg); err != nil {
		return nil, err
	}
	return &dg, nil
}

// Close closes the digest file. It leaves a PostgreSQL pool open: the pool
// is the caller's.
func (d *Digester) Close() error { return d.out.close() }

// digestFile appends digests to a file, one line each.
type digestFile struct {
	f   *os.File
	end int64 // the size of f after its last digest stored
	// torn: a write or fsync failed since, and may have left part of its
	// line after end (a full disk).
	torn bool
}

// write appends line, first cutting off what a failed write left after
// the last digest stored, so that each digest is a line of its own.
func (w *digestFile) write(_ uint64, line []byte) error {
	if w.torn {
		if err := w.f.Truncate(w.end); err != nil {
			return err
		}
		w.torn = false
	}
	n, err := w.f.Write(append(line, '\n'))
	if err == nil {
		err = w.f.Sync()
	}
	if err != nil {
		w.torn = true
		return err
	}
	w.end += int64(n)
	return nil
}

func (w *digestFile) close() error { return w.f.Close() }

// VerifyDigests checks every digest's signature with pub and that the log
// (whose records' hashes by sequence number are given, and whose chain
// ends at record end, LogCheck.End) still holds the record each digest
// names: a record carrying that sequence number and hash, wherever it
// stands. It returns the number of digests checked and the first problem.
func VerifyDigests(digests io.Reader, pub ed25519.PublicKey, hashes *Named, end uint64) (int, *Problem, error) {
	n, _, problems, err := VerifyDigestsAll(digests, pub, hashes, end)
	if len(problems) > 0 {
		return n, problems[0], err
	}
	return n, nil, err
}

// VerifyDigestsAll is VerifyDigests reporting every problem: it returns
// the number of digests read, the number that verify, and the problems,
// the first 1,000 of them (each digest read that does not verify is one:
// the others are counted by the difference), so that a digest file of
// many lines that are not digests is not held in memory as problems.
// The signatures, most of the work, are checked on every core: the
// digests are read in batches, whose lines are decoded and checked in
// parallel and then judged in order.
func VerifyDigestsAll(digests io.Reader, pub ed25519.PublicKey, hashes *Named, end uint64) (int, int, []*Problem, error) {
	n, good := 0, 0
	var problems []*Problem
	br := bufio.NewReader(digests)
	const batch = 1024
	lines := make([][]byte, 0, batch)
	checked := make([]checkedDigest, batch)
	workers := runtime.GOMAXPROCS(0)
	for {
		lines = lines[:0]
		var err error
		for len(lines) < batch {
			var b []byte
			if b, err = br.ReadBytes('\n'); err != nil {
				break // a last line without its newline is not read
			}
			lines = append(lines, b)
		}
		checkDigests(lines, checked, pub, workers)
		for i := range lines {
			n++
			dg, problem := &checked[i].dg, (*Problem)(nil)
			switch {
			case !checked[i].json:
				problem = &Problem{Line: n, Digest: true, Reason: fmt.Sprintf("digest %d is not JSON", n)}
			case !checked[i].signed:
				problem = &Problem{Line: n, Digest: true, Reason: fmt.Sprintf("digest %d has a signature that does not verify", n)}
			case dg.Sequence > end && !hashes.holds(dg.Sequence):
				problem = &Problem{Line: n, Digest: true, Reason: fmt.Sprintf("digest %d names record %d, but the log ends at record %d (records were cut off)", n, dg.Sequence, end)}
			case !hashes.holds(dg.Sequence):
				problem = &Problem{Line: n, Digest: true, Reason: fmt.Sprintf("digest %d names record %d, which the log does not hold (it was removed)", n, dg.Sequence)}
			case !hashes.claimsHash(dg.Sequence, dg.Hash):
				problem = &Problem{Line: n, Digest: true, Reason: fmt.Sprintf("digest %d does not match record %d", n, dg.Sequence) + crowdedNote(hashes, dg.Sequence)}
			}
			if problem != nil {
				if len(problems) < maxProblems {
					problems = append(problems, problem)
				}
			} else {
				good++
			}
		}
		switch {
		case err == io.EOF:
			return n, good, problems, nil
		case err != nil:
			return n, good, problems, err
		}
	}
}

// checkedDigest is a digest line decoded, and whether its signature
// verifies.
type checkedDigest struct {
	dg     Digest
	json   bool // the line is a JSON digest
	signed bool // and its signature verifies
}

// checkDigests decodes lines into out and checks their signatures with
// pub, spread over workers goroutines.
func checkDigests(lines [][]byte, out []checkedDigest, pub ed25519.PublicKey, workers int) {
	check := func(i int) {
		c := &out[i]
		*c = checkedDigest{}
		c.json = json.Unmarshal(lines[i], &c.dg) == nil
		c.signed = c.json && c.dg.signatureValid(pub)
	}
	per := (len(lines) + workers - 1) / max(workers, 1)
	if workers <= 1 || len(lines) < 2*workers {
		per = len(lines)
	}
	var wg sync.WaitGroup
	for start := 0; start < len(lines); start += per {
		end := min(start+per, len(lines))
		wg.Go(func() {
			for i := start; i < end; i++ {
				check(i)
			}
		})
	}
	wg.Wait()
}

var errStop = errors.New("stop")

// MarshalPublicKey returns pub as a PEM "PUBLIC KEY" block (PKIX), the
// form of audit.pub and of kms_audit_keys.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKey parses an Ed25519 public key in PEM (PKIX), as
// MarshalPublicKey writes it.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("not a PEM public key")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	pub, ok := k.(ed25519.PublicKey)
	if err != nil || !ok {
		return nil, errors.New("not an Ed25519 public key")
	}
	return pub, nil
}
