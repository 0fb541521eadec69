//go:build race

package esdk

// raceEnabled is set when the race detector runs, which makes long streams
// several times slower.
const raceEnabled = true
