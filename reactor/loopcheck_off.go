//go:build !race && !gyredebug

package reactor

// loopChecks: this build does not check that loop-only methods run on the
// loop (build with -race or -tags gyredebug for that).
const loopChecks = false

func gettid() int { return 0 }

func (l *Loop) mustOnLoop(string, bool) {}
