//go:build !race

package gyretls_test

const raceEnabled = false
