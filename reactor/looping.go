package reactor

import (
	"errors"
	"time"

	"github.com/gyre-io/gyre/clock"
)

// Errors returned by LoopingCall.Start.
var (
	// ErrLoopRunning: Start was called on a looping call that is already running.
	ErrLoopRunning = errors.New("gyre/reactor: looping call already running")
	// ErrNegativeInterval: Start was given an interval below zero.
	ErrNegativeInterval = errors.New("gyre/reactor: negative looping call interval")
)

// LoopingCall calls a function repeatedly on a clock (Twisted's LoopingCall).
//
// Calls are kept on a fixed grid: the k-th call is due at start + k*interval,
// measured from Start. A call that runs late (a slow callback, a stalled loop)
// does not shift the grid, and the slots it missed are skipped rather than
// bunched up: the next call is due at the first grid point after the late call
// returned. NewLoopingCallWithCount's function learns how many intervals
// elapsed since its previous call (1 when on time, more after skipped slots).
// An interval of 0 calls the function once per loop turn.
//
// If the function panics the looping call stops (Running reports false) and the
// panic propagates to the clock's caller, which on a Loop reports it.
//
// A LoopingCall is not goroutine-safe: use it on the goroutine that owns its
// clock (the loop goroutine, or the test with a clock.Fake).
type LoopingCall struct {
	clk      clock.Clock
	f        func()
	fc       func(count int)
	fire     func() // lc.tick, bound once so rescheduling allocates nothing
	interval time.Duration
	start    time.Time
	lastIdx  int64 // grid index of the previous call
	call     clock.Call
	running  bool
	gen      uint64 // bumped by Start and Stop; stale continuations check it
	calls    uint64
}

// NewLoopingCall returns a stopped looping call of f on clk.
func NewLoopingCall(clk clock.Clock, f func()) *LoopingCall {
	lc := &LoopingCall{clk: clk, f: f}
	lc.fire = lc.tick
	return lc
}

// NewLoopingCallWithCount returns a stopped looping call of f on clk; f gets the
// number of intervals elapsed since its previous call, or since Start for the
// first call (Twisted's LoopingCall.withCount). The count is always at least 1;
// with an interval of 0 it is always 1.
func NewLoopingCallWithCount(clk clock.Clock, f func(count int)) *LoopingCall {
	lc := &LoopingCall{clk: clk, fc: f}
	lc.fire = lc.tick
	return lc
}

// Start begins calling every interval, from now. With now true the first call
// is made synchronously inside Start; otherwise it is due one interval from
// now. It returns ErrLoopRunning if already running and ErrNegativeInterval for
// interval < 0. Start may be called again after Stop, including from inside
// the function.
func (lc *LoopingCall) Start(interval time.Duration, now bool) error {
	if lc.running {
		return ErrLoopRunning
	}
	if interval < 0 {
		return ErrNegativeInterval
	}
	lc.interval = interval
	lc.running = true
	lc.gen++
	lc.start = lc.clk.Now()
	if now {
		lc.lastIdx = -1
		lc.tick()
		return nil
	}
	lc.lastIdx = 0
	lc.call = lc.clk.CallLater(interval, lc.fire)
	return nil
}

// Stop cancels the pending call; the function is not called again until the
// next Start. It does nothing if not running and may be called from inside the
// function.
func (lc *LoopingCall) Stop() {
	if !lc.running {
		return
	}
	lc.running = false
	lc.gen++
	lc.call.Cancel()
	lc.call = clock.Call{}
}

// Reset restarts the grid from now: the next call is due one interval from now
// and its count is 1 (Twisted's LoopingCall.reset). It does nothing if not
// running.
func (lc *LoopingCall) Reset() {
	if !lc.running {
		return
	}
	lc.start = lc.clk.Now()
	lc.lastIdx = 0
	// From inside the function there is no pending call: tick then schedules
	// from the new grid.
	lc.call.Reset(lc.interval)
}

// Running reports whether the looping call is started and not stopped.
func (lc *LoopingCall) Running() bool { return lc.running }

// Interval is the interval given to the last Start.
func (lc *LoopingCall) Interval() time.Duration { return lc.interval }

// Calls counts how many times the function has been called, over all Starts.
func (lc *LoopingCall) Calls() uint64 { return lc.calls }

// Next is when the next call is due; the zero time when not running or while
// the function runs.
func (lc *LoopingCall) Next() time.Time { return lc.call.Time() }

// tick makes one call, then schedules the next one on the grid.
func (lc *LoopingCall) tick() {
	lc.call = clock.Call{}
	gen := lc.gen
	count := 1
	if lc.interval > 0 {
		idx := lc.index(lc.clk.Now())
		if c := idx - lc.lastIdx; c > 1 {
			count = int(c)
		}
		lc.lastIdx = idx
	}
	lc.calls++
	lc.invoke(count)
	if !lc.running || lc.gen != gen || lc.call.Active() {
		return // stopped, restarted, or already rescheduled inside the function
	}
	lc.call = lc.clk.CallLater(lc.untilNext(lc.clk.Now()), lc.fire)
}

// invoke calls the function, stopping the looping call if it panics.
func (lc *LoopingCall) invoke(count int) {
	ok := false
	defer func() {
		if !ok {
			lc.Stop()
		}
	}()
	if lc.fc != nil {
		lc.fc(count)
	} else {
		lc.f()
	}
	ok = true
}

// index is the grid slot t falls in (floor division, so times before start
// count as slot -1 and below).
func (lc *LoopingCall) index(t time.Time) int64 {
	el := t.Sub(lc.start)
	idx := int64(el / lc.interval)
	if el < 0 && el%lc.interval != 0 {
		idx--
	}
	return idx
}

// untilNext is the delay from t to the first grid point strictly after t.
func (lc *LoopingCall) untilNext(t time.Time) time.Duration {
	if lc.interval == 0 {
		return 0
	}
	el := t.Sub(lc.start)
	if el < 0 {
		if r := -el % lc.interval; r != 0 {
			return r
		}
		return lc.interval
	}
	return lc.interval - el%lc.interval
}
