package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Report is what verifying one chain found.
type Report struct {
	Chain   string
	Records uint64   // records that chain correctly from the first, before Problem
	Digests int      // signed digests that verify, before Problem
	Problem *Problem // the first break, or nil
}

// VerifyPostgres checks every chain in the database of pool, in one
// snapshot: each chain's records from sequence number 1 without gaps,
// their hashes, and its digests (each must name a record of the chain by
// sequence number and hash, and carry a valid signature). Digests are
// checked with pub, or if pub is nil with the key kms_audit_keys holds for
// the chain, which is only as trustworthy as the database. Records after a
// chain's last digest are protected by the chain only. It returns a report
// per chain, ordered by chain id; the error is for a failure to read.
func VerifyPostgres(ctx context.Context, pool *pgxpool.Pool, pub ed25519.PublicKey) ([]Report, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, _ := tx.Query(ctx, `SELECT chain FROM (
		SELECT chain FROM kms_audit_chains UNION SELECT chain FROM kms_audit_records
		UNION SELECT chain FROM kms_audit_digests UNION SELECT chain FROM kms_audit_keys) c
		ORDER BY chain COLLATE "C"`)
	chains, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("audit: list the chains: %w", err)
	}
	reports := make([]Report, 0, len(chains))
	for _, chain := range chains {
		r, err := verifyChain(ctx, tx, chain, pub)
		if err != nil {
			return nil, fmt.Errorf("audit: chain %s: %w", chain, err)
		}
		reports = append(reports, r)
	}
	return reports, nil
}

// storedDigest is a row of kms_audit_digests.
type storedDigest struct {
	Seq  int64
	Line []byte
}

func verifyChain(ctx context.Context, tx pgx.Tx, chain string, pub ed25519.PublicKey) (Report, error) {
	r := Report{Chain: chain}
	if pub == nil {
		var key string
		err := tx.QueryRow(ctx, `SELECT public_key FROM kms_audit_keys WHERE chain = $1`, chain).Scan(&key)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			// Only a problem if the chain has digests; see checkDigest.
		case err != nil:
			return r, err
		default:
			if pub, err = ParsePublicKey([]byte(key)); err != nil {
				r.Problem = &Problem{Digest: true, Reason: "the chain's key in kms_audit_keys is " + err.Error()}
				return r, nil
			}
		}
	}
	rows, _ := tx.Query(ctx, `SELECT seq, line FROM kms_audit_digests WHERE chain = $1 ORDER BY seq`, chain)
	digests, err := pgx.CollectRows(rows, pgx.RowToStructByPos[storedDigest])
	if err != nil {
		return r, err
	}

	// Walk the records in order, and check each digest at the record it
	// names: the first problem in the order of the chain is reported.
	prev, next := genesis, 0
	var seq int64
	var ln []byte
	rows, _ = tx.Query(ctx, `SELECT seq, line FROM kms_audit_records WHERE chain = $1 ORDER BY seq`, chain)
	_, err = pgx.ForEachRow(rows, []any{&seq, &ln}, func() error {
		want := r.Records + 1
		switch {
		case seq > int64(want):
			r.Problem = &Problem{Line: int(want), Reason: fmt.Sprintf("record %d is missing (a row was removed)", want)}
			return errStop
		case seq < int64(want):
			r.Problem = &Problem{Line: int(want), Reason: fmt.Sprintf("a row numbered %d where record %d was expected", seq, want)}
			return errStop
		}
		hash, _, err := checkLine(ln, prev, want)
		if err != nil {
			r.Problem = &Problem{Line: int(want), Reason: err.Error()}
			return errStop
		}
		for ; next < len(digests) && digests[next].Seq <= seq; next++ {
			if r.Problem = checkDigest(&digests[next], pub, want, hash); r.Problem != nil {
				return errStop
			}
			r.Digests++
		}
		prev, r.Records = hash, want
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return r, err
	}
	if r.Problem == nil && next < len(digests) {
		d := digests[next]
		r.Problem = &Problem{Line: int(d.Seq), Digest: true,
			Reason: fmt.Sprintf("a digest names record %d, but the chain ends at record %d (records were cut off)", d.Seq, r.Records)}
	}
	return r, nil
}

// checkDigest checks the stored digest d against record want, whose hash
// is hash.
func checkDigest(d *storedDigest, pub ed25519.PublicKey, want uint64, hash string) *Problem {
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
