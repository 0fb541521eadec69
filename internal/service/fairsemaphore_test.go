package service

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// waitFor yields until s has n calls waiting: the order in which a test's
// calls join their queues is then the order it started them in.
func waitFor(t *testing.T, s *fairSemaphore, n int) {
	t.Helper()
	for s.waitingCalls() != n {
		runtime.Gosched()
	}
}

// checkIdle fails unless s is as new, with places free: no call waits
// and no queue is left behind.
func checkIdle(t *testing.T, s *fairSemaphore, places int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free != places || s.waiting != 0 || s.turns.Len() != 0 || len(s.queues) != 0 {
		t.Errorf("idle semaphore: %d free, %d waiting, %d accounts in turn, %d queues; want %d free and nothing else",
			s.free, s.waiting, s.turns.Len(), len(s.queues), places)
	}
}

// A freed place goes to the oldest call of the next account in turn: an
// account's one call waits behind one call of each account ahead of it,
// not behind their whole queues.
func TestFairSemaphoreRoundRobin(t *testing.T) {
	s := newFairSemaphore(1)
	ctx := context.Background()
	hold, err := s.acquire(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan string)
	var wg sync.WaitGroup
	for i, call := range []string{"a1", "a2", "a3", "b1", "c1", "b2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := s.acquire(ctx, call[:1])
			if err != nil {
				t.Error(err)
				return
			}
			served <- call
			release()
		}()
		waitFor(t, s, i+1)
	}
	hold()
	var order []string
	for range 6 {
		order = append(order, <-served)
	}
	wg.Wait()
	if got, want := fmt.Sprint(order), "[a1 b1 c1 a2 b2 a3]"; got != want {
		t.Errorf("served %s; want %s", got, want)
	}
	checkIdle(t, s, 1)
}

// A call whose context ends stops waiting and leaves its queue; the calls
// behind it keep their turns.
func TestFairSemaphoreCancelLeavesQueue(t *testing.T) {
	s := newFairSemaphore(1)
	hold, err := s.acquire(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := s.acquire(gone, "b")
		done <- err
	}()
	waitFor(t, s, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a call whose client went: %v; want context.Canceled", err)
	}
	checkIdle(t, s, 0)
	hold()
	hold() // again: nothing
	checkIdle(t, s, 1)
	if _, err := s.acquire(gone, "b"); err != nil {
		t.Errorf("a done context with a place free: %v; want the place", err)
	}
}

// A call given a place just as its context ends either takes it or hands
// it on to the next call waiting: the place is never lost.
func TestFairSemaphoreCancelledGrantHandsOn(t *testing.T) {
	for range 200 {
		s := newFairSemaphore(1)
		if _, err := s.acquire(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
		gone, cancel := context.WithCancel(context.Background())
		first, next := make(chan func()), make(chan func())
		go func() {
			release, _ := s.acquire(gone, "b")
			first <- release
		}()
		waitFor(t, s, 1)
		go func() {
			release, err := s.acquire(context.Background(), "c")
			if err != nil {
				t.Error(err)
			}
			next <- release
		}()
		waitFor(t, s, 2)
		// a's place goes to b as b's context ends: b finds both when it
		// wakes, or finds its context done and then the place given.
		s.mu.Lock()
		cancel()
		s.handOn() // a's release
		s.mu.Unlock()
		if release := <-first; release != nil {
			release()
		}
		(<-next)()
		checkIdle(t, s, 1)
	}
}

// Many accounts, their calls cancelled at random, some before they wait:
// at no moment do more calls hold a place than there are places, every
// call either gets one or gives up with its context, and nothing is left
// waiting. Run with -race.
func TestFairSemaphoreConcurrent(t *testing.T) {
	const places, accounts, calls = 3, 12, 600
	s := newFairSemaphore(places)
	var held, peak atomic.Int32
	var served, gaveUp atomic.Int32
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			switch rand.IntN(4) {
			case 0:
				cancel()
			case 1:
				go cancel()
			}
			release, err := s.acquire(ctx, fmt.Sprint("account", i%accounts))
			if err != nil {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("acquire: %v", err)
				}
				gaveUp.Add(1)
				return
			}
			n := held.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			runtime.Gosched()
			held.Add(-1)
			served.Add(1)
			release()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > places {
		t.Errorf("%d places held at once; want at most %d", p, places)
	}
	if served.Load()+gaveUp.Load() != calls || served.Load() == 0 {
		t.Errorf("%d calls served and %d gave up, of %d", served.Load(), gaveUp.Load(), calls)
	}
	checkIdle(t, s, places)
}
