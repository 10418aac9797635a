package clock

import (
	"testing"
	"time"
)

// model is the naive timer set FuzzTimers checks the heap against: a plain
// list searched linearly, ordered by deadline then by (re)scheduling order.
type modelCall struct {
	when time.Time
	seq  uint64
	live bool
}

type model struct {
	calls []*modelCall // by id
	seq   uint64
}

func (m *model) min() (int, bool) {
	best := -1
	for i, c := range m.calls {
		if !c.live {
			continue
		}
		if best < 0 || c.when.Before(m.calls[best].when) ||
			c.when.Equal(m.calls[best].when) && c.seq < m.calls[best].seq {
			best = i
		}
	}
	return best, best >= 0
}

func (m *model) len() int {
	n := 0
	for _, c := range m.calls {
		if c.live {
			n++
		}
	}
	return n
}

// FuzzTimers drives Timers with a fuzzer-chosen sequence of Schedule,
// Cancel, Reset and Delay (through live, run and cancelled handles alike, so
// stale handles meet recycled entries), clock steps and turns (PopDue up to a
// watermark, scheduling zero-delay calls mid-turn), and checks after every
// step that Len, Next, each handle's Active and Time, and which call each
// PopDue returns agree with the naive model.
func FuzzTimers(f *testing.F) {
	f.Add([]byte{0, 5, 0, 5, 0, 1, 1, 0, 4, 10, 5, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 5, 1, 1, 2, 2, 3, 3, 200, 5, 0, 0, 9, 2, 0, 4, 255, 5, 1})
	f.Add([]byte{0, 3, 0, 2, 0, 1, 3, 0, 250, 2, 1, 0, 6, 4, 3, 5, 0, 1, 1, 0, 3, 5, 1})
	f.Fuzz(func(t *testing.T, prog []byte) {
		base := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		now := base
		tm := NewTimers(func() time.Time { return now })
		var m model
		var handles []Call
		ran := -1
		next := func() int {
			if len(prog) == 0 {
				return 0
			}
			b := prog[0]
			prog = prog[1:]
			return int(b)
		}
		ms := func(b int) time.Duration { return time.Duration(b%32) * time.Millisecond }
		schedule := func(when time.Time) {
			id := len(handles)
			handles = append(handles, tm.Schedule(when, func() { ran = id }))
			m.seq++
			m.calls = append(m.calls, &modelCall{when: when, seq: m.seq, live: true})
		}
		check := func(step string) {
			if tm.Len() != m.len() {
				t.Fatalf("%s: Len %d, model %d", step, tm.Len(), m.len())
			}
			w, ok := tm.Next()
			i, mok := m.min()
			if ok != mok || ok && !w.Equal(m.calls[i].when) {
				t.Fatalf("%s: Next %v %v, model %v", step, w, ok, mok)
			}
			for id, h := range handles {
				c := m.calls[id]
				if h.Active() != c.live {
					t.Fatalf("%s: call %d Active %v, model %v", step, id, h.Active(), c.live)
				}
				if c.live && !h.Time().Equal(c.when) || !c.live && !h.Time().IsZero() {
					t.Fatalf("%s: call %d Time %v, model %v (live %v)", step, id, h.Time(), c.when, c.live)
				}
			}
		}
		for steps := 0; len(prog) > 0 && steps < 500; steps++ {
			op := next() % 7
			pick := func() int {
				if len(handles) == 0 {
					return -1
				}
				return next() % len(handles)
			}
			switch op {
			case 0, 6: // Schedule
				schedule(now.Add(ms(next())))
			case 1: // Cancel
				if id := pick(); id >= 0 {
					c := m.calls[id]
					if got := handles[id].Cancel(); got != c.live {
						t.Fatalf("Cancel %d = %v, model live %v", id, got, c.live)
					}
					c.live = false
				}
			case 2: // Reset to d from now
				if id := pick(); id >= 0 {
					d := ms(next())
					c := m.calls[id]
					if got := handles[id].Reset(d); got != c.live {
						t.Fatalf("Reset %d = %v, model live %v", id, got, c.live)
					}
					if c.live {
						m.seq++
						c.when, c.seq = now.Add(d), m.seq
					}
				}
			case 3: // Delay, possibly backwards
				if id := pick(); id >= 0 {
					d := ms(next()) - 16*time.Millisecond
					c := m.calls[id]
					if got := handles[id].Delay(d); got != c.live {
						t.Fatalf("Delay %d = %v, model live %v", id, got, c.live)
					}
					if c.live {
						m.seq++
						c.when, c.seq = c.when.Add(d), m.seq
					}
				}
			case 4: // the clock moves
				now = now.Add(ms(next()))
			case 5: // a turn
				w := tm.Seq() + 1
				if w != m.seq+1 {
					t.Fatalf("Seq %d, model %d", w-1, m.seq)
				}
				for {
					ran = -1
					fn, ok := tm.PopDue(now, w)
					i, mok := m.min()
					mok = mok && !m.calls[i].when.After(now) && m.calls[i].seq < w
					if ok != mok {
						t.Fatalf("PopDue ok %v, model %v", ok, mok)
					}
					if !ok {
						break
					}
					fn()
					if ran != i {
						t.Fatalf("PopDue gave call %d, model %d", ran, i)
					}
					m.calls[i].live = false
					if next()%2 == 1 { // a call scheduling a zero-delay call
						schedule(now)
					}
				}
			}
			check("after op " + string(rune('0'+op)))
		}
	})
}
