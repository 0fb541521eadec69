package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/openkms/kms/internal/audit"
)

// trailReader is what the API asks of audit.FileTrail and
// audit.PostgresTrail.
type trailReader interface {
	Chains(ctx context.Context) ([]string, error)
	Records(ctx context.Context, chain string, after int64, limit, maxBytes int) ([]audit.Row, bool, error)
	Digests(ctx context.Context, chain string, after int64, limit, maxBytes int) ([]audit.Row, bool, error)
	PublicKey(ctx context.Context, chain string) ([]byte, error)
}

// trailBackend opens an empty trail, its digester and its reader; the
// chain is the one the log appends to.
type trailBackend struct {
	name string
	open func(t *testing.T, key ed25519.PrivateKey) (*audit.Log, *audit.Digester, trailReader, string)
}

var trailBackends = []trailBackend{
	{"file", func(t *testing.T, key ed25519.PrivateKey) (*audit.Log, *audit.Digester, trailReader, string) {
		dir := t.TempDir()
		l, err := audit.Open(filepath.Join(dir, "audit.log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		d, err := audit.OpenDigester(filepath.Join(dir, "audit-digests.log"), key)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		pub, _ := audit.MarshalPublicKey(key.Public().(ed25519.PublicKey))
		if err := os.WriteFile(filepath.Join(dir, "audit.pub"), pub, 0o644); err != nil {
			t.Fatal(err)
		}
		return l, d, audit.NewFileTrail(dir), ""
	}},
	// A data directory's trail in segments of 2 KiB: a few records each.
	{"segments", func(t *testing.T, key ed25519.PrivateKey) (*audit.Log, *audit.Digester, trailReader, string) {
		dir := t.TempDir()
		l, err := audit.OpenDir(dir, 2048)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		d, err := audit.OpenDigester(filepath.Join(dir, "audit-digests.log"), key)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		pub, _ := audit.MarshalPublicKey(key.Public().(ed25519.PublicKey))
		if err := os.WriteFile(filepath.Join(dir, "audit.pub"), pub, 0o644); err != nil {
			t.Fatal(err)
		}
		return l, d, audit.NewFileTrail(dir), ""
	}},
	{"postgres", func(t *testing.T, key ed25519.PrivateKey) (*audit.Log, *audit.Digester, trailReader, string) {
		pool := openPool(t)
		l := openNode(t, pool, "node")
		d, err := audit.OpenPostgresDigester(context.Background(), pool, l.Chain(), key)
		if err != nil {
			t.Fatal(err)
		}
		return l, d, audit.NewPostgresTrail(pool), l.Chain()
	}},
}

// readAll reads every page after after with read, checking that positions
// rise (for records: by one from after+1) and that each page keeps to its
// limits.
func readAll(t *testing.T, read func(after int64) ([]audit.Row, bool, error), after int64, limit, maxBytes int, records bool) []audit.Row {
	t.Helper()
	var all []audit.Row
	for {
		rows, more, err := read(after)
		if err != nil {
			t.Fatal(err)
		}
		size := 0
		for _, r := range rows {
			if r.Seq <= after || records && r.Seq != after+1 {
				t.Fatalf("position %d after %d", r.Seq, after)
			}
			after = r.Seq
			size += len(r.Line)
		}
		if len(rows) > limit || len(rows) > 1 && size > maxBytes {
			t.Fatalf("a page of %d lines, %d bytes, over the limits %d lines, %d bytes", len(rows), size, limit, maxBytes)
		}
		all = append(all, rows...)
		if !more {
			return all
		}
		if len(rows) == 0 {
			t.Fatal("an empty page with more to come")
		}
	}
}

// Both readers hand out every record and digest line once, in order, by
// position, in pages within their limits, from any position.
func TestTrailReaders(t *testing.T) {
	ctx := context.Background()
	for _, b := range trailBackends {
		t.Run(b.name, func(t *testing.T) {
			pub, priv, _ := ed25519.GenerateKey(rand.Reader)
			l, d, r, chain := b.open(t, priv)
			const n = 2600 // past two of a file's index marks
			for range 3 {
				appendAll(t, l, n/3)
				if err := d.Write(l, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			appendAll(t, l, n-n/3*3)

			if chains, err := r.Chains(ctx); err != nil || !slices.Equal(chains, []string{chain}) {
				t.Fatalf("Chains: %q, %v; want [%q]", chains, err, chain)
			}
			records := readAll(t, func(after int64) ([]audit.Row, bool, error) {
				return r.Records(ctx, chain, after, 1000, 4<<20)
			}, 0, 1000, 4<<20, true)
			var log bytes.Buffer
			for _, row := range records {
				log.Write(row.Line)
				log.WriteByte('\n')
			}
			if got, p, err := audit.Verify(&log); got != n || p != nil || err != nil {
				t.Fatalf("the records read: %d verify, %+v, %v; want %d", got, p, err, n)
			}

			// Small pages: by line count, and by bytes (a page holds at
			// least one line, however long).
			lineLen := len(records[0].Line)
			for _, lim := range []struct{ lines, bytes int }{{7, 4 << 20}, {1000, 3*lineLen + 10}, {1000, 1}} {
				got := readAll(t, func(after int64) ([]audit.Row, bool, error) {
					return r.Records(ctx, chain, after, lim.lines, lim.bytes)
				}, 1990, lim.lines, lim.bytes, true)
				if !slices.EqualFunc(got, records[1990:], rowEqual) {
					t.Errorf("pages of %d lines, %d bytes from position 1990: %d lines, want the %d after it", lim.lines, lim.bytes, len(got), n-1990)
				}
			}

			// From anywhere, concurrently.
			var wg sync.WaitGroup
			for _, after := range []int64{0, 1023, 1024, 1025, 2047, 2048, 2049, 2500, n - 1} {
				wg.Go(func() {
					rows, _, err := r.Records(ctx, chain, after, 3, 4<<20)
					want := records[after:min(after+3, n)]
					if err != nil || !slices.EqualFunc(rows, want, rowEqual) {
						t.Errorf("3 records after %d: %d rows, %v", after, len(rows), err)
					}
				})
			}
			wg.Wait()
			if rows, more, err := r.Records(ctx, chain, n, 1000, 4<<20); len(rows) != 0 || more || err != nil {
				t.Errorf("records after the last: %d, %v, %v", len(rows), more, err)
			}
			if rows, more, err := r.Records(ctx, "no-such-chain", 0, 1000, 4<<20); len(rows) != 0 || more || err != nil {
				t.Errorf("records of a chain not held: %d, %v, %v", len(rows), more, err)
			}

			digests := readAll(t, func(after int64) ([]audit.Row, bool, error) {
				return r.Digests(ctx, chain, after, 2, 4<<20)
			}, 0, 2, 4<<20, false)
			if len(digests) != 3 {
				t.Fatalf("%d digests, want 3", len(digests))
			}
			key, err := r.PublicKey(ctx, chain)
			wantKey, _ := audit.MarshalPublicKey(pub)
			if err != nil || !bytes.Equal(key, wantKey) {
				t.Errorf("PublicKey: %q, %v; want %q", key, err, wantKey)
			}
			if key, err := r.PublicKey(ctx, "no-such-chain"); key != nil || err != nil {
				t.Errorf("PublicKey of a chain not held: %q, %v", key, err)
			}
		})
	}
}

func rowEqual(a, b audit.Row) bool { return a.Seq == b.Seq && bytes.Equal(a.Line, b.Line) }

// A line the server is still writing is not handed out, until complete.
func TestFileTrailLeavesOutAPartialLine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := audit.Open(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, l, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r := audit.NewFileTrail(dir)
	f, err := os.OpenFile(filepath.Join(dir, "audit.log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(`{"hash":"ab`)
	if rows, more, err := r.Records(ctx, "", 0, 1000, 4<<20); len(rows) != 3 || more || err != nil {
		t.Fatalf("with a partial last line: %d rows, %v, %v; want the 3 complete ones", len(rows), more, err)
	}
	if rows, more, err := r.Records(ctx, "", 0, 3, 4<<20); len(rows) != 3 || more || err != nil {
		t.Fatalf("a full page before a partial line: %d rows, more %v, %v; want 3 and no more", len(rows), more, err)
	}
	f.WriteString("c\"}\n")
	if rows, _, err := r.Records(ctx, "", 3, 1000, 4<<20); len(rows) != 1 || rows[0].Seq != 4 || string(rows[0].Line) != `{"hash":"abc"}` || err != nil {
		t.Fatalf("the line once complete: %+v, %v", rows, err)
	}
	if rows, more, err := r.Digests(ctx, "", 0, 1000, 4<<20); len(rows) != 0 || more || err != nil {
		t.Errorf("digests of a directory without audit-digests.log: %d, %v, %v", len(rows), more, err)
	}
	if key, err := r.PublicKey(ctx, ""); key != nil || err != nil {
		t.Errorf("PublicKey without audit.pub: %q, %v", key, err)
	}
}

// A page that ends exactly at a closed segment's end, before an empty
// last segment (a crash just after a roll), is the last one: nothing
// follows it. It said that more did, and the next page was empty.
func TestFileTrailEndsBeforeAnEmptyLastSegment(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := audit.OpenDir(dir, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 { // one at a time: a batch of one each, so several segments
		r := rec(fmt.Sprint("Op", i))
		r.EventTime = audit.FormatTime(recordTime)
		if err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := audit.Segments(dir)
	if err != nil || len(segs) < 3 {
		t.Fatalf("%d segments, %v: want at least 3", len(segs), err)
	}
	// The roll's new segment, created empty, and then another, as a
	// server killed just after each of two rolls leaves them.
	last := segs[len(segs)-1].N
	for _, n := range []int{last + 1, last + 2} {
		if err := os.WriteFile(filepath.Join(dir, audit.SegmentName(n)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := audit.NewFileTrail(dir)
	all, more, err := r.Records(ctx, "", 0, 1000, 4<<20)
	if len(all) != 40 || more || err != nil {
		t.Fatalf("every record: %d, more %v, %v; want 40 and no more", len(all), more, err)
	}
	// Pages that end at the end of each segment, and at the last record.
	var ends []int64
	var base int64
	for _, s := range segs {
		b, err := os.ReadFile(s.Path)
		if err != nil {
			t.Fatal(err)
		}
		base += int64(bytes.Count(b, []byte("\n")))
		ends = append(ends, base)
	}
	for _, end := range ends {
		for _, after := range []int64{0, end - 1} {
			rows, more, err := r.Records(ctx, "", after, int(end-after), 4<<20)
			if err != nil || int64(len(rows)) != end-after || rows[len(rows)-1].Seq != end {
				t.Fatalf("the %d records after %d: %d rows, %v", end-after, after, len(rows), err)
			}
			if want := end < 40; more != want {
				t.Errorf("a page of the records after %d up to %d, at a segment's end: more %v, want %v", after, end, more, want)
			}
		}
	}
}
