package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/keyrepo"
	"github.com/openkms/kms/internal/keys"
	"github.com/openkms/kms/internal/kmsapi"
	"github.com/openkms/kms/internal/service"
	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/testsupport"
)

// panickingViews panics in View while armed, as a bug on a record it
// reads would.
type panickingViews struct {
	store.Store
	armed *atomic.Bool
}

func (s panickingViews) View(ctx context.Context, fn func(store.Tx) error) error {
	if s.armed.Load() {
		panic("injected fault")
	}
	return s.Store.View(ctx, fn)
}

// syncBuffer is a log the test reads while nothing writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestMaintenanceRoundSurvivesAPanic: a maintenance round that panics is
// logged and ends, without ending the process (on a cluster, every node
// that took the lease after it would have ended in turn); the next round
// does the work.
func TestMaintenanceRoundSurvivesAPanic(t *testing.T) {
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	var armed atomic.Bool
	st := panickingViews{Store: bolt, armed: &armed}
	k := make([]byte, 32)
	rand.Read(k)
	root, err := keys.NewRootKey(k)
	if err != nil {
		t.Fatal(err)
	}
	clock := testsupport.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	dir := identity.New(identity.Config{Store: st, RootKey: root, Region: "us-east-1", Now: clock.Now, Logger: log})
	svc, err := service.New(service.Config{Store: st, RootKey: root, Region: "us-east-1", Now: clock.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	created, err := svc.CreateKey(ctx, rootCaller, &kmsapi.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	id := created.KeyMetadata.KeyID
	days := int32(7)
	if _, err := svc.ScheduleKeyDeletion(ctx, rootCaller, &kmsapi.ScheduleKeyDeletionInput{KeyID: id, PendingWindowInDays: &days}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(8 * 24 * time.Hour)
	m := &maintainer{svc: svc, dir: dir, log: log}

	armed.Store(true)
	m.tick(ctx)
	armed.Store(false)
	if !strings.Contains(logs.String(), "panic in background maintenance") {
		t.Fatalf("the round that panicked logged:\n%s", logs)
	}
	stored := func() bool {
		err := bolt.View(ctx, func(tx store.Tx) error {
			_, err := tx.Get(keyrepo.KeyKey("us-east-1", id))
			return err
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	if !stored() {
		t.Fatal("the key was deleted by the round that panicked")
	}
	m.tick(ctx)
	if stored() {
		t.Fatal("the key past its deletion date is still stored after the next round")
	}
}

// changes is a cache that records the changes it is told of, and panics
// on those named in panicOn.
type changes struct {
	got     [][][]byte
	panicOn string
}

func (c *changes) Changed(records [][]byte) {
	c.got = append(c.got, records)
	for _, r := range records {
		if string(r) == c.panicOn {
			panic("injected fault")
		}
	}
}

// TestApplyChangesEmptiesTheCachesOnAPanic: a change of another node that
// makes a cache panic empties every cache (as a lost connection does)
// instead of ending the process; a panic while emptying them is not
// survived, since the caches would then serve what was revoked.
func TestApplyChangesEmptiesTheCachesOnAPanic(t *testing.T) {
	logs := &syncBuffer{}
	a, b := &changes{panicOn: "key/bad"}, &changes{}
	apply := applyChanges(slog.New(slog.NewTextHandler(logs, nil)), a, b)

	apply([][]byte{[]byte("key/good")})
	apply([][]byte{[]byte("key/bad")})
	if len(a.got) != 3 || a.got[2] != nil || len(b.got) != 2 || b.got[1] != nil {
		t.Fatalf("after a change that panicked, the caches were told %q and %q; want both emptied", a.got, b.got)
	}
	if !strings.Contains(logs.String(), "they are emptied") {
		t.Fatalf("the change that panicked logged:\n%s", logs)
	}

	flushPanics := &changes{}
	apply = applyChanges(slog.New(slog.DiscardHandler), panicsOnFlush{flushPanics})
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = errors.New("panicked")
			}
		}()
		apply([][]byte{[]byte("key/bad")})
		return nil
	}()
	if err == nil {
		t.Fatal("a cache that cannot be emptied was left serving")
	}
}

// panicsOnFlush panics on every change.
type panicsOnFlush struct{ c *changes }

func (p panicsOnFlush) Changed(records [][]byte) {
	p.c.got = append(p.c.got, records)
	panic("injected fault")
}
