package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Report is what verifying one chain found.
type Report struct {
	Chain   string
	Records uint64   // records that chain correctly from the first, before Problem
	Digests int      // signed digests that verify, before Problem
	Problem *Problem // the first break, or nil
	// Later are the breaks after Problem: a check takes up the chain
	// again after a break, so that one break does not hide others.
	Later []*Problem
	// Total is the number of records the chain holds, broken or not.
	Total uint64
	// Notes say what could not be checked, without being breaks.
	Notes []string
	// For a log file: the digests read (Digests of them verify), and the
	// records that chain intact after the chain's last break (all of
	// them, if it has none), the sequence numbers of the first and the
	// last of them (LogCheck.Intact).
	DigestsRead                     int
	Intact, IntactFirst, IntactLast uint64
	// More counts the breaks of a log file found past the 1,000 its
	// check keeps (LogCheck.Dropped), which are not in Later.
	More uint64
}

// Problems returns every break r found, the first first.
func (r *Report) Problems() []*Problem {
	if r.Problem == nil {
		return nil
	}
	return append([]*Problem{r.Problem}, r.Later...)
}

// add records a problem: the first is Problem, the others Later.
func (r *Report) add(p *Problem) {
	if r.Problem == nil {
		r.Problem = p
	} else {
		r.Later = append(r.Later, p)
	}
}

// listChains lists every chain named in any of the four tables, ordered by
// id.
const listChains = `SELECT chain FROM (
	SELECT chain FROM kms_audit_chains UNION SELECT chain FROM kms_audit_records
	UNION SELECT chain FROM kms_audit_digests UNION SELECT chain FROM kms_audit_keys) c
	ORDER BY chain COLLATE "C"`

