package server

import (
	"log/slog"
	"runtime/debug"
)

// survive runs one round of a background loop (what names it) and logs a
// panic in it as an error instead of letting it end the process. Only for
// rounds whose work the next takes up again whole: the maintenance round,
// whose changes commit together with their records' outbox entries, so
// that one cut short leaves nothing the outbox does not finish, and the
// writing of key usage (whose uses taken before a panic are lost, as on
// a crash: the last-use dates are advisory). On a cluster it matters most for maintenance: its
// lease passes to another node when one ends, and a panic on a record
// would otherwise end every node in turn.
//
// Not for the audit trail's own work: its commits turn a panic into the
// batch's error, so that no call waits for a record that will not come;
// a panic in its fsync, in the background or as a digest makes the
// records durable before signing them, is left to end the process. A
// panic there may leave written records marked synced that are not, and
// going on could sign them or acknowledge more; a process that ends loses
// nothing acknowledged that a restart does not read back.
func survive(log *slog.Logger, what string, round func()) {
	defer func() {
		if p := recover(); p != nil {
			log.Error("panic in "+what+"; the next round runs as planned", "panic", p, "stack", string(debug.Stack()))
		}
	}()
	round()
}

// changeSink is a cache that other nodes' changes invalidate: the
// service's keys and the directory's credentials.
type changeSink interface {
	// Changed drops what the records named feed; nil: everything.
	Changed(records [][]byte)
}

// applyChanges returns the function that passes the records another node
// changed (pgstore.Store.Watch) to caches. A panic in it, on a record name
// nothing foresaw, empties the caches instead, as a lost connection does:
// a cache must not go on serving what such a change invalidated. A panic
// in emptying them ends the process: a node that cannot drop what it
// cached would serve disabled keys and revoked credentials for as long as
// they stay cached.
func applyChanges(log *slog.Logger, caches ...changeSink) func(records [][]byte) {
	return func(records [][]byte) {
		defer func() {
			if p := recover(); p != nil {
				if records == nil {
					panic(p)
				}
				log.Error("panic applying another node's changes to the caches; they are emptied", "panic", p, "stack", string(debug.Stack()))
				for _, c := range caches {
					c.Changed(nil)
				}
			}
		}()
		for _, c := range caches {
			c.Changed(records)
		}
	}
}
