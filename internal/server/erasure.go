package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/openkms/kms/internal/store"
	"github.com/openkms/kms/internal/store/boltstore"
	"github.com/openkms/kms/internal/store/pgstore"
)

// compactLockTimeout bounds a running server's wait for kms_records'
// lock before it rewrites the table: every session that asks for the
// table meanwhile, on every node, queues behind that wait.
const compactLockTimeout = time.Second

// eraser clears the store's files of the secret material that a change
// erased (store.ErasedPrefix): a deleted key's sealed material, imported
// material deleted or expired, a deleted access key's secret, a console
// password's hash replaced or deleted. The
// maintenance round runs it once per round, and it compacts the store
// only if something was erased since the last compaction, so that no
// call can make the server copy its store more often than that.
type eraser struct {
	st      store.Store                                  // the records as the service reads them
	compact func(context.Context) (time.Duration, error) // rewrites the store's files; returns how long calls waited for it, at most
	stays   string                                       // what keeps the erased material if compact fails
	log     *slog.Logger
	refused bool // the role may not rewrite kms_records: not tried again
	failed  int  // compactions failed in a row
	wait    int  // rounds to let pass before the next try
}

// maxRetryRounds bounds the rounds between two tries of a compaction that
// keeps failing: a cause that lasts (a standby whose feedback holds back
// PostgreSQL's horizon, a full disk) must not make the server copy its
// store every minute, nor leave the erasure for longer than an hour.
const maxRetryRounds = 60

// boltEraser compacts kms.db (boltstore.Store.Compact, which stops when
// the round's context ends: at shutdown), but not while a backup's
// snapshot is taken: Compact would hold every call back for its whole
// wait, then give up. backups is held for each snapshot.
func boltEraser(st store.Store, db *boltstore.Store, backups *sync.Mutex, log *slog.Logger) *eraser {
	return &eraser{st: st, log: log,
		stays: "kms.db's free pages still hold the sealed material erased since its last compaction (deleted keys, deleted or expired imported material, deleted access keys, the hashes of console passwords replaced or deleted)",
		compact: func(ctx context.Context) (time.Duration, error) {
			if !backups.TryLock() {
				return 0, errors.New("a backup's snapshot is being taken")
			}
			defer backups.Unlock()
			return db.CompactHeld(ctx)
		}}
}

// pgEraser rewrites kms_records (VACUUM FULL), waiting at most
// compactLockTimeout for its lock, and counts it done unless a snapshot
// as old as the last erasure may have kept what it erased
// (pgstore.Store.CompactErased).
func pgEraser(st store.Store, pg *pgstore.Store, log *slog.Logger) *eraser {
	return &eraser{st: st, log: log,
		stays: "kms_records' files still hold, as dead rows, the sealed material erased since it was last rewritten (deleted keys, deleted or expired imported material, deleted access keys, the hashes of console passwords replaced or deleted)",
		compact: func(ctx context.Context) (time.Duration, error) {
			// The rewrite holds the table for as long as it takes.
			start := time.Now()
			err := pg.CompactErased(ctx, compactLockTimeout, store.ErasedPrefix)
			return time.Since(start), err
		}}
}

// round compacts the store if an erasure marked it, then removes the
// marks it read (more than a few are made one first, store.FoldErased,
// so that they stay few while compactions fail). A compaction that
// fails is logged, with what stays, and the marks stay: it is tried
// again at the next round, and after
// failures in a row, after 2, 4, ... rounds, at most maxRetryRounds. On
// PostgreSQL, a role that may not rewrite the table is told once what
// its owner must run, and not tried again until the server restarts.
func (e *eraser) round(ctx context.Context) {
	if e == nil {
		return
	}
	marks, err := store.Erased(ctx, e.st)
	if err == nil {
		marks, err = store.FoldErased(ctx, e.st, marks)
	}
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("reading whether key material was erased", "err", err)
		}
		return
	}
	if len(marks) == 0 || e.refused {
		return
	}
	if e.wait > 0 {
		e.wait--
		return
	}
	start := time.Now()
	held, err := e.compact(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		e.failed++
		e.wait = min(1<<min(e.failed-1, 10), maxRetryRounds) - 1
		if errors.Is(err, pgstore.ErrNotPermitted) {
			e.refused = true
			e.log.Warn("erased key material is not cleared from the store's files: the server's role may not rewrite kms_records, and does not try again until it restarts; "+
				e.stays+": the table's owner must run VACUUM FULL kms_records", "err", err)
			return
		}
		e.log.Warn("erased key material is not cleared from the store's files yet: "+e.stays, "err", err, "retryInRounds", e.wait+1)
		return
	}
	e.failed = 0
	e.log.Info("compacted the key store: the key material erased before this maintenance round is gone from its files",
		"took", time.Since(start).Round(time.Millisecond), "callsWaitedAtMost", held.Round(time.Millisecond))
	if err := store.TakeErased(ctx, e.st, marks); err != nil && ctx.Err() == nil {
		// The next round compacts again.
		e.log.Error("removing the mark of erased key material after the store's compaction", "err", err)
	}
}
