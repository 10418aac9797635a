//go:build race

package hostile_test

// raceEnabled: the race detector's shadow memory grows with the heap and is
// not returned, so resident memory is only compared between repeated
// cycles, not with the first baseline.
const raceEnabled = true
