package reactor

import (
	"errors"
	"time"
)

// Event is a system event with triggers (Twisted's addSystemEventTrigger).
type Event int

// System events.
const (
	// Startup fires when Run begins.
	Startup Event = iota
	// Shutdown fires after Stop (or ctx) ends the loop.
	Shutdown
)

// Phase orders the triggers of one event.
type Phase int

// Trigger phases: every Before trigger finishes (calls its done) before the
// During triggers run; After triggers run last.
const (
	Before Phase = iota
	During
	After
)

// ErrShutdownTimeout is reported when "before shutdown" triggers did not all
// finish within Config.ShutdownTimeout.
var ErrShutdownTimeout = errors.New("gyre/reactor: shutdown triggers timed out")

type trigger struct {
	id      int
	f       func(done func())
	removed bool
}

// TriggerID names a registered trigger for RemoveSystemEventTrigger.
type TriggerID struct {
	event Event
	phase Phase
	id    int
}

// AddSystemEventTrigger registers f to run at phase of event. f receives done,
// which it must call once it has finished, on the loop (from another
// goroutine: l.Call(done), which the loop accepts while it waits): for Before
// triggers the loop waits for every done (a graceful-shutdown hook; for
// Shutdown at most Config.ShutdownTimeout, for Startup until done or Stop)
// before moving on, sleeping meanwhile but still running calls, timers and
// completions; for During and After triggers done may be ignored. Loop
// goroutine only, or before Run.
func (l *Loop) AddSystemEventTrigger(event Event, phase Phase, f func(done func())) TriggerID {
	l.mustOnLoop("AddSystemEventTrigger", true)
	l.trigSeq++
	t := &trigger{id: l.trigSeq, f: f}
	l.triggers[event][phase] = append(l.triggers[event][phase], t)
	return TriggerID{event: event, phase: phase, id: t.id}
}

// AddTrigger is AddSystemEventTrigger for a trigger that finishes when f returns.
func (l *Loop) AddTrigger(event Event, phase Phase, f func()) TriggerID {
	return l.AddSystemEventTrigger(event, phase, func(done func()) { f(); done() })
}

// RemoveSystemEventTrigger unregisters a trigger; false if it is unknown.
// Loop goroutine only, or before Run.
func (l *Loop) RemoveSystemEventTrigger(id TriggerID) bool {
	l.mustOnLoop("RemoveSystemEventTrigger", true)
	if id.event < 0 || int(id.event) >= len(l.triggers) || id.phase < 0 || int(id.phase) >= 3 {
		return false
	}
	list := l.triggers[id.event][id.phase]
	for i, t := range list {
		if t.id == id.id {
			t.removed = true
			l.triggers[id.event][id.phase] = append(list[:i:i], list[i+1:]...)
			return true
		}
	}
	return false
}

// runPhase runs the triggers of one phase and, when wait is set, keeps turning
// the loop until all of them called done, the deadline (if not zero) passed,
// or — during start-up — Stop was requested. It reports whether every trigger
// finished. Each turn sleeps until a call, timer, completion or wake (capped
// at the deadline); a done ends the turn's wait at once.
func (l *Loop) runPhase(event Event, phase Phase, wait bool, deadline time.Time) bool {
	list := append([]*trigger(nil), l.triggers[event][phase]...)
	pending := 0
	for _, t := range list {
		if t.removed {
			continue
		}
		pending++
		called := false
		done := func() {
			l.mustOnLoop("trigger done", false)
			if !called {
				called = true
				pending--
				l.progress = true
			}
		}
		l.safe(func() { t.f(done) })
	}
	if !wait {
		return true
	}
	for pending > 0 {
		if event == Startup && l.stopReq.Load() {
			return false // Stop wins over start-up
		}
		wait := time.Duration(-1)
		if !deadline.IsZero() {
			wait = time.Until(deadline)
			if wait <= 0 {
				l.ReportError(ErrShutdownTimeout)
				return false
			}
		}
		if err := l.turn(wait); err != nil {
			return false
		}
	}
	return true
}

func (l *Loop) fireEvent(event Event) {
	switch event {
	case Startup:
		if !l.runPhase(Startup, Before, true, time.Time{}) && l.stopReq.Load() {
			return // stopped during start-up: straight to shutdown
		}
		l.runPhase(Startup, During, false, time.Time{})
		l.runPhase(Startup, After, false, time.Time{})
	case Shutdown:
		deadline := time.Now().Add(l.cfg.ShutdownTimeout)
		l.runPhase(Shutdown, Before, true, deadline)
		l.runPhase(Shutdown, During, false, deadline)
		// Calls queued so far (a Listen's start, say) run before the
		// resources are shut down, so what they start is shut down with them.
		l.runCalls()
		// One DrainTimeout for the whole graceful part: the resources'
		// close and whatever the After triggers start; past it, everything
		// left is aborted (see drain), so Run returns within DrainTimeout
		// plus a bounded abort.
		graceEnd := time.Now().Add(l.cfg.DrainTimeout)
		l.shutdownResources()
		l.resShut = true
		l.drain(graceEnd)
		l.runPhase(Shutdown, After, false, deadline)
		// The last calls: refuse new ones, then run (in the drain's turns)
		// those accepted; what they or the After triggers started is shut
		// down (Track after resShut) and drained.
		l.closeCalls()
		l.drain(graceEnd)
	}
}

// shutdownResources calls Shutdown, with the current stage's reason, on every
// tracked resource (including those tracked while it runs).
func (l *Loop) shutdownResources() {
	reason := l.shutdownReason()
	for i := 0; i < len(l.resources); i++ {
		if r := l.resources[i]; r != nil {
			l.safe(func() { r.Shutdown(reason) })
		}
	}
}
