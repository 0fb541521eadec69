package boltstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// model is a store written through its Updates, with the records it
// should hold and the values that were deleted or replaced.
type model struct {
	t    *testing.T
	s    *boltstore.Store
	live map[string][]byte
	gone [][]byte
}

func newModel(t *testing.T, path string) *model {
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	m := &model{t: t, s: s, live: map[string][]byte{}}
	t.Cleanup(func() { m.s.Close() })
	return m
}

// value returns a new random value, which the file holds only if a
// record holds it or held it.
func value() []byte {
	v := make([]byte, 200)
	rand.Read(v)
	return v
}

func (m *model) put(k string, v []byte) {
	m.t.Helper()
	if err := m.s.Update(context.Background(), func(tx store.Tx) error { return tx.Put([]byte(k), v) }); err != nil {
		m.t.Fatal(err)
	}
	if old, ok := m.live[k]; ok {
		m.gone = append(m.gone, old)
	}
	m.live[k] = v
}

func (m *model) del(k string) {
	m.t.Helper()
	if err := m.s.Update(context.Background(), func(tx store.Tx) error { return tx.Delete([]byte(k)) }); err != nil {
		m.t.Fatal(err)
	}
	if old, ok := m.live[k]; ok {
		m.gone = append(m.gone, old)
	}
	delete(m.live, k)
}

// check opens the store's file again and finds there exactly the live
// records, and in its bytes none of the values deleted or replaced.
func (m *model) check(path string) {
	m.t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		m.t.Fatal(err)
	}
	for _, v := range m.gone {
		if bytes.Contains(raw, v) {
			m.t.Errorf("a value deleted or replaced is in the file after Compact: %x...", v[:8])
		}
	}
	m.s.Close()
	if m.s, err = boltstore.Open(path); err != nil {
		m.t.Fatal(err)
	}
	held := map[string][]byte{}
	if err := m.s.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			held[string(k)] = bytes.Clone(v)
			return true, nil
		})
	}); err != nil {
		m.t.Fatal(err)
	}
	for k, v := range m.live {
		if got, ok := held[k]; !ok || !bytes.Equal(got, v) {
			m.t.Errorf("the store opened again holds %q as %.8x... (%v), want %.8x...", k, got, ok, v)
		}
	}
	for k := range held {
		if _, ok := m.live[k]; !ok {
			m.t.Errorf("the store opened again holds %q, which was deleted", k)
		}
	}
}

// TestCompactAppliesWhatChangedDuringTheCopy: records written,
// replaced and deleted while Compact copies the store are in the new
// file as they are in the store, and none of the values deleted or
// replaced is in its bytes (not even in its free pages); while Compact
// holds every call back it applies those keys only.
func TestCompactAppliesWhatChangedDuringTheCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	m := newModel(t, path)
	for i := range 500 {
		m.put(fmt.Sprintf("r/%04d", i), value())
	}
	m.del("r/0000")
	written := map[string]bool{}
	track := func(k string) string { written[k] = true; return k }
	copied := 0
	boltstore.OnCompactCopied(m.s, func() {
		if copied++; copied > 1 {
			return
		}
		for i := 1; i <= 20; i++ {
			m.put(track(fmt.Sprintf("r/%04d", i)), value())
		}
		for i := 21; i <= 40; i++ {
			m.del(track(fmt.Sprintf("r/%04d", i)))
		}
		m.put(track("r/0041"), value())
		m.put(track("r/0041"), value())
		m.put(track("r/0499"), value()) // in the copy's last chunk
		for i := range 10 {
			m.put(track(fmt.Sprintf("n/%04d", i)), value())
		}
		m.put(track("t/0000"), value())
		m.del(track("t/0000"))
		m.put(track("e/0000"), nil)
		m.del(track("x/0000")) // never there
	})
	var held []int
	boltstore.OnCompactHeld(m.s, func(keys int) { held = append(held, keys) })
	if raw, err := os.ReadFile(path); err != nil || !bytes.Contains(raw, m.gone[0]) {
		t.Fatalf("the deleted value is not in the file's free pages (%v): the test shows nothing", err)
	}

	if err := m.s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if copied != 1 {
		t.Errorf("Compact caught up %d times, want none", copied-1)
	}
	if len(held) != 1 || held[0] != len(written) {
		t.Errorf("holding the calls back, Compact applied %v keys, want the %d written during its copy", held, len(written))
	}
	m.check(path)
}

