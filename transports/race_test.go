//go:build race

package transports_test

// raceEnabled: built with -race, where sync.Pool drops a share of what is
// put back at random, so paths that recycle through a pool (crypto/tls's
// record buffers) allocate more than in a normal build.
const raceEnabled = true
