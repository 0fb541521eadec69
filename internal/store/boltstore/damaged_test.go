package boltstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
)

// TestOpenRefusesDamagedFile opens key stores cut short or overwritten in
// part. Each must be refused with an error naming the file: bbolt panics
// on such pages, or faults reading past the end of the file, which would
// crash the server.
func TestOpenRefusesDamagedFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	s, err := boltstore.Open(good)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		err := s.Update(context.Background(), func(tx store.Tx) error {
			for j := range 100 {
				if err := tx.Put(fmt.Appendf(nil, "key/%04d/%04d", i, j), make([]byte, 300)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	whole, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(whole) < 256<<10 {
		t.Fatalf("the store is %d bytes, want a few hundred KiB", len(whole))
	}
	damaged := map[string][]byte{}
	for _, n := range []int{16 << 10, 64 << 10, len(whole) / 2} {
		damaged[fmt.Sprintf("cut to %d bytes", n)] = whole[:n]
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, page := range []int{2, 3, 4, 10, 40} {
		b := append([]byte(nil), whole...)
		for i := page * 4096; i < (page+4)*4096 && i < len(b); i++ {
			b[i] = byte(rnd.Uint32())
		}
		damaged[fmt.Sprintf("pages %d to %d random", page, page+3)] = b
	}
	refused := 0
	for name, b := range damaged {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := boltstore.Open(path)
		if err == nil {
			// Damage bbolt does not see (a page no longer in use) may
			// open; what opens must read.
			s.View(context.Background(), func(tx store.Tx) error { return nil })
			s.Close()
			continue
		}
		refused++
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want an error naming the file", name, err)
		}
	}
	if refused < len(damaged)/2 {
		t.Errorf("%d of %d damaged files refused", refused, len(damaged))
	}
}
