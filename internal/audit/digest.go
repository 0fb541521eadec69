package audit

import (
	"bufio"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// Digests anchor the chain, as CloudTrail's digest files do: from time to
// time the server signs the sequence number and hash of the newest record
// with an Ed25519 key and appends the digest to a separate file. A chain
// alone cannot show that its newest records were cut off; a digest can,
// back to the last digest: the log must still hold a record with that
// sequence number and hash. The public key is written beside the log, so
// anyone can check the digests without the server's secrets.

// Digest is one signed statement of the chain's head.
type Digest struct {
	Sequence  uint64 `json:"sequence"`
	Hash      string `json:"hash"`
	Time      string `json:"time"`
	Signature string `json:"signature"` // base64 Ed25519 over signedBytes
}

func (d *Digest) signedBytes() []byte {
	return []byte("openkms audit digest v1\n" + strconv.FormatUint(d.Sequence, 10) + "\n" + d.Hash + "\n" + d.Time + "\n")
}

// Head returns the sequence number and hash of the newest record written.
func (l *Log) Head() (uint64, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, l.last
}

// Digester appends signed digests to a file.
type Digester struct {
	mu   sync.Mutex
	f    *os.File
	key  ed25519.PrivateKey
	last uint64
}

// OpenDigester opens (creating if needed) the digest file at path.
func OpenDigester(path string, key ed25519.PrivateKey) (*Digester, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	d := &Digester{f: f, key: key}
	err = readDigests(f, func(dg *Digest) error { d.last = dg.Sequence; return nil })
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// Write signs the log's head and appends the digest, unless nothing was
// logged since the last one.
func (d *Digester) Write(l *Log, now time.Time) error {
	seq, hash := l.Head()
	d.mu.Lock()
	defer d.mu.Unlock()
	if seq == 0 || seq == d.last {
		return nil
	}
	dg := Digest{Sequence: seq, Hash: hash, Time: FormatTime(now)}
	dg.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(d.key, dg.signedBytes()))
	b, err := json.Marshal(&dg)
	if err != nil {
		return err
	}
	if _, err := d.f.Write(append(b, '\n')); err != nil {
		return err
	}
	if err := d.f.Sync(); err != nil {
		return err
	}
	d.last = seq
	return nil
}

// Close closes the digest file.
func (d *Digester) Close() error { return d.f.Close() }

func readDigests(r io.Reader, fn func(*Digest) error) error {
	br := bufio.NewReader(r)
	for {
		b, err := br.ReadBytes('\n')
		if err == io.EOF {
			return nil // a partial last digest was never complete
		}
		if err != nil {
			return err
		}
		var dg Digest
		if err := json.Unmarshal(b, &dg); err != nil {
			return fmt.Errorf("digest file: %w", err)
		}
		if err := fn(&dg); err != nil {
			return err
		}
	}
}

// VerifyDigests checks every digest's signature with pub and that the log
// (whose records' hashes by sequence number are given) still holds the
// record each digest names. It returns the number of digests checked and
// the first problem.
func VerifyDigests(digests io.Reader, pub ed25519.PublicKey, hashes map[uint64]string, records uint64) (int, *Problem, error) {
	n := 0
	var problem *Problem
	err := readDigests(digests, func(dg *Digest) error {
		n++
		sig, err := base64.StdEncoding.DecodeString(dg.Signature)
		switch {
		case err != nil || !ed25519.Verify(pub, dg.signedBytes(), sig):
			problem = &Problem{Line: n, Reason: fmt.Sprintf("digest %d has a signature that does not verify", n)}
		case dg.Sequence > records:
			problem = &Problem{Line: n, Reason: fmt.Sprintf("digest %d names record %d, but the log ends at record %d (records were cut off)", n, dg.Sequence, records)}
		case hashes[dg.Sequence] != dg.Hash:
			problem = &Problem{Line: n, Reason: fmt.Sprintf("digest %d does not match record %d", n, dg.Sequence)}
		}
		if problem != nil {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return n, problem, err
}

var errStop = errors.New("stop")

// Hashes reads a log and returns each record's hash by sequence number and
// the number of records.
func Hashes(r io.Reader) (map[uint64]string, uint64, error) {
	out := map[uint64]string{}
	br := bufio.NewReader(r)
	var n uint64
	for {
		b, err := br.ReadBytes('\n')
		if err == io.EOF {
			return out, n, nil
		}
		if err != nil {
			return nil, 0, err
		}
		var ln line
		if err := json.Unmarshal(b, &ln); err != nil {
			return nil, 0, err
		}
		n++
		out[n] = ln.Hash
	}
}
