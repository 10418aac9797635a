package netconn

import (
	"sync"
	"time"
)

// deadline is one direction's deadline. Its fields are guarded by the
// connection's mutex; the timer's function takes that mutex and wakes the
// direction's waiters, which then see expired() true.
type deadline struct {
	at    time.Time
	timer *time.Timer
	wake  func() // the timer's function, made once
}

// set changes the deadline and wakes the waiters when it has passed
// already (they re-check), or arms the timer to wake them when it passes.
// Called with mu held.
func (d *deadline) set(t time.Time, mu *sync.Mutex, cond *sync.Cond) {
	d.at = t
	if t.IsZero() {
		if d.timer != nil {
			d.timer.Stop()
		}
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		if d.timer != nil {
			d.timer.Stop()
		}
		cond.Broadcast()
		return
	}
	if d.timer == nil {
		d.wake = func() {
			mu.Lock()
			cond.Broadcast()
			mu.Unlock()
		}
		d.timer = time.AfterFunc(dur, d.wake)
		return
	}
	d.timer.Reset(dur)
}

// expired reports whether the deadline is set and has passed. Called with mu
// held.
func (d *deadline) expired() bool {
	return !d.at.IsZero() && !time.Now().Before(d.at)
}

// stop releases the timer. Called with mu held.
func (d *deadline) stop() {
	if d.timer != nil {
		d.timer.Stop()
	}
}
