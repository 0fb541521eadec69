package identity_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openkms/kms/internal/fault"
	"github.com/openkms/kms/internal/identity"
	"github.com/openkms/kms/internal/store"
)

// sessionReads counts the session records (iam/session/...) read
// through it.
type sessionReads struct {
	store.Store
	n atomic.Int64
}

func (s *sessionReads) View(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.View(ctx, func(tx store.Tx) error { return fn(sessionReadsTx{tx, &s.n}) })
}

type sessionReadsTx struct {
	store.Tx
	n *atomic.Int64
}

func (t sessionReadsTx) Get(key []byte) ([]byte, error) {
	if bytes.HasPrefix(key, []byte("iam/session/")) {
		t.n.Add(1)
	}
	return t.Tx.Get(key)
}

func (t sessionReadsTx) Scan(prefix, after []byte, fn func(key, value []byte) (bool, error)) error {
	return t.Tx.Scan(prefix, after, func(k, v []byte) (bool, error) {
		if bytes.HasPrefix(k, []byte("iam/session/")) {
			t.n.Add(1)
		}
		return fn(k, v)
	})
}

// The removal of expired sessions, every minute, reads the sessions due
// alone, not every live one: a caller allowed sts:AssumeRole makes one a
// call, each kept for up to 36 hours. A store whose sessions were stored
// before the index is read whole once, and its sessions are still
// removed on time.
func TestExpiredSessionRoundReadsOnlySessionsDue(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateRole(f.ctx, f.root1, "r", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	const sessions = 30
	var short []time.Time
	var first *identity.Credentials
	for i := range sessions {
		c, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "r"), "ss", 900+int32(i)*60, "")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = c
		}
		short = append(short, c.Expiration)
	}
	// As stored before the index: none of them in it.
	if err := f.st.Update(f.ctx, func(tx store.Tx) error {
		var names [][]byte
		err := tx.Scan([]byte("sessionexpiry/"), nil, func(k, _ []byte) (bool, error) {
			names = append(names, bytes.Clone(k))
			return true, nil
		})
		for _, k := range names {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		if len(names) != sessions {
			t.Errorf("%d sessions in the expiry index, want %d", len(names), sessions)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	counted := &sessionReads{Store: f.st}
	cfg := f.cfg
	cfg.Store = counted
	d := identity.New(cfg)
	round := func() int64 {
		t.Helper()
		before := counted.n.Load()
		if err := d.DeleteExpiredSessions(f.ctx); err != nil {
			t.Fatal(err)
		}
		return counted.n.Load() - before
	}
	if n := round(); n < sessions {
		t.Errorf("the first round over sessions stored before the index read %d session records, want them all", n)
	}
	if n := round(); n != 0 {
		t.Errorf("a round with no session due read %d session records, want 0", n)
	}
	f.clock.Set(short[4].Add(24 * time.Hour)) // the first five are due
	if n := round(); n > 5 {
		t.Errorf("a round with 5 sessions due read %d session records", n)
	}
	_, err := authenticateSession(f, identity.New(f.cfg), first)
	wantErr(t, err, fault.InvalidClientTokenID, "The security token included in the request is invalid.")
	left := 0
	if err := f.st.View(f.ctx, func(tx store.Tx) error {
		return tx.Scan([]byte("iam/session/"), nil, func(_, _ []byte) (bool, error) { left++; return true, nil })
	}); err != nil {
		t.Fatal(err)
	}
	if left != sessions-5 {
		t.Errorf("%d sessions left, want %d", left, sessions-5)
	}
}

// A session stored without its index record after the store was marked
// (by a server of an earlier version: the nodes of a cluster are upgraded
// one at a time, and a server may be rolled back) is still removed, by
// the round that reads every session once a week, and indexed if kept;
// the rounds between read none.
func TestSessionStoredWithoutIndexAfterTheMarkIsRemoved(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.d.CreateRole(f.ctx, f.root1, "r", "", trustAccount(acct), "", 0); err != nil {
		t.Fatal(err)
	}
	counted := &sessionReads{Store: f.st}
	cfg := f.cfg
	cfg.Store = counted
	d := identity.New(cfg)
	if err := d.DeleteExpiredSessions(f.ctx); err != nil { // marks the store
		t.Fatal(err)
	}
	unindex := func() {
		t.Helper()
		if err := f.st.Update(f.ctx, func(tx store.Tx) error {
			var names [][]byte
			err := tx.Scan([]byte("sessionexpiry/"), nil, func(k, _ []byte) (bool, error) {
				names = append(names, bytes.Clone(k))
				return true, nil
			})
			for _, k := range names {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	old, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "r"), "old", 900, "")
	if err != nil {
		t.Fatal(err)
	}
	unindex() // as an earlier version stores it
	kept := func() int {
		t.Helper()
		n := 0
		if err := f.st.View(f.ctx, func(tx store.Tx) error {
			return tx.Scan([]byte("iam/session/"), nil, func(_, _ []byte) (bool, error) { n++; return true, nil })
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	f.clock.Set(old.Expiration.Add(25 * time.Hour))
	before := counted.n.Load()
	if err := d.DeleteExpiredSessions(f.ctx); err != nil {
		t.Fatal(err)
	}
	if n := counted.n.Load() - before; n != 0 {
		t.Errorf("a round within a week of the last full one read %d session records, want 0", n)
	}
	// A week after the full round, with another session stored so and
	// still live.
	f.clock.Advance(7 * 24 * time.Hour)
	live, _, err := f.d.AssumeRole(f.ctx, f.assumer(), roleARN(acct, "r"), "live", 3600, "")
	if err != nil {
		t.Fatal(err)
	}
	unindex()
	if err := d.DeleteExpiredSessions(f.ctx); err != nil {
		t.Fatal(err)
	}
	if n := kept(); n != 1 {
		t.Fatalf("%d session records after the weekly round, want 1: the live one", n)
	}
	f.clock.Set(live.Expiration.Add(25 * time.Hour))
	before = counted.n.Load()
	if err := d.DeleteExpiredSessions(f.ctx); err != nil {
		t.Fatal(err)
	}
	if n := kept(); n != 0 {
		t.Errorf("%d session records left a day after their end: the weekly round did not index them", n)
	}
	if n := counted.n.Load() - before; n > 2 {
		t.Errorf("a round with 2 sessions due read %d session records", n)
	}
}
