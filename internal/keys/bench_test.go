package keys_test

import (
	"fmt"
	"testing"
)

var benchSizes = []int{32, 4096}

var benchContext = map[string]string{"purpose": "benchmark", "Department": "10"}

func BenchmarkSeal(b *testing.B) {
	s := mustSymmetric(b, testID, testVersion, testMaterial)
	for _, n := range benchSizes {
		pt := make([]byte, n)
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Seal(pt, benchContext); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	s := mustSymmetric(b, testID, testVersion, testMaterial)
	for _, n := range benchSizes {
		blob := mustSeal(b, s, make([]byte, n), benchContext)
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Open(blob, benchContext); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
