package changelog_test

import (
	"testing"

	"github.com/openkms/kms/internal/changelog"
)

// A read is refused by a change to its own entry after it began, never
// by one to another entry, nor by one that came before it began.
func TestChangedSince(t *testing.T) {
	l := changelog.New[string](0)
	l.Changed("a") // before the read
	began := l.Now()
	if l.ChangedSince("a", began) || l.ChangedSince("b", began) {
		t.Fatal("a change before the read began refuses it")
	}
	for range 100 {
		l.Changed("b")
	}
	if l.ChangedSince("a", began) {
		t.Error("changes to b refuse a read of a")
	}
	if !l.ChangedSince("b", began) {
		t.Error("a change to b does not refuse a read of b that began before it")
	}
	if l.ChangedSince("b", l.Now()) {
		t.Error("a read of b that began after its change is refused")
	}
	l.Changed("a")
	if !l.ChangedSince("a", began) {
		t.Error("a change to a does not refuse a read of a that began before it")
	}
}

// A flush refuses every read that began before it, and none after.
func TestFlushed(t *testing.T) {
	l := changelog.New[string](0)
	began := l.Now()
	l.Changed("a")
	l.Flushed()
	for _, k := range []string{"a", "b"} {
		if !l.ChangedSince(k, began) {
			t.Errorf("a read of %s that began before a flush is not refused", k)
		}
		if l.ChangedSince(k, l.Now()) {
			t.Errorf("a read of %s that began after a flush is refused", k)
		}
	}
}

// Past its capacity the log forgets its oldest changes; a read that began
// before one it forgot is refused whatever its entry, and memory stays
// bounded however many entries change.
func TestCapacity(t *testing.T) {
	l := changelog.New[int](4)
	began := l.Now()
	l.Changed(1)
	mid := l.Now()
	for i := range 4 {
		l.Changed(100 + i) // forgets the change to 1
	}
	if !l.ChangedSince(1, began) {
		t.Error("a forgotten change to 1 does not refuse a read of 1 that began before it")
	}
	if !l.ChangedSince(2, began) {
		t.Error("a read that began before a forgotten change is not refused")
	}
	if l.ChangedSince(2, mid) || l.ChangedSince(1, mid) {
		t.Error("a read that began after the forgotten change is refused for want of memory")
	}
	if !l.ChangedSince(103, mid) {
		t.Error("a remembered change does not refuse a read that began before it")
	}
	for i := range 100000 {
		l.Changed(i)
	}
	if n := changelog.Remembered(l); n > 4 {
		t.Errorf("%d entries remembered, want at most 4", n)
	}
	if l.ChangedSince(7, l.Now()) {
		t.Error("a read that began after every change is refused")
	}
}

// An entry changed again keeps its newest change when its older one is
// forgotten.
func TestCapacityKeepsTheNewestChange(t *testing.T) {
	l := changelog.New[int](3)
	l.Changed(1)
	began := l.Now()
	l.Changed(2)
	l.Changed(1) // the newer change to 1
	l.Changed(3) // forgets the first change to 1
	if !l.ChangedSince(1, began) {
		t.Error("the newer change to 1 was forgotten with the older")
	}
}
