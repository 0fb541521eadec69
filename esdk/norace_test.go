//go:build !race

package esdk

const raceEnabled = false
