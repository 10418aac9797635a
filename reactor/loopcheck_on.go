//go:build race || gyredebug

package reactor

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// loopChecks: this build checks that loop-only methods run on the loop.
const loopChecks = true

func gettid() int { return unix.Gettid() }

// mustOnLoop panics with an error matching ErrNotOnLoop, naming method, when
// called from a goroutine other than the loop's while the loop runs (the loop
// goroutine is locked to its thread, so comparing thread ids is exact).
// beforeRun allows calls before Run (or Stop), when the loop runs nothing yet.
func (l *Loop) mustOnLoop(method string, beforeRun bool) {
	if gettid() == l.tid {
		return
	}
	switch l.state.Load() {
	case stateNew:
		if beforeRun {
			return
		}
	case stateStopped:
		return // the loop goroutine is gone: nothing to race with
	}
	if !strings.Contains(method, ".") {
		method = "Loop." + method
	}
	panic(fmt.Errorf("gyre/reactor: %s called from another goroutine while the loop runs: %w", method, ErrNotOnLoop))
}
