package reactor

import (
	"errors"
	"fmt"
	"time"

	"github.com/gyre-io/gyre/clock"
)

// Cooperator defaults.
const (
	// DefaultSlice is how long one cooperator tick runs steps before yielding
	// to the loop (Twisted's 10 ms).
	DefaultSlice = 10 * time.Millisecond
	// DefaultMaxSteps bounds the steps of one tick, so a tick ends even on a
	// clock that does not move while steps run (a clock.Fake).
	DefaultMaxSteps = 1 << 16
)

// Errors a Task finishes with (see Task.WhenDone) or its methods return.
var (
	// ErrTaskStopped: Task.Stop ended the task.
	ErrTaskStopped = errors.New("gyre/reactor: cooperative task stopped")
	// ErrSchedulerStopped: Cooperator.Stop ended the task, or the task was
	// given to a stopped cooperator.
	ErrSchedulerStopped = errors.New("gyre/reactor: cooperator stopped")
	// ErrTaskPanicked: a step panicked; the error also carries the value.
	ErrTaskPanicked = errors.New("gyre/reactor: cooperative task panicked")
	// ErrTaskFinished: Pause, Resume or Stop on a task that already finished.
	ErrTaskFinished = errors.New("gyre/reactor: cooperative task already finished")
	// ErrNotPaused: Resume on a task that is not paused.
	ErrNotPaused = errors.New("gyre/reactor: cooperative task not paused")
)

// Cooperator runs many long jobs in small steps without starving the loop
// (Twisted's Cooperator / cooperate). Each job is a step function returning
// true while it has more to do. On every tick — a call scheduled with
// CallLater(0), so once per loop turn while there is work — the cooperator runs
// one step of each runnable task in turn, round-robin (the rotation carries
// over from tick to tick), until the time slice is used up or MaxSteps steps
// ran, then yields. While steps prove short (under 1/64 of the slice) the clock
// is read only every few steps, at most 64, so a tick may overrun its slice by
// that many short steps.
//
// The slice is measured with the clock's Now: real time on a Loop; on a
// clock.Fake a step that calls Jump simulates taking that long.
//
// A Cooperator is not goroutine-safe: use it on the goroutine that owns its
// clock. The zero value is not usable; call NewCooperator.
type Cooperator struct {
	// Slice is the time budget of one tick (DefaultSlice when <= 0). It may be
	// changed between ticks.
	Slice time.Duration
	// MaxSteps bounds the steps of one tick (DefaultMaxSteps when <= 0).
	MaxSteps int

	clk     clock.Clock
	fire    func()
	tick    clock.Call
	cur     *Task   // next task to step; nil when none is runnable
	live    []*Task // every unfinished task, runnable or paused
	stopped bool
	steps   uint64
	ticks   uint64
}

// NewCooperator returns a running cooperator scheduling on clk.
func NewCooperator(clk clock.Clock) *Cooperator {
	c := &Cooperator{clk: clk}
	c.fire = c.runTick
	return c
}

// Task is one job given to a Cooperator (Twisted's CooperativeTask). Its
// methods are not goroutine-safe, like the Cooperator's.
type Task struct {
	c          *Cooperator
	step       func() bool
	prev, next *Task // run ring, while linked
	linked     bool
	liveIdx    int
	pauses     int
	finished   bool
	err        error
	done       []func(error)
}

// Cooperate adds a task running step until it returns false. Its first step
// runs on a later tick, never inside Cooperate. Given to a stopped cooperator,
// the task is returned already finished with ErrSchedulerStopped.
func (c *Cooperator) Cooperate(step func() bool) *Task {
	t := &Task{c: c, step: step}
	if c.stopped {
		t.finished, t.err = true, ErrSchedulerStopped
		return t
	}
	t.liveIdx = len(c.live)
	c.live = append(c.live, t)
	c.link(t)
	return t
}

// Len is the number of unfinished tasks, paused ones included.
func (c *Cooperator) Len() int { return len(c.live) }

// Stats reports how many ticks and steps the cooperator has run.
func (c *Cooperator) Stats() (ticks, steps uint64) { return c.ticks, c.steps }

// Stopped reports whether Stop was called.
func (c *Cooperator) Stopped() bool { return c.stopped }

// Stop ends every unfinished task with ErrSchedulerStopped (their WhenDone
// callbacks run inside Stop) and refuses new ones. Idempotent; may be called
// from inside a step.
func (c *Cooperator) Stop() {
	if c.stopped {
		return
	}
	c.stopped = true
	c.tick.Cancel()
	c.tick = clock.Call{}
	for len(c.live) > 0 {
		c.live[0].finish(ErrSchedulerStopped)
	}
}