// TestCompactCatchesUpBeforeItHolds: when more was written during the
// copy than Compact applies while it holds the calls back, it applies
// that first without holding them, and then what was written meanwhile;
// after catchUpRounds, whatever was written in the last.
func TestCompactCatchesUpBeforeItHolds(t *testing.T) {
	for _, c := range []struct {
		name   string
		writes []int // keys written after the copy, and after each round
		rounds int   // catch-up rounds
		held   int   // keys applied while the calls are held back
	}{
		{"none", []int{0}, 0, 0},
		{"few", []int{8}, 0, 8},
		{"many", []int{50, 3}, 1, 3},
		{"many, then none", []int{50, 0}, 1, 0},
		{"many keys, then many again", []int{50, 9, 30, 2}, 3, 2},
		{"more than the rounds", []int{50, 50, 50, 50, 50}, 4, 50},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kms.db")
			m := newModel(t, path)
			for i := range 300 {
				m.put(fmt.Sprintf("r/%04d", i), value())
			}
			boltstore.SetHeldBound(m.s, 8, 1<<20)
			calls := 0
			boltstore.OnCompactCopied(m.s, func() {
				defer func() { calls++ }()
				if calls >= len(c.writes) {
					t.Errorf("Compact caught up %d times", calls)
					return
				}
				for i := range c.writes[calls] {
					k := fmt.Sprintf("r/%04d", (i*7+calls*31)%300)
					if i%3 == 0 {
						m.del(k)
					} else {
						m.put(k, value())
					}
				}
			})
			var held []int
			boltstore.OnCompactHeld(m.s, func(keys int) { held = append(held, keys) })
			if err := m.s.Compact(context.Background()); err != nil {
				t.Fatal(err)
			}
			if calls-1 != c.rounds {
				t.Errorf("Compact caught up %d times, want %d", calls-1, c.rounds)
			}
			if len(held) != 1 || held[0] != c.held {
				t.Errorf("holding the calls back, Compact applied %v keys, want %d", held, c.held)
			}
			m.check(path)
		})
	}
}

// TestCompactCatchesUpOnBytes: a few keys written with more bytes than
// Compact applies while it holds the calls back are caught up first.
func TestCompactCatchesUpOnBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	m := newModel(t, path)
	m.put("a", value())
	boltstore.SetHeldBound(m.s, 100, 1000)
	calls := 0
	boltstore.OnCompactCopied(m.s, func() {
		if calls++; calls == 1 {
			for range 6 {
				m.put("b", value()) // 6 × 201 bytes
			}
		}
	})
	var held []int
	boltstore.OnCompactHeld(m.s, func(keys int) { held = append(held, keys) })
	if err := m.s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if calls != 2 || len(held) != 1 || held[0] != 0 {
		t.Errorf("after 1206 bytes written to one key: %d copies and rounds, %v keys applied holding the calls, want 2 and [0]", calls, held)
	}
	m.check(path)
}

// TestCompactWaitsForTheWriteInProgress: an Update that began its
// transaction before Compact began tracking, and commits after, is in
// the copy: Compact waits for it before it takes its snapshot.
func TestCompactWaitsForTheWriteInProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	m := newModel(t, path)
	m.put("a", value())
	inside, waiting, done := make(chan struct{}), make(chan struct{}), make(chan error)
	v := value()
	go func() {
		done <- m.s.Update(context.Background(), func(tx store.Tx) error {
			close(inside)
			<-waiting // Compact waits for this write, or has copied without it
			return tx.Put([]byte("k"), v)
		})
	}()
	<-inside
	once := func() { // either hook, whichever comes first
		select {
		case <-waiting:
		default:
			close(waiting)
		}
	}
	boltstore.OnCompactBarrier(m.s, once)
	boltstore.OnCompactCopied(m.s, once)
	compacted := make(chan error)
	go func() { compacted <- m.s.Compact(context.Background()) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-compacted; err != nil {
		t.Fatal(err)
	}
	m.live["k"] = v
	m.check(path)
}

// TestCompactCopiesInChunks: Compact copies a store larger than its
// chunk in many read transactions; records written between two of them,
// around the place the copy has reached (the last record it copied
// deleted or replaced, the next one deleted or replaced with a value
// larger than a chunk, records inserted just behind and just ahead), are
// in the new file as they are in the store, and none of the values they
// replaced or deleted is in its bytes.
func TestCompactCopiesInChunks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	m := newModel(t, path)
	const records = 300
	for i := range records {
		m.put(fmt.Sprintf("r/%04d", i), value())
	}
	big := func() []byte { return bytes.Repeat(value(), 15) } // 3000 bytes
	// next returns the first live key after k, or "".
	next := func(k string) string {
		var keys []string
		for l := range m.live {
			if l > k {
				keys = append(keys, l)
			}
		}
		if len(keys) == 0 {
			return ""
		}
		return slices.Min(keys)
	}
	// About 5 records in a chunk: 60 chunks, each of the cases below
	// several times.
	boltstore.SetCopyChunk(m.s, 1000)
	chunks := 0
	boltstore.OnCompactChunk(m.s, func(lastKey []byte) {
		last := string(lastKey)
		n := next(last)
		if n == "" {
			return
		}
		switch chunks++; chunks % 8 {
		case 0:
			m.del(last)
		case 1:
			m.del(n)
		case 2:
			m.put(last+"\x00", value()) // just ahead
		case 3:
			m.put(last[:len(last)-1], value()) // just behind
		case 4:
			m.put(last, value())
		case 5:
			m.put(n, big())
		case 6:
			m.del(last)
			m.del(n)
		case 7:
			m.put(fmt.Sprintf("a/%04d", chunks), value()) // before every record
			m.put(fmt.Sprintf("z/%04d", chunks), big())   // after every record
		}
	})
	if err := m.s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if chunks < 40 {
		t.Fatalf("Compact copied %d chunks: the test shows nothing", chunks+1)
	}
	m.check(path)
}

