// Package clock holds the time interface shared by the reactor loop, protocols and
// tests: Clock (Twisted's IReactorTime), the delayed-call handle Call, and Timers,
// the heap both the real loop and the fake clock schedule on.
//
// Nothing here is goroutine-safe: a Clock belongs to one loop (or one test) and is
// used from that goroutine only.
package clock

import "time"

// Clock schedules functions to run later on the goroutine that owns it.
type Clock interface {
	// Now is the clock's current time (monotonic on a real loop).
	Now() time.Time
	// CallLater runs f after d (d <= 0: on the next turn, never synchronously).
	CallLater(d time.Duration, f func()) Call
}

type entry struct {
	when  time.Time
	seq   uint64
	f     func()
	idx   int // index in heap; -1 when not scheduled
	gen   uint32
	owner *Timers
}

// Call is the handle of one delayed call (Twisted's IDelayedCall). The zero Call
// is inactive. Handles stay safe to use after the call ran or was cancelled: they
// then report inactive and their methods do nothing.
type Call struct {
	e   *entry
	gen uint32
}

func (c Call) live() bool { return c.e != nil && c.e.gen == c.gen && c.e.idx >= 0 }

// Active reports whether the call is still scheduled.
func (c Call) Active() bool { return c.live() }

// Cancel unschedules the call; it reports false if the call already ran or was
// cancelled.
func (c Call) Cancel() bool {
	if !c.live() {
		return false
	}
	c.e.owner.remove(c.e)
	return true
}

// Reset reschedules the call to run d from now; false if it is no longer active.
func (c Call) Reset(d time.Duration) bool {
	if !c.live() {
		return false
	}
	t := c.e.owner
	t.detach(c.e)
	c.e.when = t.current().Add(d)
	t.push(c.e)
	return true
}

// Delay postpones the call by d; false if it is no longer active.
func (c Call) Delay(d time.Duration) bool {
	if !c.live() {
		return false
	}
	t := c.e.owner
	t.detach(c.e)
	c.e.when = c.e.when.Add(d)
	t.push(c.e)
	return true
}

// Time is when the call is due; the zero time if it is not active.
func (c Call) Time() time.Time {
	if !c.live() {
		return time.Time{}
	}
	return c.e.when
}

// Timers is a min-heap of delayed calls ordered by deadline, then by scheduling
// order. Schedule, Cancel and PopDue are O(log n); entries are recycled, so the
// steady state allocates nothing.
type Timers struct {
	heap []*entry
	free []*entry
	seq  uint64
	now  func() time.Time
}

// NewTimers returns a heap whose Reset computes deadlines from now (time.Now
// when nil, as for the zero Timers).
func NewTimers(now func() time.Time) *Timers { return &Timers{now: now} }

func (t *Timers) current() time.Time {
	if t.now == nil {
		return time.Now()
	}
	return t.now()
}

// Len is the number of scheduled calls.
func (t *Timers) Len() int { return len(t.heap) }

// Schedule adds f to run at when.
func (t *Timers) Schedule(when time.Time, f func()) Call {
	var e *entry
	if n := len(t.free); n > 0 {
		e = t.free[n-1]
		t.free[n-1] = nil
		t.free = t.free[:n-1]
	} else {
		e = &entry{owner: t}
	}
	e.when = when
	e.f = f
	t.push(e)
	return Call{e: e, gen: e.gen}
}

// Next returns the earliest deadline, if any.
func (t *Timers) Next() (time.Time, bool) {
	if len(t.heap) == 0 {
		return time.Time{}, false
	}
	return t.heap[0].when, true
}

// Seq is the sequence number of the most recently scheduled (or rescheduled)
// call. Seq()+1 is the watermark for PopDue: calls scheduled after Seq was read
// are not due in the same turn, so CallLater(0) from inside a call never runs
// synchronously.
func (t *Timers) Seq() uint64 { return t.seq }

// PopDue removes and returns the earliest call due at or before now whose
// sequence number is below the watermark seq; ok is false when there is none.
// A turn reads w := Seq()+1 once, then pops until ok is false, so calls
// scheduled (or Reset/Delayed) during the turn wait for the next one.
func (t *Timers) PopDue(now time.Time, seq uint64) (f func(), ok bool) {
	if len(t.heap) == 0 {
		return nil, false
	}
	e := t.heap[0]
	if e.when.After(now) || e.seq >= seq {
		// The root may be a fresh zero-delay call; an older due one can sit
		// below it only with a later deadline, which is fine to leave for the
		// next turn.
		return nil, false
	}
	f = e.f
	t.remove(e)
	return f, true
}

// Pending returns the deadlines of every scheduled call in heap order (for tests
// and the fake clock's listing).
func (t *Timers) Pending() []time.Time {
	out := make([]time.Time, len(t.heap))
	for i, e := range t.heap {
		out[i] = e.when
	}
	return out
}

func (t *Timers) push(e *entry) {
	t.seq++
	e.seq = t.seq
	e.idx = len(t.heap)
	t.heap = append(t.heap, e)
	t.up(e.idx)
}

func (t *Timers) remove(e *entry) {
	t.detach(e)
	e.gen++
	e.f = nil
	t.free = append(t.free, e)
}

func (t *Timers) detach(e *entry) {
	i := e.idx
	last := len(t.heap) - 1
	if i != last {
		t.swap(i, last)
	}
	t.heap[last] = nil
	t.heap = t.heap[:last]
	if i != last {
		if !t.down(i) {
			t.up(i)
		}
	}
	e.idx = -1
}

func (t *Timers) less(i, j int) bool {
	a, b := t.heap[i], t.heap[j]
	if c := a.when.Compare(b.when); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

func (t *Timers) swap(i, j int) {
	t.heap[i], t.heap[j] = t.heap[j], t.heap[i]
	t.heap[i].idx = i
	t.heap[j].idx = j
}

func (t *Timers) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.less(i, p) {
			break
		}
		t.swap(i, p)
		i = p
	}
}

func (t *Timers) down(i int) bool {
	start := i
	n := len(t.heap)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && t.less(r, l) {
			m = r
		}
		if !t.less(m, i) {
			break
		}
		t.swap(i, m)
		i = m
	}
	return i > start
}
