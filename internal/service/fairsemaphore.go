package service

import (
	"container/list"
	"context"
	"sync"
)

// fairSemaphore is a counting semaphore whose places, while calls wait
// for one, go round-robin between the accounts that have calls waiting:
// a freed place goes to the longest-waiting call of the next account in
// turn. An account that keeps many calls waiting thus delays another
// account's call by at most one turn for each account waiting, not by
// its whole queue. A call whose context is done stops waiting and leaves
// its queue; one given a place just as its context ended hands the place
// on, so that no place is ever lost.
type fairSemaphore struct {
	mu      sync.Mutex
	free    int                      // places no one holds; 0 while any call waits
	waiting int                      // calls waiting, in every queue
	turns   list.List                // of *accountQueue, the accounts with calls waiting, the next one in front
	queues  map[string]*accountQueue // the same queues, by account
}

// accountQueue is the calls of one account waiting for a place.
type accountQueue struct {
	account string
	calls   list.List     // of chan struct{}, oldest first; closed when its call is given a place
	turn    *list.Element // its element in fairSemaphore.turns
}

func newFairSemaphore(places int) *fairSemaphore {
	return &fairSemaphore{free: places, queues: make(map[string]*accountQueue)}
}

// acquire waits for a place for a call of account, or until ctx is done,
// when it returns ctx's error and holds no place. The caller calls
// release once done with the place; calling it again does nothing.
func (s *fairSemaphore) acquire(ctx context.Context, account string) (release func(), err error) {
	s.mu.Lock()
	if s.free > 0 {
		s.free--
		s.mu.Unlock()
		return s.releaser(), nil
	}
	q := s.queues[account]
	if q == nil {
		q = &accountQueue{account: account}
		q.turn = s.turns.PushBack(q)
		s.queues[account] = q
	}
	granted := make(chan struct{})
	call := q.calls.PushBack(granted)
	s.waiting++
	s.mu.Unlock()

	select {
	case <-granted:
		return s.releaser(), nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-granted:
		// Given a place as its client went: the next call has it.
		s.handOn()
	default:
		// Still in q, which is therefore still in turns.
		q.calls.Remove(call)
		s.waiting--
		if q.calls.Len() == 0 {
			s.turns.Remove(q.turn)
			delete(s.queues, account)
		}
	}
	return nil, ctx.Err()
}

// waitingCalls is how many calls wait for a place.
func (s *fairSemaphore) waitingCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

func (s *fairSemaphore) releaser() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.handOn()
		})
	}
}

// handOn gives a place that was held to the oldest call of the account
// whose turn it is, which then goes to the back of the turns, or frees
// it if no call waits. s.mu is held.
func (s *fairSemaphore) handOn() {
	front := s.turns.Front()
	if front == nil {
		s.free++
		return
	}
	q := front.Value.(*accountQueue)
	granted := q.calls.Remove(q.calls.Front()).(chan struct{})
	s.waiting--
	if q.calls.Len() == 0 {
		s.turns.Remove(front)
		delete(s.queues, q.account)
	} else {
		s.turns.MoveToBack(front)
	}
	close(granted)
}
