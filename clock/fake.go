package clock

import (
	"slices"
	"time"
)

// FakeEpoch is where NewFake starts: a fixed, non-zero instant, so a call's Time
// is never the zero time that marks an inactive Call.
var FakeEpoch = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// Fake is a manually driven Clock for tests (Twisted's task.Clock). Time moves
// only when the test calls Advance, Pump or Jump, and scheduled calls run
// synchronously inside Advance and Pump, on the test's goroutine.
//
// Like a real loop, a Fake works in turns: a turn at instant T runs, in deadline
// order, every call due at or before T that was scheduled before the turn began.
// A call scheduled during a turn with a deadline at or before T (CallLater(0),
// Reset(0)) therefore waits for the next turn: the next instant Advance steps to,
// or the next Advance call. Each Advance(0) is exactly one turn.
//
// A Fake is not goroutine-safe: use it from the test goroutine only.
type Fake struct {
	now    time.Time
	timers *Timers
}

var _ Clock = (*Fake)(nil)

// NewFake returns a fake clock reading FakeEpoch with nothing scheduled.
func NewFake() *Fake { return NewFakeAt(FakeEpoch) }

// NewFakeAt returns a fake clock reading start.
func NewFakeAt(start time.Time) *Fake {
	f := &Fake{now: start}
	f.timers = NewTimers(f.Now)
	return f
}

// Now is the fake's current time. During Advance it is the deadline of the call
// being run.
func (f *Fake) Now() time.Time { return f.now }

// CallLater schedules fn to run d after Now (d <= 0: on the next turn, never
// synchronously inside CallLater).
func (f *Fake) CallLater(d time.Duration, fn func()) Call {
	if d < 0 {
		d = 0
	}
	return f.timers.Schedule(f.now.Add(d), fn)
}

// Jump moves the clock forward by d without running anything, like a loop
// stalled by a slow callback; the calls that became due run on the next Advance
// (Advance(0) for just those). d <= 0 does nothing.
func (f *Fake) Jump(d time.Duration) {
	if d > 0 {
		f.now = f.now.Add(d)
	}
}

// Advance moves the clock forward by d (d < 0 counts as 0), stepping through
// every instant at which a call is due, in deadline order (ties in scheduling
// order), and running a turn at each: Now reads that call's deadline while it
// runs. Calls scheduled during Advance whose deadline falls within the advanced
// window run too, in order. Afterwards Now is the old Now plus d.
//
// Advance may be called from inside a call; the clock then never moves back.
func (f *Fake) Advance(d time.Duration) {
	if d < 0 {
		d = 0
	}
	target := f.now.Add(d)
	for {
		f.turn()
		next, ok := f.nextInstant(target)
		if !ok {
			break
		}
		f.now = next
	}
	if target.After(f.now) {
		f.now = target
	}
}

// Pump calls Advance with each duration in turn (Twisted's Clock.pump).
func (f *Fake) Pump(steps []time.Duration) {
	for _, d := range steps {
		f.Advance(d)
	}
}

// Pending returns the handles of all scheduled calls, sorted by deadline, ties in
// scheduling order. The slice is freshly allocated and the caller's to keep; the
// handles go inactive as calls run or are cancelled.
func (f *Fake) Pending() []Call {
	es := slices.Clone(f.timers.heap)
	slices.SortFunc(es, func(a, b *entry) int {
		if c := a.when.Compare(b.when); c != 0 {
			return c
		}
		if a.seq < b.seq {
			return -1
		}
		return 1
	})
	out := make([]Call, len(es))
	for i, e := range es {
		out[i] = Call{e: e, gen: e.gen}
	}
	return out
}

// Len is the number of scheduled calls.
func (f *Fake) Len() int { return f.timers.Len() }

// Next returns the earliest scheduled deadline, if any.
func (f *Fake) Next() (time.Time, bool) { return f.timers.Next() }

// turn runs every call due now that was scheduled before the turn began.
func (f *Fake) turn() {
	w := f.timers.Seq() + 1
	for {
		fn, ok := f.timers.PopDue(f.now, w)
		if !ok {
			return
		}
		fn()
	}
}

// nextInstant is the instant of the next turn within target: the earliest
// deadline after Now, or Now itself when the root is a due call scheduled during
// the last turn and some later deadline still lies within target (that later
// turn would run it anyway, first, since it is earlier).
func (f *Fake) nextInstant(target time.Time) (time.Time, bool) {
	next, ok := f.timers.Next()
	if !ok || next.After(target) {
		return time.Time{}, false
	}
	if next.After(f.now) {
		return next, true
	}
	// The root is due but fresh. Step to the earliest later deadline in the
	// window, if any; the fresh call runs first in that turn.
	var best time.Time
	found := false
	for _, e := range f.timers.heap {
		if e.when.After(f.now) && !e.when.After(target) && (!found || e.when.Before(best)) {
			best, found = e.when, true
		}
	}
	return best, found
}
