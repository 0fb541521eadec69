package boltstore

import "time"

// SetDrainWait sets how long Compact waits for the transactions in
// progress.
func (s *Store) SetDrainWait(d time.Duration) { s.drainWait = d }

// FailDirSync makes s's Compact meet err when it syncs the directory
// after its rename.
func FailDirSync(s *Store, err error) {
	s.syncDir = func(string) error { return err }
}

// Held reports whether a Compact or Close holds s's gate, or waits for
// it: new transactions wait.
func Held(s *Store) bool {
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	return s.gate.held != nil
}

// CountDirSyncs makes s sync directories as it does, counting in n.
func CountDirSyncs(s *Store, n *int) {
	s.syncDir = func(dir string) error { *n++; return syncDir(dir) }
}

// OnCompactCopied makes s's Compact call fn after its copy, and after
// each catch-up round, before it holds the gate.
func OnCompactCopied(s *Store, fn func()) { s.hooks.copied = fn }

// OnCompactHeld makes s's Compact call fn while it holds the gate, with
// the number of keys it applies to its copy then.
func OnCompactHeld(s *Store, fn func(keys int)) { s.hooks.held = fn }

// SetHeldBound sets the keys, and the bytes written to them, that s's
// Compact applies to its copy while it holds the gate before it catches
// up without holding it.
func SetHeldBound(s *Store, keys, bytes int) { s.heldKeys, s.heldBytes = keys, bytes }

// OnCompactBarrier makes s's Compact call fn before it waits for the
// write transaction in progress.
func OnCompactBarrier(s *Store, fn func()) { s.hooks.barrier = fn }

// SetCopyChunk sets the bytes of records s's Compact copies in one read
// transaction.
func SetCopyChunk(s *Store, bytes int) { s.copyChunk = bytes }

// OnCompactChunk makes s's Compact call fn between two chunks of its
// copy, outside their read transactions, with the last key it copied.
func OnCompactChunk(s *Store, fn func(last []byte)) { s.hooks.chunk = fn }

// OnRemap makes s call fn as it maps its file again, after a write that
// could not grow the file's map, before it has it mapped.
func OnRemap(s *Store, fn func()) { s.onRemap = fn }

// OnWriteFailed makes s call fn when a write failed, before it asks
// whether bbolt lost its map of the file, in the write's transaction of
// the gate.
func OnWriteFailed(s *Store, fn func()) { s.onWriteFailed = fn }