// TestCloseDuringCompact: a Store closed while Compact runs (a server
// stopping) ends the Compact with store.ErrClosed if it is before the
// swap, removing the copy, or waits for it if it holds the calls: the
// file opened again holds every record, and nothing of the copy is
// left in the directory.
func TestCloseDuringCompact(t *testing.T) {
	for _, at := range []string{"barrier", "chunk", "copied", "held"} {
		t.Run(at, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "kms.db")
			m := newModel(t, path)
			for i := range 100 {
				m.put(fmt.Sprintf("r/%04d", i), value())
			}
			m.del("r/0050")
			boltstore.SetCopyChunk(m.s, 1000)
			closed := make(chan error, 1)
			closeOnce := func() {
				if len(closed) == 0 && at != "held" {
					closed <- m.s.Close()
				}
			}
			boltstore.OnCompactBarrier(m.s, func() {
				if at == "barrier" {
					closeOnce()
				}
			})
			boltstore.OnCompactChunk(m.s, func([]byte) {
				if at == "chunk" {
					closeOnce()
				}
			})
			boltstore.OnCompactCopied(m.s, func() {
				if at == "copied" {
					closeOnce()
				}
			})
			boltstore.OnCompactHeld(m.s, func(int) {
				if at == "held" {
					go func() { closed <- m.s.Close() }()
				}
			})
			err := m.s.Compact(context.Background())
			if err := <-closed; err != nil {
				t.Fatalf("Close: %v", err)
			}
			if at == "held" {
				if err != nil {
					t.Fatalf("a Compact that held the calls as Close came: %v", err)
				}
			} else if !errors.Is(err, store.ErrClosed) {
				t.Fatalf("a Compact whose Store was closed: %v", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("the directory holds %d entries, want only kms.db", len(entries))
			}
			if at == "held" {
				m.check(path)
				return
			}
			m.gone = nil // not compacted
			m.check(path)
		})
	}
}

// TestCompactFailingAtEachStep: a Compact that fails at any of its
// steps before the swap (its context ended at its barrier, between two
// chunks, after its copy, after a catch-up; its rename failing while it
// holds the calls) returns the error, leaves the store's file as it was
// with every record written during it, removes its copy and lets the
// calls go on; the next Compact compacts.
func TestCompactFailingAtEachStep(t *testing.T) {
	for _, step := range []string{"barrier", "chunk", "copied", "caught up", "rename"} {
		t.Run(step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "kms.db")
			m := newModel(t, path)
			for i := range 100 {
				m.put(fmt.Sprintf("r/%04d", i), value())
			}
			m.del("r/0050")
			before, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			boltstore.SetCopyChunk(m.s, 1000)
			boltstore.SetHeldBound(m.s, 2, 1<<20)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n := 0
			at := func(s string, write bool) {
				if s != step {
					return
				}
				if write {
					m.put(fmt.Sprintf("r/%04d", n), value())
					n++
				}
				cancel()
			}
			boltstore.OnCompactBarrier(m.s, func() { at("barrier", true) })
			boltstore.OnCompactChunk(m.s, func([]byte) { at("chunk", true) })
			copies := 0
			boltstore.OnCompactCopied(m.s, func() {
				if copies++; copies == 1 {
					for i := range 5 { // more than the held bound: a catch-up
						m.put(fmt.Sprintf("c/%04d", i), value())
					}
					at("copied", false)
				} else {
					at("caught up", true)
				}
			})
			boltstore.OnCompactHeld(m.s, func(int) {
				if step == "rename" {
					os.Remove(path + ".compact")
				}
			})
			err = m.s.Compact(ctx)
			if step == "rename" {
				if !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a Compact whose rename failed: %v", err)
				}
			} else if !errors.Is(err, context.Canceled) {
				t.Fatalf("a Compact whose context ended: %v", err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("the directory holds %d entries, want only kms.db", len(entries))
			}
			if after, err := os.Stat(path); err != nil || !os.SameFile(before, after) {
				t.Errorf("the store's file was replaced by a Compact that failed (%v)", err)
			}
			m.put("after", value()) // the calls go on
			// The file opened again (without the hooks) holds every
			// record; the next Compact leaves none of the values gone.
			gone := m.gone
			m.gone = nil
			m.check(path)
			m.gone = gone
			if err := m.s.Compact(context.Background()); err != nil {
				t.Fatal(err)
			}
			m.check(path)
		})
	}
}
