package boltstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// tagLen is the length of the random tag each value begins with: a tag
// found in a file's bytes is the value's, or a part of it.
const tagLen = 16

type tag [tagLen]byte

// ledger is the model of a store that several goroutines write at once:
// each key's value as the last committed write left it, and the tags of
// the values no record holds any more, in the order that was known.
type ledger struct {
	mu   sync.Mutex
	seq  uint64            // of the last write transaction begun; bbolt runs one at a time
	keys map[string]record // as the acknowledged writes left them
	gone []tag
}

// record is a key's value (nil: deleted) after the write transaction seq.
type record struct {
	seq uint64
	val []byte
}

// op is one change of a write transaction: a put, or a delete if val is
// nil.
type op struct {
	key string
	val []byte
}

// write commits ops in one Update of s and, once acknowledged, records
// them: the transaction's place among the others is the number it drew
// inside (write transactions run one at a time), so that the ledger
// keeps for each key the value of the last transaction committed,
// whichever acknowledgement came first.
func (l *ledger) write(s *boltstore.Store, ops []op) error {
	var seq uint64
	err := s.Update(context.Background(), func(tx store.Tx) error {
		l.mu.Lock()
		l.seq++
		seq = l.seq
		l.mu.Unlock()
		for _, o := range ops {
			var err error
			if o.val == nil {
				err = tx.Delete([]byte(o.key))
			} else {
				err = tx.Put([]byte(o.key), o.val)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range ops {
		old, ok := l.keys[o.key]
		switch {
		case ok && old.seq > seq: // a later transaction replaced it
			l.drop(o.val)
		default:
			if ok {
				l.drop(old.val)
			}
			l.keys[o.key] = record{seq, o.val}
		}
	}
	return nil
}

// drop notes that no record holds v any more.
func (l *ledger) drop(v []byte) {
	if len(v) >= tagLen {
		l.gone = append(l.gone, tag(v))
	}
}

// goneSoFar returns how many values are known to be held by no record.
func (l *ledger) goneSoFar() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.gone)
}

// randomOps returns one to three puts and deletes, most of keys among
// few, so that writers collide: values empty, of a few bytes, or
// spanning pages.
func randomOps(r *mrand.Rand) []op {
	ops := make([]op, 1+r.IntN(3)/2+r.IntN(2)*r.IntN(2))
	for i := range ops {
		if r.IntN(3) == 0 { // many keys, each written seldom
			ops[i].key = fmt.Sprintf("k/%04d", r.IntN(1000))
		} else {
			ops[i].key = fmt.Sprintf("%c/%02d", "az"[r.IntN(2)], r.IntN(50))
		}
		switch n := r.IntN(100); {
		case n < 25: // delete
		case n < 28:
			ops[i].val = []byte{}
		default:
			size := tagLen + r.IntN(300)
			if n >= 94 {
				size = 5000 + r.IntN(5000) // overflow pages
			}
			ops[i].val = make([]byte, size)
			rand.Read(ops[i].val)
		}
	}
	return ops
}

// TestCompactModel: writers put and delete records at random, alone and
// several in one transaction, while Compact runs again and again; its
// copy made in small chunks, some catching up before they hold the
// calls, some stopped midway by their context, with writes of their own
// between chunks, after the copy and the catch-ups. Every round ends
// with the writers stopped and the store closed: the store, and the
// store opened again from its file, hold exactly what the acknowledged
// writes left. After each Compact, its file holds none of the values
// deleted or replaced before it held the calls; no copy is left.
//
// Run it many times (-count=20 -race): each run draws other writes and
// other compactions.
func TestCompactModel(t *testing.T) {
	const (
		rounds      = 4
		writers     = 3
		compactions = 3 // in each round
	)
	seed := mrand.Uint64()
	t.Logf("seed %d", seed)
	r := mrand.New(mrand.NewPCG(seed, 1))
	path := filepath.Join(t.TempDir(), "kms.db")
	l := &ledger{keys: map[string]record{}}
	compacted, stopped := 0, 0
	defer func() {
		t.Logf("%d write transactions, %d values gone; %d compactions, %d stopped", l.seq, len(l.gone), compacted, stopped)
	}()
	for round := range rounds {
		s, err := boltstore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		// Each Compact waits for the writers' transactions however long
		// a loaded machine's fsyncs take, rather than giving up.
		s.SetDrainWait(0)
		boltstore.SetCopyChunk(s, 256<<r.IntN(6))
		// Writes of the test's own, at the boundaries of Compact's steps;
		// the writers' fall anywhere.
		own := mrand.New(mrand.NewPCG(r.Uint64(), 2))
		writeOwn := func() {
			if err := l.write(s, randomOps(own)); err != nil {
				t.Errorf("a write between Compact's steps: %v", err)
			}
		}
		boltstore.OnCompactBarrier(s, writeOwn)
		boltstore.OnCompactChunk(s, func(last []byte) {
			switch own.IntN(4) {
			case 0:
				writeOwn()
			case 1: // where the copy goes on from
				if err := l.write(s, []op{{key: string(last)}}); err != nil {
					t.Errorf("a write between Compact's chunks: %v", err)
				}
			}
		})
		boltstore.OnCompactCopied(s, func() {
			for range own.IntN(4) {
				writeOwn()
			}
		})
		var cutoff int // values gone before Compact held the calls
		boltstore.OnCompactHeld(s, func(int) { cutoff = l.goneSoFar() })

		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			wr := mrand.New(mrand.NewPCG(r.Uint64(), uint64(w)))
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if err := l.write(s, randomOps(wr)); err != nil {
						t.Errorf("a write beside Compact: %v", err)
						return
					}
				}
			})
		}
		for range compactions {
			boltstore.SetHeldBound(s, 1+r.IntN(20), 1<<(8+r.IntN(10)))
			ctx, cancel := context.WithCancel(context.Background())
			var compactCtx context.Context = ctx
			if r.IntN(3) == 0 { // ends as it copies, or later
				compactCtx = &endsAtCheck{Context: ctx, cancel: cancel, n: 1 + r.IntN(250), at: func() {}}
			}
			cutoff = -1
			err := s.Compact(compactCtx)
			cancel()
			switch {
			case err == nil:
				compacted++
				if cutoff < 0 {
					t.Fatal("Compact succeeded without holding the calls")
				}
				checkGone(t, path, l, cutoff)
			case errors.Is(err, context.Canceled):
				stopped++
			default:
				t.Errorf("Compact: %v", err)
			}
			if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Compact left its copy (%v)", err)
			}
		}
		close(stop)
		wg.Wait()
		checkLedger(t, s, l, fmt.Sprintf("round %d, the store", round))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = boltstore.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		checkLedger(t, s, l, fmt.Sprintf("round %d, the store opened again", round))
		s.Close()
		if t.Failed() {
			return
		}
	}
}

