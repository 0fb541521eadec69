package service

import (
	"strconv"
	"testing"
	"time"

	"github.com/openkms/kms/internal/keyrepo"
)

// BenchmarkUsageNote is what recording a use adds to each successful
// cryptographic operation: one map write under a mutex, with callers on
// every core.
func BenchmarkUsageNote(b *testing.B) {
	t := newUsageTracker(time.Unix(0, 0))
	ids := make([]keyRef, 64)
	for i := range ids {
		ids[i] = keyRef{"us-east-1", "key-" + strconv.Itoa(i)}
	}
	u := keyrepo.LastUsage{Operation: "Encrypt", Time: time.Unix(1, 0), EventID: "e", RequestID: "r"}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			t.note(ids[i%len(ids)], u)
			i++
		}
	})
}
