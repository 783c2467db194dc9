//go:build race

package envelope

// raceEnabled shrinks the memory test's stream under the race detector.
const raceEnabled = true
