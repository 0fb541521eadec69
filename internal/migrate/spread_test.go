package migrate

import (
	"slices"
	"testing"
)

func TestSpread(t *testing.T) {
	tests := []struct {
		n, parts int
		first    []int // the first indices, one per part
	}{
		{n: 0, parts: 20},
		{n: 3, parts: 20, first: []int{0, 1, 2}},
		{n: 10, parts: 3, first: []int{0, 3, 6}},
		{n: 100, parts: 4, first: []int{0, 25, 50, 75}},
		{n: 1001, parts: 20},
	}
	if got := slices.Collect(spread(5, 0)); len(got) != 0 {
		t.Errorf("spread(5, 0) = %v, want nothing", got)
	}
	for _, tc := range tests {
		got := slices.Collect(spread(tc.n, tc.parts))
		if len(got) != tc.n || !slices.Equal(slices.Sorted(slices.Values(got)), seq(tc.n)) {
			t.Errorf("spread(%d, %d) = %v: not each index once", tc.n, tc.parts, got)
			continue
		}
		if tc.first != nil && !slices.Equal(got[:len(tc.first)], tc.first) {
			t.Errorf("spread(%d, %d) starts %v, want %v", tc.n, tc.parts, got[:len(tc.first)], tc.first)
		}
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
