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
