package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/openkms/kms/internal/audit"
	"github.com/openkms/kms/internal/store"
)

// blockingViews is a store whose reads wait for release, counting how
// many wait at once.
type blockingViews struct {
	store.Store
	release       chan struct{}
	started       chan struct{}
	running, most atomic.Int32
}

func (s *blockingViews) View(ctx context.Context, fn func(store.Tx) error) error {
	n := s.running.Add(1)
	defer s.running.Add(-1)
	for {
		m := s.most.Load()
		if n <= m || s.most.CompareAndSwap(m, n) {
			break
		}
	}
	s.started <- struct{}{}
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Readiness checks asked for at once share one read of the store: /readyz
// answers anyone, and each check that read the store for itself let
// unauthenticated requests, thousands at once, take every connection of
// the PostgreSQL pool from the calls.
func TestReadinessChecksShareOneRead(t *testing.T) {
	trail, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	st := &blockingViews{release: make(chan struct{}), started: make(chan struct{}, 100)}
	ready := readiness(st, trail, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))

	const checks = 50
	var wg sync.WaitGroup
	var entered sync.WaitGroup
	errs := make(chan error, checks)
	<-func() chan struct{} { // the first check is reading the store
		wg.Add(1)
		go func() { defer wg.Done(); errs <- ready(context.Background()) }()
		return st.started
	}()
	for range checks - 1 {
		wg.Add(1)
		entered.Add(1)
		go func() {
			defer wg.Done()
			entered.Done()
			errs <- ready(context.Background())
		}()
	}
	entered.Wait()
	close(st.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a readiness check: %v", err)
		}
	}
	if m := st.most.Load(); m != 1 {
		t.Errorf("%d readiness checks read the store at once, want 1", m)
	}
}
