//go:build !race

package streamsuite

// raceEnabled scales the load tests down under the race detector.
const raceEnabled = false
