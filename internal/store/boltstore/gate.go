package boltstore

import (
	"context"
	"sync"
	"time"
)

// gate lets any number of transactions use the store's *bolt.DB at once
// and Compact (or Close) have it alone, as a sync.RWMutex would; but
// Compact's wait for the transactions in progress is bounded: a
// transaction that lasts (a live backup's snapshot, a read nested in
// another) must not keep every new one waiting behind it. Once the wait
// ends, the new transactions go on and Compact gives up.
type gate struct {
	mu      sync.Mutex
	readers int
	held    chan struct{} // while one holds the gate or waits for it; closed when it lets go
	drained chan struct{} // closed when the last reader leaves while one waits
}

// enter waits while the gate is held or awaited, then lets one
// transaction in; or returns ctx.Err() if ctx ends first: a call must
// not outlast its deadline waiting for a copy of a large file.
func (g *gate) enter(ctx context.Context) error {
	g.mu.Lock()
	for g.held != nil {
		held := g.held
		g.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return ctx.Err()
		}
		g.mu.Lock()
	}
	g.readers++
	g.mu.Unlock()
	return nil
}

// leave lets one transaction out.
func (g *gate) leave() {
	g.mu.Lock()
	g.readers--
	if g.readers == 0 && g.drained != nil {
		close(g.drained)
		g.drained = nil
	}
	g.mu.Unlock()
}

// hold keeps new transactions out and waits for those in progress to
// leave, for at most wait (without end if wait is zero). It reports
// whether it holds the gate; if not, the transactions that waited go on.
// A holder lets go with release.
func (g *gate) hold(wait time.Duration) bool {
	g.mu.Lock()
	for g.held != nil {
		held := g.held
		g.mu.Unlock()
		<-held
		g.mu.Lock()
	}
	g.held = make(chan struct{})
	if g.readers == 0 {
		g.mu.Unlock()
		return true
	}
	drained := make(chan struct{})
	g.drained = drained
	g.mu.Unlock()
	var timeout <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-drained:
		return true
	case <-timeout:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.readers == 0 {
		return true // the last one left as the wait ended
	}
	g.drained = nil
	close(g.held)
	g.held = nil
	return false
}

// release lets go of a gate hold took.
func (g *gate) release() {
	g.mu.Lock()
	close(g.held)
	g.held = nil
	g.mu.Unlock()
}
