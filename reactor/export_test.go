package reactor

import "github.com/gyre-io/gyre/reactor/backend"

// SetOpenUring replaces the io_uring constructor of cfg (to inject set-up
// failures).
func SetOpenUring(cfg *Config, f func(backend.Config) (backend.Backend, error)) {
	cfg.openUring = f
}

// Turns is the number of loop turns (backend waits) so far. Read it on the
// loop, or after Done.
func Turns(l *Loop) uint64 { return l.turns }

// Yields is how often the loop goroutine yielded to the Go scheduler between
// turns (yieldIfDue). Read it after Done.
func Yields(l *Loop) uint64 { return l.yields }

// YieldEvery is the loop's yield interval.
const YieldEvery = yieldEvery

// LoopChecks reports whether this build checks loop-only methods.
const LoopChecks = loopChecks
