package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openkms/kms/internal/audit"
)

// removeChain deletes every row of chain, as someone with write access to
// the database would to hide it.
func removeChain(t *testing.T, pool *pgxpool.Pool, chain string, registry bool) {
	t.Helper()
	for _, table := range []string{"kms_audit_records", "kms_audit_digests", "kms_audit_keys", "kms_audit_chains"} {
		exec(t, pool, `DELETE FROM `+table+` WHERE chain = $1`, chain)
	}
	if registry {
		exec(t, pool, `DELETE FROM kms_audit_registry WHERE chain = $1`, chain)
	}
}

// problems returns every problem of the reports, each prefixed with its
// chain.
func problems(reports []audit.Report) string {
	var b strings.Builder
	for _, r := range reports {
		for _, p := range r.Problems() {
			b.WriteString(r.Chain + ": " + p.Reason + "\n")
		}
	}
	return b.String()
}

// A chain removed whole — records, digests, key and its row in
// kms_audit_chains, with or without its registry entry — is detected
// once another chain has signed a digest since it started.
func TestPostgresRemovedChainIsDetected(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	// Three nodes start one after another; each signs a digest after the
	// next has started, the last after all.
	setup := func(t *testing.T) (*pgxpool.Pool, ed25519.PublicKey, []string) {
		pool := openPool(t)
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		var logs []*audit.Log
		var digesters []*audit.Digester
		for i := range 3 {
			l := openNode(t, pool, "node")
			d, err := audit.OpenPostgresDigester(ctx, pool, l.Chain(), priv)
			if err != nil {
				t.Fatal(err)
			}
			logs, digesters = append(logs, l), append(digesters, d)
			if i > 0 {
				appendAll(t, logs[i-1], 5)
				if err := digesters[i-1].Write(logs[i-1], now); err != nil {
					t.Fatal(err)
				}
			}
		}
		appendAll(t, logs[2], 5)
		if err := digesters[2].Write(logs[2], now); err != nil {
			t.Fatal(err)
		}
		// The first node signs again after the last started.
		appendAll(t, logs[0], 5)
		if err := digesters[0].Write(logs[0], now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		var chains []string
		for _, l := range logs {
			chains = append(chains, l.Chain())
		}
		if got := problems(verifyPG(t, pool, pub)); got != "" {
			t.Fatalf("the intact trail: %s", got)
		}
		return pool, pub, chains
	}
	for _, tc := range []struct {
		name     string
		chain    int
		registry bool
		want     string
	}{
		{"first chain, registry entry kept", 0, false, "its row in kms_audit_chains is gone"},
		{"first chain with its registry entry", 0, true, "the chain registry's entry 1"},
		{"middle chain with its registry entry", 1, true, "the chain registry's entry 2"},
		{"last chain with its registry entry", 2, true, "names 3 registered chains, but the chain registry ends at entry 2 (a chain was removed)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, pub, chains := setup(t)
			removeChain(t, pool, chains[tc.chain], tc.registry)
			for _, key := range []ed25519.PublicKey{nil, pub} {
				if got := problems(verifyPG(t, pool, key)); !strings.Contains(got, tc.want) {
					t.Errorf("removing chain %d: problems\n%s\nwant %q", tc.chain, got, tc.want)
				}
			}
		})
	}
	t.Run("registry entry edited", func(t *testing.T) {
		pool, pub, chains := setup(t)
		exec(t, pool, `UPDATE kms_audit_registry SET line = replace(line, $1, 'node-0000000000000000') WHERE chain = $1`, chains[1])
		if got := problems(verifyPG(t, pool, pub)); !strings.Contains(got, "entry 2") {
			t.Errorf("problems\n%s", got)
		}
	})
	t.Run("digest stripped of the registry head", func(t *testing.T) {
		pool, pub, chains := setup(t)
		exec(t, pool, `UPDATE kms_audit_digests SET line = regexp_replace(line, '"chains":[0-9]+,"chainsHash":"[0-9a-f]+",', '') WHERE chain = $1`, chains[0])
		if got := problems(verifyPG(t, pool, pub)); !strings.Contains(got, "signature that does not verify") {
			t.Errorf("problems\n%s", got)
		}
	})
}
