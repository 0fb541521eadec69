//go:build race

package boltstore_test

// raceEnabled reports whether the tests are built with the race detector.
const raceEnabled = true
