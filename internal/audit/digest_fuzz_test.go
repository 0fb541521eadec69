package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/audit"
)

// FuzzVerifyDigests checks arbitrary digest files against a real log and
// the key that signed its digests, as kms audit verify reads a digest
// file that may have been tampered with. It never panics; it counts
// every line it reads, and a digest it judges good is one the digester
// wrote: the same sequence, hash, time and registry head.
func FuzzVerifyDigests(f *testing.F) {
	dir := f.TempDir()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		f.Fatal(err)
	}
	d, err := audit.OpenDigester(filepath.Join(dir, "digests.log"), priv)
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		for range 2 {
			if err := l.Append(rec("Encrypt")); err != nil {
				f.Fatal(err)
			}
		}
		if err := d.Write(l, time.Date(2026, 11, 26, 12, i, 0, 0, time.UTC)); err != nil {
			f.Fatal(err)
		}
	}
	l.Close()
	d.Close()
	hashes, records := lineHashes(f, must(os.ReadFile(filepath.Join(dir, "audit.log"))))
	digests := must(os.ReadFile(filepath.Join(dir, "digests.log")))
	genuine := map[audit.Digest]bool{}
	for _, ln := range strings.SplitAfter(string(digests), "\n") {
		if dg, err := audit.ParseDigest([]byte(ln)); err == nil {
			dg.Signature = ""
			genuine[*dg] = true
		}
	}
	if _, good, _, _ := audit.VerifyDigestsAll(bytes.NewReader(digests), priv.Public().(ed25519.PublicKey), hashes, records); good != 3 || len(genuine) != 3 {
		f.Fatalf("%d of %d genuine digests are good", good, len(genuine))
	}
	f.Add(digests)
	f.Add(bytes.Replace(digests, []byte(`"sequence":4`), []byte(`"sequence":2`), 1))
	f.Add(bytes.Replace(digests, []byte(`"sequence":4`), []byte(`"sequence":4,"sequence":4`), 1))
	f.Add(bytes.ToUpper(digests))
	f.Add([]byte("{}\n{\"signature\":\"\"}\nnull\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, good, problems, err := audit.VerifyDigestsAll(bytes.NewReader(b), priv.Public().(ed25519.PublicKey), hashes, records)
		if err != nil {
			t.Fatal(err)
		}
		if n != bytes.Count(b, []byte("\n")) || good+len(problems) != n {
			t.Fatalf("%d lines: %d read, %d good, %d problems", bytes.Count(b, []byte("\n")), n, good, len(problems))
		}
		bad := map[int]bool{}
		for _, p := range problems {
			bad[p.Line] = true
		}
		for i, ln := range strings.SplitAfter(string(b), "\n")[:n] {
			if bad[i+1] {
				continue
			}
			dg, err := audit.ParseDigest([]byte(ln))
			if err != nil {
				t.Fatalf("line %d, judged good, does not parse: %v", i+1, err)
			}
			dg.Signature = ""
			if !genuine[*dg] {
				t.Fatalf("line %d, judged good, says what no digest said: %q", i+1, ln)
			}
		}
	})
}

// FuzzParsePublicKey reads arbitrary audit public key files (audit.pub,
// kms_audit_keys): it never panics, and a key it accepts is one
// MarshalPublicKey writes back in a form it reads as the same key.
func FuzzParsePublicKey(f *testing.F) {
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	pemKey, err := audit.MarshalPublicKey(pub)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pemKey)
	f.Add(append([]byte("junk before\n"), pemKey...))
	f.Add(bytes.Replace(pemKey, []byte("PUBLIC KEY"), []byte("PRIVATE KEY"), 2))
	f.Add(pemKey[:len(pemKey)-10])
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := audit.ParsePublicKey(b)
		if err != nil {
			if k != nil {
				t.Fatal("a key with an error")
			}
			return
		}
		if len(k) != ed25519.PublicKeySize {
			t.Fatalf("a public key of %d bytes", len(k))
		}
		out, err := audit.MarshalPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		again, err := audit.ParsePublicKey(out)
		if err != nil || !again.Equal(k) {
			t.Fatalf("the key read from %q reads back as another: %v", b, err)
		}
	})
}