// VerifyPostgres checks every chain in the database of pool, in one
// snapshot: each chain's records from sequence number 1 without gaps,
// their hashes, and its digests (each must name a record of the chain by
// sequence number and hash, and carry a valid signature). Digests are
// checked with pub, or if pub is nil with the key kms_audit_keys holds for
// the chain, which is only as trustworthy as the database. A chain with
// records and no digest is broken unless its first record is within
// ChainDigestGrace of now(), read as the snapshot is taken (time.Now if
// now is nil). Records after a chain's last digest are protected by the
// chain only. It returns a report per chain, ordered by chain id; the
// error is for a failure to read.
func VerifyPostgres(ctx context.Context, pool *pgxpool.Pool, pub ed25519.PublicKey, now func() time.Time) ([]Report, error) {
	if now == nil {
		now = time.Now
	}
	// Read before the snapshot: the digests it holds are at least those
	// written by then.
	read := now()
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var hasRegistry bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('kms_audit_registry') IS NOT NULL`).Scan(&hasRegistry); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	list := listChains
	reg := &registry{hashes: map[uint64]string{}, chains: map[string]int{}}
	if hasRegistry {
		list = listRegisteredChains
		if reg, err = readRegistry(ctx, tx); err != nil {
			return nil, fmt.Errorf("audit: %w", err)
		}
	}
	rows, _ := tx.Query(ctx, list)
	chains, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("audit: list the chains: %w", err)
	}
	rows, _ = tx.Query(ctx, `SELECT chain FROM kms_audit_chains`)
	startedRows, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("audit: list the chains: %w", err)
	}
	started := map[string]bool{}
	for _, c := range startedRows {
		started[c] = true
	}
	reports := make([]Report, 0, len(chains)+1)
	if len(reg.problems) > 0 {
		r := Report{Chain: RegistryReport, Total: reg.last}
		for _, p := range reg.problems {
			r.add(p)
		}
		reports = append(reports, r)
	}
	for _, chain := range chains {
		r, err := verifyChain(ctx, tx, chain, pub, reg, read)
		if err != nil {
			return nil, fmt.Errorf("audit: chain %s: %w", chain, err)
		}
		n, registered := reg.chains[chain]
		switch {
		case registered && !started[chain]:
			r.add(&Problem{Reason: fmt.Sprintf("the chain is entry %d of the chain registry, but its row in kms_audit_chains is gone (the chain was removed)", n)})
		case !registered && hasRegistry:
			r.Notes = append(r.Notes, fmt.Sprintf("chain %s is not in the chain registry: it was started before the registry existed (schema version 3), or its entry was removed", chain))
		}
		reports = append(reports, r)
	}
	return reports, nil
}

// RegistryReport is the Chain of the report on the chain registry itself,
// which VerifyPostgres returns first when the registry does not verify.
const RegistryReport = "(registry)"

// listRegisteredChains is listChains with the chains of the registry.
const listRegisteredChains = `SELECT chain FROM (
	SELECT chain FROM kms_audit_chains UNION SELECT chain FROM kms_audit_records
	UNION SELECT chain FROM kms_audit_digests UNION SELECT chain FROM kms_audit_keys
	UNION SELECT chain FROM kms_audit_registry) c
	ORDER BY chain COLLATE "C"`

// Row is a row of kms_audit_records or kms_audit_digests: a line (without
// its newline) and its seq.
type Row struct {
	Seq  int64
	Line []byte
}

func verifyChain(ctx context.Context, tx pgx.Tx, chain string, pub ed25519.PublicKey, reg *registry, read time.Time) (Report, error) {
	var key []byte
	if pub == nil {
		var stored string
		err := tx.QueryRow(ctx, `SELECT public_key FROM kms_audit_keys WHERE chain = $1`, chain).Scan(&stored)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// Only a problem if the chain has digests; see checkDigest.
		case err != nil:
			return Report{Chain: chain}, err
		default:
			key = []byte(stored)
		}
	}
	rows, _ := tx.Query(ctx, `SELECT seq, line FROM kms_audit_digests WHERE chain = $1 ORDER BY seq`, chain)
	digests, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Row])
	if err != nil {
		return Report{Chain: chain}, err
	}
	c := NewChainCheck(chain, pub, key, digests, read)
	var seq int64
	var ln []byte
	rows, _ = tx.Query(ctx, `SELECT seq, line FROM kms_audit_records WHERE chain = $1 ORDER BY seq`, chain)
	_, err = pgx.ForEachRow(rows, []any{&seq, &ln}, func() error {
		if !c.Record(seq, ln) {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return Report{Chain: chain}, err
	}
	r := c.Report()
	// What the chain's signed digests say of the registry.
	for _, d := range digests {
		if dg, err := parseDigest(d.Line); err == nil && c.pub != nil && dg.signatureValid(c.pub) {
			if p := reg.checkDigestRegistry(dg); p != nil {
				r.add(p)
			}
		}
	}
	return r, nil
}

// DigestInterval is how often a server signs its trail's head when
// anything was recorded since; it signs at shutdown too.
const DigestInterval = 5 * time.Second

// ChainDigestGrace is how old the first record of a chain in PostgreSQL
// may be while no digest covers the chain: its server signs it within
// DigestInterval, and twice that leaves room for the commit and for the
// clocks of the server and the verifier. A first record dated further
// than this ahead of the verifier's clock does not count as new either.
const ChainDigestGrace = 2 * DigestInterval

// A ChainCheck is VerifyPostgres's check of one chain, fed its rows by the
// caller: VerifyPostgres from the database, `kms audit verify --endpoint`
// from pages read over the API. It is not safe for concurrent use.
type ChainCheck struct {
	r       Report
	pub     ed25519.PublicKey
	digests []Row
	read    time.Time // when the digests were read, or before
	next    int       // the first digest not yet checked
	prev    string    // the hash of the last record read
	want    uint64    // the sequence number of the last record read
	first   string    // the eventTime of the first record read
}

// NewChainCheck starts checking chain, whose digest rows, ordered by seq,
// are digests, read at the time read or after it. The digests are
// checked with pub, or if pub is nil with storedKey, the PEM key kept for
// the chain (nil if none). A chain with records and no digest is broken
// unless its first record is within ChainDigestGrace of read: its server
// signs it within seconds, and removing a chain's digests must not let it
// be cut back or rewritten unseen.
func NewChainCheck(chain string, pub ed25519.PublicKey, storedKey []byte, digests []Row, read time.Time) *ChainCheck {
	c := &ChainCheck{r: Report{Chain: chain}, pub: pub, digests: digests, read: read, prev: genesis}
	if pub == nil && storedKey != nil {
		var err error
		if c.pub, err = ParsePublicKey(storedKey); err != nil {
			c.r.Problem = &Problem{Digest: true, Reason: "the chain's key in kms_audit_keys is " + err.Error()}
		}
	}
	return c
}

// Record checks the chain's next record row, rows being fed in order of
// seq, and each digest that names a record up to it. After a break it
// takes up the chain again from the row that broke it, so that every
// break is reported. It reports whether to go on: false only when the
// chain's key could not be read.
func (c *ChainCheck) Record(seq int64, line []byte) bool {
	if c.r.Problem != nil && c.r.Problem.Line == 0 {
		return false
	}
	if c.want == 0 {
		if _, rec, _, err := parseLine(line); err == nil {
			c.first = rec.EventTime
		}
	}
	// Each digest is checked at the record it names, so problems come in
	// the order of the chain.
	want := c.want + 1
	broken := false
	switch {
	case seq > int64(want):
		c.add(&Problem{Line: int(want), Reason: fmt.Sprintf("record %d is missing (a row was removed)", want)})
		c.skipDigests(seq)
		want, broken = uint64(seq), true
	case seq < int64(want):
		c.add(&Problem{Line: int(want), Reason: fmt.Sprintf("a row numbered %d where record %d was expected", seq, want)})
		return true
	}
	hash, _, err := checkLine(line, c.prev, want)
	if err != nil && broken {
		// The chain is taken up again at this row: it cannot be checked
		// against the record before it, which is missing.
		if h, s, ok := lineHead(line); ok && s == want {
			hash, err = h, nil
		}
	}
	if err != nil {
		if !broken {
			c.add(&Problem{Line: int(want), Reason: err.Error()})
		}
		hash = ""
		if h, _, ok := lineHead(line); ok {
			hash = h
		}
	}
	for ; c.next < len(c.digests) && c.digests[c.next].Seq <= seq; c.next++ {
		if p := checkDigest(&c.digests[c.next], c.pub, want, hash); p != nil {
			c.add(p)
			continue
		}
		c.r.Digests++
	}
	if c.r.Problem == nil {
		c.r.Records = want
	}
	c.prev, c.want = hash, want
	return true
}

// skipDigests reports the digests that name records before seq that the
// chain does not hold.
func (c *ChainCheck) skipDigests(seq int64) {
	for ; c.next < len(c.digests) && c.digests[c.next].Seq < seq; c.next++ {
		d := c.digests[c.next]
		c.add(&Problem{Line: int(d.Seq), Digest: true, Reason: fmt.Sprintf("a digest names record %d, which the chain does not hold", d.Seq)})
	}
}

func (c *ChainCheck) add(p *Problem) { c.r.add(p) }

// Report ends the check after the chain's last row and returns what it
// found.
func (c *ChainCheck) Report() Report {
	r := c.r
	r.Total = c.want
	r.Later = append([]*Problem(nil), r.Later...)
	for _, d := range c.digests[c.next:] {
		r.add(&Problem{Line: int(d.Seq), Digest: true,
			Reason: fmt.Sprintf("a digest names record %d, but the chain ends at record %d (records were cut off)", d.Seq, c.want)})
	}
	if len(c.digests) == 0 && c.want > 0 && !c.isNew() {
		first := c.first
		if first == "" {
			first = "an unknown time"
		}
		r.add(&Problem{Digest: true, Reason: fmt.Sprintf("no signed digest covers the chain, whose first record is from %s: its digests were removed, or its server stopped without signing any (killed just after its first record)", first)})
	}
	return r
}

// isNew reports whether the chain's first record is recent enough, when
// its digests were read, to have no digest yet.
func (c *ChainCheck) isNew() bool {
	t, err := time.Parse(TimeFormat, c.first)
	return err == nil && !t.Before(c.read.Add(-ChainDigestGrace)) && !t.After(c.read.Add(ChainDigestGrace))
}

// checkDigest checks the stored digest d against record want, whose hash
// is hash.
func checkDigest(d *Row, pub ed25519.PublicKey, want uint64, hash string) *Problem {
	p := &Problem{Line: int(d.Seq), Digest: true}
	dg, err := parseDigest(d.Line)
	switch {
	case d.Seq != int64(want):
		p.Reason = fmt.Sprintf("a digest names record %d, which the chain does not hold", d.Seq)
	case err != nil:
		p.Reason = fmt.Sprintf("the digest of record %d is not JSON", want)
	case dg.Sequence != want:
		p.Reason = fmt.Sprintf("the digest row of record %d holds a digest of record %d", want, dg.Sequence)
	case pub == nil:
		p.Reason = "the chain has signed digests but no public key in kms_audit_keys to check them"
	case !dg.signatureValid(pub):
		p.Reason = fmt.Sprintf("the digest of record %d has a signature that does not verify", want)
	case dg.Hash != hash:
		p.Reason = fmt.Sprintf("the digest of record %d does not match the record", want)
	default:
		return nil
	}
	return p
}
