package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/openkms/kms/internal/store/boltstore"
)

// The warning of a rotation whose compaction failed says what is true of
// kms.db: a compaction that could not copy the file leaves the old
// values in its free pages; one whose file took the old one's place, but
// whose directory did not sync, cleared them, and only a crash before the
// directory syncs brings them back. It said the free pages may still hold
// them in both cases. One interrupted is not told to find room.
func TestCompactWarning(t *testing.T) {
	notDurable := fmt.Errorf("compact /d/kms.db: %w: %w", boltstore.ErrCompactedNotDurable, errors.New("input/output error"))
	got := compactWarning(notDurable)
	if !strings.HasPrefix(got, "kms: warning: the store is rotated, but ") || strings.Contains(got, "may still hold") ||
		!strings.Contains(got, "holds nothing sealed under the old root key") || !strings.Contains(got, "until the directory syncs") ||
		strings.Contains(got, "\n") {
		t.Errorf("the warning of a compaction whose directory did not sync: %q", got)
	}
	noRoom := errors.New("compact /d/kms.db: write /d/kms.db.compact: no space left on device")
	if got := compactWarning(noRoom); !strings.HasPrefix(got, "kms: warning: the store is rotated, but ") || !strings.Contains(got, "free pages may still hold") {
		t.Errorf("the warning of a compaction that could not copy the file: %q", got)
	}
	interrupted := fmt.Errorf("compact /d/kms.db: %w", context.Canceled)
	if got := compactWarning(interrupted); !strings.HasPrefix(got, "kms: warning: the store is rotated, but ") ||
		!strings.Contains(got, "interrupted") || !strings.Contains(got, "free pages may still hold") || strings.Contains(got, "room") {
		t.Errorf("the warning of a compaction interrupted (Ctrl-C): %q", got)
	}
}
