package outbox

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/openkms/kms/internal/store"
)

// panickingStore panics on every read, as a bug on an entry it reads
// would.
type panickingStore struct{ store.Store }

func (panickingStore) View(context.Context, func(store.Tx) error) error { panic("injected fault") }

// TestRoundSurvivesAPanic: a round of Run that panics is logged, and does
// not end the process: the entries stay for the next round.
func TestRoundSurvivesAPanic(t *testing.T) {
	var logs bytes.Buffer
	now := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	b := New(headTrail{chain: "node-1"}, nil, func() time.Time { return now }, slog.New(slog.NewTextHandler(&logs, nil)))
	b.Wrap(panickingStore{})
	last := now.Add(-time.Hour) // Recover is due
	b.round(context.Background(), &last)
	if !last.Equal(now) || !strings.Contains(logs.String(), "panic in a round of the outbox") {
		t.Fatalf("a round that panicked: last Recover %v, logged:\n%s", last, logs.String())
	}
}
