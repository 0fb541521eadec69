// Package testsupport holds what the tests of several packages share; it
// is for tests only and no production code imports it.
//
// It holds a fake clock, Clock, which tests hand to the code under test
// in place of time.Now and move forward instead of sleeping,
// SDKHTTPClient, the HTTP client the tests' aws-sdk-go-v2 clients send
// through, HoldStore, a store that holds a read transaction while a test
// lands a change, and WithNewerKMS, botocore's KMS model with what the API
// gained after it.
package testsupport

import (
	"sync"
	"time"
)

// Clock is a fake clock: it reads the time it was set to until a test
// moves it. It is safe for concurrent use, so the code under test may read
// it from its own goroutines while the test moves it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time. Its method value (c.Now) is what a
// component that takes a func() time.Time is given.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d (back, if d is negative) and
// returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
