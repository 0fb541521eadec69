package boltstore

// FailDirSync makes s's Compact meet err when it syncs the directory
// after its rename.
func FailDirSync(s *Store, err error) {
	s.syncDir = func(string) error { return err }
}