// link puts t at the end of the rotation (just before the cursor) and makes
// sure a tick is scheduled.
func (c *Cooperator) link(t *Task) {
	if c.cur == nil {
		t.prev, t.next = t, t
		c.cur = t
	} else {
		t.next = c.cur
		t.prev = c.cur.prev
		t.prev.next = t
		c.cur.prev = t
	}
	t.linked = true
	if !c.tick.Active() && !c.stopped {
		c.tick = c.clk.CallLater(0, c.fire)
	}
}

func (c *Cooperator) unlink(t *Task) {
	if !t.linked {
		return
	}
	t.linked = false
	if t.next == t {
		c.cur = nil
	} else {
		t.prev.next = t.next
		t.next.prev = t.prev
		if c.cur == t {
			c.cur = t.next
		}
	}
	t.prev, t.next = nil, nil
}

// runTick runs steps round-robin until the slice or MaxSteps is used up.
func (c *Cooperator) runTick() {
	c.tick = clock.Call{}
	if c.stopped || c.cur == nil {
		return
	}
	c.ticks++
	slice, maxSteps := c.Slice, c.MaxSteps
	if slice <= 0 {
		slice = DefaultSlice
	}
	if maxSteps <= 0 {
		maxSteps = DefaultMaxSteps
	}
	start := c.clk.Now()
	// Reschedule whatever happens, even if a step panics through us.
	defer func() {
		if c.cur != nil && !c.stopped && !c.tick.Active() {
			c.tick = c.clk.CallLater(0, c.fire)
		}
	}()
	// Reading the clock can cost more than a small step, so while steps prove
	// short the clock is read only every batch steps (at most maxBatch).
	last, batch, untilCheck := start, 1, 1
	for n := 0; c.cur != nil && !c.stopped; {
		t := c.cur
		c.cur = t.next
		more, err := t.runStep()
		c.steps++
		if !t.finished && (!more || err != nil) {
			t.finish(err)
		}
		n++
		if n >= maxSteps {
			return
		}
		if untilCheck--; untilCheck > 0 {
			continue
		}
		now := c.clk.Now()
		if now.Sub(start) >= slice {
			return
		}
		switch took := now.Sub(last); {
		case took < slice/64 && batch < maxBatch:
			batch *= 2
		case took >= slice/16:
			batch = 1
		}
		last, untilCheck = now, batch
	}
}

// maxBatch bounds how many steps run between two clock reads in a tick.
const maxBatch = 64

// runStep calls the step, turning a panic into an ErrTaskPanicked error.
func (t *Task) runStep() (more bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			more, err = false, fmt.Errorf("%w: %v", ErrTaskPanicked, v)
		}
	}()
	return t.step(), nil
}

// finish ends t with err (nil: completed) and runs its WhenDone callbacks.
func (t *Task) finish(err error) {
	c := t.c
	c.unlink(t)
	t.finished, t.err = true, err
	i := t.liveIdx
	last := len(c.live) - 1
	c.live[i] = c.live[last]
	c.live[i].liveIdx = i
	c.live[last] = nil
	c.live = c.live[:last]
	done := t.done
	t.done = nil
	t.step = nil
	for _, f := range done {
		f(err)
	}
}

// Pause takes the task out of the rotation until a matching Resume; pauses
// nest (two Pauses need two Resumes). ErrTaskFinished once the task ended.
func (t *Task) Pause() error {
	if t.finished {
		return ErrTaskFinished
	}
	t.pauses++
	if t.pauses == 1 {
		t.c.unlink(t)
	}
	return nil
}

// Resume undoes one Pause; the last one puts the task back at the end of the
// rotation. ErrNotPaused if it is not paused, ErrTaskFinished once it ended.
func (t *Task) Resume() error {
	if t.finished {
		return ErrTaskFinished
	}
	if t.pauses == 0 {
		return ErrNotPaused
	}
	t.pauses--
	if t.pauses == 0 {
		t.c.link(t)
	}
	return nil
}

// Stop ends the task with ErrTaskStopped; its WhenDone callbacks run inside
// Stop. ErrTaskFinished if it already ended. May be called from inside its own
// step, which then is not called again.
func (t *Task) Stop() error {
	if t.finished {
		return ErrTaskFinished
	}
	t.finish(ErrTaskStopped)
	return nil
}

// Paused reports whether the task is paused (and not finished).
func (t *Task) Paused() bool { return !t.finished && t.pauses > 0 }

// Finished reports whether the task ended, and with what: nil when its step
// returned false, ErrTaskStopped, ErrSchedulerStopped, or an error matching
// ErrTaskPanicked.
func (t *Task) Finished() (bool, error) { return t.finished, t.err }

// WhenDone registers f to be called once with the task's result (see Finished)
// when it ends; if it already ended, f is called at once, inside WhenDone.
// Callbacks run in registration order.
func (t *Task) WhenDone(f func(err error)) {
	if t.finished {
		f(t.err)
		return
	}
	t.done = append(t.done, f)
}
