//go:build !race

package tcp_test

// raceEnabled scales the load tests down under the race detector.
const raceEnabled = false
