package nodump_test

import (
	"testing"

	"github.com/openkms/kms/internal/nodump"
)

func TestSet(t *testing.T) {
	if err := nodump.Set(); err != nil {
		t.Fatal(err)
	}
	if d, err := nodump.Dumpable(); err != nil || d {
		t.Fatalf("dumpable after Set: %v, %v", d, err)
	}
}
