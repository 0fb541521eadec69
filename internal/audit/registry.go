package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The registry of a cluster's chains, in kms_audit_registry(seq, chain,
// line): every chain's start, itself hash-chained, one row per chain,
//
//	{"hash":"<hex>","entry":{"sequence":N,"chain":"<id>","previousHash":"<hex>"}}
//
// with hash = SHA-256(the previous entry's hash ‖ the entry's bytes), the
// first entry's previousHash 64 zeros, as for records. A node registers
// its chain when it starts (OpenPostgres), and its digests sign the
// registry's head as they find it then: its number of entries and the
// hash of the last (Digest.Chains, Digest.ChainsHash). So removing a
// whole chain — its records, digests, key and rows — is detected once any
// other chain has signed a digest since that chain started: the chain's
// registry entry is still there, or removing it (or any entry before the
// last) breaks the registry's chain, or removing the last entry leaves a
// signed digest naming more entries than the registry holds.

// registryLock is the advisory lock that serialises registrations
// ("kms_areg").
const registryLock int64 = 0x6b6d735f61726567

type registryLine struct {
	Hash  string          `json:"hash"`
	Entry json.RawMessage `json:"entry"`
}

type registryEntry struct {
	Sequence uint64 `json:"sequence"`
	Chain    string `json:"chain"`
	PrevHash string `json:"previousHash"`
}

// register adds chain to the registry in tx, after its last entry.
func register(ctx context.Context, tx pgx.Tx, chain string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, registryLock); err != nil {
		return err
	}
	seq, hash, err := registryHead(ctx, tx)
	if err != nil {
		return err
	}
	entry, err := json.Marshal(registryEntry{Sequence: seq + 1, Chain: chain, PrevHash: hash})
	if err != nil {
		return err
	}
	ln, err := json.Marshal(registryLine{Hash: chainHash(hash, entry), Entry: entry})
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO kms_audit_registry (seq, chain, line) VALUES ($1, $2, $3)`, int64(seq+1), chain, string(ln))
	return err
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// registryHead returns the number of the registry's last entry and its
// hash (0 and genesis for an empty registry), as stored.
func registryHead(ctx context.Context, q querier) (uint64, string, error) {
	var seq int64
	var ln string
	err := q.QueryRow(ctx, `SELECT seq, line FROM kms_audit_registry ORDER BY seq DESC LIMIT 1`).Scan(&seq, &ln)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, genesis, nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read the chain registry: %w", err)
	}
	var l registryLine
	if err := json.Unmarshal([]byte(ln), &l); err != nil {
		return 0, "", fmt.Errorf("the chain registry's entry %d is damaged (run kms audit verify)", seq)
	}
	return uint64(seq), l.Hash, nil
}

// registry is the chain registry as verify read it.
type registry struct {
	hashes   map[uint64]string // an entry's hash by its number, as stored
	last     uint64            // the number of the last entry
	chains   map[string]int    // chain → its entry's number
	problems []*Problem
}

// readRegistry reads and checks the registry's chain.
func readRegistry(ctx context.Context, tx pgx.Tx) (*registry, error) {
	rows, _ := tx.Query(ctx, `SELECT seq, chain, line FROM kms_audit_registry ORDER BY seq`)
	r := &registry{hashes: map[uint64]string{}, chains: map[string]int{}}
	prev := genesis
	broken := false
	var seq int64
	var chain, ln string
	_, err := pgx.ForEachRow(rows, []any{&seq, &chain, &ln}, func() error {
		want := r.last + 1
		hash, reason := checkRegistryRow(seq, chain, []byte(ln), want, prev)
		if reason != "" && !broken {
			msg := fmt.Sprintf("the chain registry's entry %d (chain %s) %s", want, chain, reason)
			if seq > int64(want) {
				msg = fmt.Sprintf("the chain registry's entry %d is missing (a chain's entry was removed): entry %d (chain %s) follows entry %d", want, seq, chain, want-1)
			}
			r.problems = append(r.problems, &Problem{Reason: msg})
			broken = true
		}
		prev, r.last = hash, uint64(seq)
		r.hashes[uint64(seq)] = hash
		r.chains[chain] = int(seq)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the chain registry: %w", err)
	}
	return r, nil
}

// checkRegistryRow checks the registry row (seq, chain, line), expected
// to be entry want after an entry whose hash is prev. It returns the
// row's hash as stored ("" if it has none) and why it does not verify, or
// "".
func checkRegistryRow(seq int64, chain string, line []byte, want uint64, prev string) (string, string) {
	var l registryLine
	var e registryEntry
	if json.Unmarshal(line, &l) != nil || json.Unmarshal(l.Entry, &e) != nil {
		return l.Hash, "is not a registry entry"
	}
	switch {
	case seq < 0 || uint64(seq) != want || e.Sequence != want:
		return l.Hash, fmt.Sprintf("is numbered %d where %d was expected (a chain's entry was removed)", e.Sequence, want)
	case e.Chain != chain:
		return l.Hash, fmt.Sprintf("names chain %q in a row of chain %q", e.Chain, chain)
	case e.PrevHash != prev:
		return l.Hash, "does not follow the entry before (an entry was removed, moved or edited)"
	case chainHash(prev, l.Entry) != l.Hash:
		return l.Hash, "does not match its hash (it was edited)"
	}
	return l.Hash, ""
}

// checkDigestRegistry checks what the digest d, which verified, says of
// the registry.
func (r *registry) checkDigestRegistry(d *Digest) *Problem {
	if d.Chains == 0 {
		return nil
	}
	p := &Problem{Line: int(d.Sequence), Digest: true}
	switch {
	case d.Chains > r.last:
		p.Reason = fmt.Sprintf("the digest of record %d names %d registered chains, but the chain registry ends at entry %d (a chain was removed)", d.Sequence, d.Chains, r.last)
	case r.hashes[d.Chains] != d.ChainsHash:
		p.Reason = fmt.Sprintf("the digest of record %d does not match the chain registry's entry %d (a chain's entry was removed or edited)", d.Sequence, d.Chains)
	default:
		return nil
	}
	return p
}
