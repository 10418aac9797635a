//go:build !race

package transports_test

const raceEnabled = false