// checkLedger fails t unless s holds exactly the records of l.
func checkLedger(t *testing.T, s *boltstore.Store, l *ledger, what string) {
	t.Helper()
	held := map[string][]byte{}
	if err := s.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan(nil, nil, func(k, v []byte) (bool, error) {
			held[string(k)] = bytes.Clone(v)
			return true, nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, rec := range l.keys {
		if got, ok := held[k]; rec.val != nil && (!ok || !bytes.Equal(got, rec.val)) {
			t.Errorf("%s: %q holds %.8x (%v), want %.8x", what, k, got, ok, rec.val)
		} else if rec.val == nil && ok {
			t.Errorf("%s: %q holds %.8x, deleted", what, k, got)
		}
	}
	for k := range held {
		if _, ok := l.keys[k]; !ok {
			t.Errorf("%s: %q holds a record never written", what, k)
		}
	}
}

// checkGone fails t if the file at path holds the tag of one of the
// first n values l knows no record holds.
func checkGone(t *testing.T, path string, l *ledger, n int) {
	t.Helper()
	l.mu.Lock()
	gone := make(map[tag]bool, n)
	for _, g := range l.gone[:n] {
		gone[g] = true
	}
	l.mu.Unlock()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+tagLen <= len(raw); i++ {
		if gone[tag(raw[i:i+tagLen])] {
			t.Errorf("the compacted file holds at %d a value deleted or replaced before Compact held the calls", i)
			return
		}
	}
}
