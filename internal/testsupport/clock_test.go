package testsupport_test

import (
	"sync"
	"testing"
	"time"

	"github.com/openkms/kms/internal/testsupport"
)

func TestClock(t *testing.T) {
	start := time.Date(2030, time.March, 4, 5, 6, 7, 890_000_000, time.UTC)
	c := testsupport.NewClock(start)
	now := c.Now
	for _, step := range []struct {
		name string
		move func() time.Time // returns what the step itself reports, if anything
		want time.Time
	}{
		{"starts where it was made", func() time.Time { return start }, start},
		{"stands still when not moved", func() time.Time { return start }, start},
		{"advances", func() time.Time { return c.Advance(90 * time.Second) }, start.Add(90 * time.Second)},
		{"advances by nothing", func() time.Time { return c.Advance(0) }, start.Add(90 * time.Second)},
		{"goes back", func() time.Time { return c.Advance(-time.Hour) }, start.Add(90*time.Second - time.Hour)},
		{"is set", func() time.Time { c.Set(start.AddDate(1, 0, 0)); return start.AddDate(1, 0, 0) }, start.AddDate(1, 0, 0)},
		{"advances from where it was set", func() time.Time { return c.Advance(time.Nanosecond) }, start.AddDate(1, 0, 0).Add(time.Nanosecond)},
	} {
		if got := step.move(); !got.Equal(step.want) {
			t.Fatalf("%s: the step returned %v, want %v", step.name, got, step.want)
		}
		if got := c.Now(); !got.Equal(step.want) {
			t.Fatalf("%s: Now() = %v, want %v", step.name, got, step.want)
		}
		if got := now(); !got.Equal(step.want) {
			t.Fatalf("%s: the method value taken earlier reads %v, want %v", step.name, got, step.want)
		}
	}
}

// TestClockConcurrent moves and reads the clock from many goroutines; run
// with -race it shows the clock needs no lock of the caller's, and the
// sum of the moves shows none was lost.
func TestClockConcurrent(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := testsupport.NewClock(start)
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Add(2)
		go func() { defer wg.Done(); c.Advance(time.Second) }()
		go func() {
			defer wg.Done()
			if got := c.Now(); got.Before(start) || got.After(start.Add(n*time.Second)) {
				t.Errorf("Now() = %v, outside [%v, %v]", got, start, start.Add(n*time.Second))
			}
		}()
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(n*time.Second); !got.Equal(want) {
		t.Fatalf("after %d concurrent advances of 1s: %v, want %v", n, got, want)
	}
}
