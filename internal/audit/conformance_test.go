package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/audit"
)

// backend opens a log, its digester, and reads back what they stored: the
// chain's lines as a log file holds them, and the digests' lines.
type backend struct {
	name string
	open func(t *testing.T, key ed25519.PrivateKey) (l *audit.Log, d *audit.Digester, stored func() (lines, digests string))
}

var backends = []backend{
	{"file", func(t *testing.T, key ed25519.PrivateKey) (*audit.Log, *audit.Digester, func() (string, string)) {
		dir := t.TempDir()
		l, err := audit.Open(filepath.Join(dir, "audit.log"))
		if err != nil {
			t.Fatal(err)
		}
		d, err := audit.OpenDigester(filepath.Join(dir, "digests.log"), key)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return l, d, func() (string, string) {
			lines, _ := os.ReadFile(filepath.Join(dir, "audit.log"))
			digests, _ := os.ReadFile(filepath.Join(dir, "digests.log"))
			return string(lines), string(digests)
		}
	}},
	{"postgres", func(t *testing.T, key ed25519.PrivateKey) (*audit.Log, *audit.Digester, func() (string, string)) {
		pool := openPool(t)
		l, err := audit.OpenPostgres(context.Background(), pool, "node")
		if err != nil {
			t.Fatal(err)
		}
		d, err := audit.OpenPostgresDigester(context.Background(), pool, l.Chain(), key)
		if err != nil {
			t.Fatal(err)
		}
		return l, d, func() (string, string) {
			var lines, digests string
			err := pool.QueryRow(context.Background(), `SELECT
				coalesce((SELECT string_agg(line || E'\n', '' ORDER BY seq) FROM kms_audit_records), ''),
				coalesce((SELECT string_agg(line || E'\n', '' ORDER BY seq) FROM kms_audit_digests), '')`).Scan(&lines, &digests)
			if err != nil {
				t.Fatal(err)
			}
			return lines, digests
		}
	}},
}

// Every backend stores one gapless chain in the file format, acknowledges
// only what it stored, and anchors it with digests the file verifier
// accepts.
func TestBackendConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			pub, priv, _ := ed25519.GenerateKey(rand.Reader)
			l, d, stored := b.open(t, priv)
			if seq, hash := l.Head(); seq != 0 || hash != strings.Repeat("0", 64) {
				t.Fatalf("empty head: %d %s", seq, hash)
			}
			if err := d.Write(l, time.Now()); err != nil {
				t.Fatal(err)
			}
			appendAll(t, l, 100)
			if err := d.Write(l, time.Now()); err != nil {
				t.Fatal(err)
			}
			appendAll(t, l, 50)
			if err := d.Write(l, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := l.Append(rec("late")); err != audit.ErrClosed {
				t.Fatalf("Append after Close: %v", err)
			}
			lines, digests := stored()
			if n, p, err := audit.Verify(strings.NewReader(lines)); n != 150 || p != nil || err != nil {
				t.Fatalf("the chain: %d records, %+v, %v", n, p, err)
			}
			hashes, n := lineHashes(t, []byte(lines))
			if seq, hash := l.Head(); seq != 150 || hash != hashes.Hash(150) {
				t.Fatalf("head %d %s, want 150 %s", seq, hash, hashes.Hash(150))
			}
			if c, p, err := audit.VerifyDigests(strings.NewReader(digests), pub, hashes, n); c != 2 || p != nil || err != nil {
				t.Fatalf("the digests: %d, %+v, %v", c, p, err)
			}
		})
	}
}
