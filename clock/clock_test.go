package clock_test

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// drain pops every call due at now in one turn and returns how many ran.
func drain(tm *clock.Timers, now time.Time) int {
	w := tm.Seq() + 1
	n := 0
	for {
		f, ok := tm.PopDue(now, w)
		if !ok {
			return n
		}
		f()
		n++
	}
}

func TestZeroCallIsInactive(t *testing.T) {
	var c clock.Call
	require.False(t, c.Active())
	require.False(t, c.Cancel())
	require.False(t, c.Reset(time.Second))
	require.False(t, c.Delay(time.Second))
	require.True(t, c.Time().IsZero())
}

func TestCallSemantics(t *testing.T) {
	now := t0
	tm := clock.NewTimers(func() time.Time { return now })
	ran := 0
	c := tm.Schedule(t0.Add(time.Second), func() { ran++ })
	require.True(t, c.Active())
	require.Equal(t, t0.Add(time.Second), c.Time())
	require.Equal(t, 1, tm.Len())

	// Delay moves the deadline relative to the old one.
	require.True(t, c.Delay(2*time.Second))
	require.Equal(t, t0.Add(3*time.Second), c.Time())
	// Reset moves it relative to now.
	now = t0.Add(500 * time.Millisecond)
	require.True(t, c.Reset(time.Second))
	require.Equal(t, t0.Add(1500*time.Millisecond), c.Time())
	require.Equal(t, 1, tm.Len(), "rescheduling does not duplicate")

	require.Zero(t, drain(tm, t0.Add(1499*time.Millisecond)))
	require.Equal(t, 1, drain(tm, t0.Add(1500*time.Millisecond)))
	require.Equal(t, 1, ran)

	// After it ran the handle is inert.
	require.False(t, c.Active())
	require.False(t, c.Cancel())
	require.False(t, c.Reset(time.Second))
	require.False(t, c.Delay(time.Second))
	require.True(t, c.Time().IsZero())
	require.Zero(t, tm.Len())

	// The recycled entry serves a new call; the stale handle cannot touch it.
	c2 := tm.Schedule(t0.Add(time.Hour), func() {})
	require.False(t, c.Active())
	require.False(t, c.Cancel())
	require.True(t, c2.Active())
	require.True(t, c2.Cancel())
	require.False(t, c2.Cancel(), "second cancel reports false")
	require.False(t, c2.Active())
	require.Zero(t, tm.Len())
	_, ok := tm.Next()
	require.False(t, ok)
}

func TestCancelInsideOwnCall(t *testing.T) {
	tm := clock.NewTimers(func() time.Time { return t0 })
	var c clock.Call
	var active, cancelled bool
	c = tm.Schedule(t0, func() {
		active = c.Active()
		cancelled = c.Cancel()
	})
	require.Equal(t, 1, drain(tm, t0))
	require.False(t, active, "a running call is no longer scheduled")
	require.False(t, cancelled)
}

func TestScheduleInsideCallWaitsForNextTurn(t *testing.T) {
	tm := clock.NewTimers(func() time.Time { return t0 })
	var order []string
	tm.Schedule(t0, func() {
		order = append(order, "a")
		tm.Schedule(t0, func() { order = append(order, "a-child") })
	})
	tm.Schedule(t0, func() { order = append(order, "b") })
	rescheduled := tm.Schedule(t0.Add(time.Hour), func() { order = append(order, "reset") })
	tm.Schedule(t0, func() { rescheduled.Reset(0) }) // Reset during the turn: next turn too

	require.Equal(t, 3, drain(tm, t0))
	require.Equal(t, []string{"a", "b"}, order)
	require.Equal(t, 2, tm.Len())
	require.Equal(t, 2, drain(tm, t0))
	require.Equal(t, []string{"a", "b", "a-child", "reset"}, order)
}

func TestSeqWatermarkIncludesLastScheduled(t *testing.T) {
	// The most recently scheduled call, scheduled before the turn, is due.
	tm := clock.NewTimers(func() time.Time { return t0 })
	ran := false
	tm.Schedule(t0, func() { ran = true })
	require.Equal(t, 1, drain(tm, t0))
	require.True(t, ran)
}

func TestPopDueRespectsDeadline(t *testing.T) {
	tm := clock.NewTimers(func() time.Time { return t0 })
	tm.Schedule(t0.Add(2*time.Second), func() {})
	f, ok := tm.PopDue(t0.Add(time.Second), tm.Seq()+1)
	require.False(t, ok)
	require.Nil(t, f)
	next, ok := tm.Next()
	require.True(t, ok)
	require.Equal(t, t0.Add(2*time.Second), next)
	require.Equal(t, []time.Time{t0.Add(2 * time.Second)}, tm.Pending())
	f, ok = tm.PopDue(t0.Add(2*time.Second), tm.Seq()+1)
	require.True(t, ok)
	require.NotNil(t, f)
	_, ok = (&clock.Timers{}).PopDue(t0, 1)
	require.False(t, ok, "the zero Timers is empty")
}

// model is the naive reference: a flat list sorted on demand.
type modelCall struct {
	id   int
	when time.Time
	seq  int
}

func TestTimerStorm(t *testing.T) {
	const n = 100_000
	rng := rand.New(rand.NewPCG(1, 2))
	now := t0
	tm := clock.NewTimers(func() time.Time { return now })

	var got []int
	calls := make([]clock.Call, n)
	model := make(map[int]*modelCall, n)
	seq := 0
	for i := range n {
		// Few distinct deadlines (many ties) in the first half, random ones after.
		var when time.Time
		if i%2 == 0 {
			when = t0.Add(time.Duration(rng.IntN(50)) * time.Millisecond)
		} else {
			when = t0.Add(time.Duration(rng.IntN(1_000_000)) * time.Microsecond)
		}
		id := i
		calls[i] = tm.Schedule(when, func() { got = append(got, id) })
		seq++
		model[i] = &modelCall{id: i, when: when, seq: seq}
	}
	require.Equal(t, n, tm.Len())

	// Cancel half, at random; reschedule a few of the rest.
	for _, i := range rng.Perm(n)[:n/2] {
		require.True(t, calls[i].Cancel())
		require.False(t, calls[i].Active())
		delete(model, i)
	}
	resched := 0
	for i, m := range model {
		if resched == 2000 {
			break
		}
		resched++
		seq++
		if i%2 == 0 {
			d := time.Duration(rng.IntN(10)) * time.Millisecond
			require.True(t, calls[i].Delay(d))
			m.when = m.when.Add(d)
		} else {
			d := time.Duration(rng.IntN(1000)) * time.Millisecond
			require.True(t, calls[i].Reset(d))
			m.when = now.Add(d)
		}
		m.seq = seq
		require.Equal(t, m.when, calls[i].Time())
	}
	require.Equal(t, len(model), tm.Len())

	// Pop in time steps, checking each step against the model.
	end := t0.Add(2 * time.Second)
	for step := 0; now.Before(end); step++ {
		require.Less(t, step, 1000, "bounded")
		now = now.Add(time.Duration(1+rng.IntN(20)) * time.Millisecond)
		var want []*modelCall
		for _, m := range model {
			if !m.when.After(now) {
				want = append(want, m)
			}
		}
		slices.SortFunc(want, func(a, b *modelCall) int {
			if c := a.when.Compare(b.when); c != 0 {
				return c
			}
			return cmp.Compare(a.seq, b.seq)
		})
		got = got[:0]
		require.Equal(t, len(want), drain(tm, now))
		wantIDs := make([]int, len(want))
		for i, m := range want {
			wantIDs[i] = m.id
			delete(model, m.id)
		}
		require.Equal(t, wantIDs, got, "step %d", step)
		if next, ok := tm.Next(); ok {
			require.True(t, next.After(now))
		}
	}
	require.Empty(t, model)
	require.Zero(t, tm.Len())
	for i := range calls {
		require.False(t, calls[i].Active())
	}
}

// TestTimerStormInterleaved schedules and cancels from inside running calls,
// against the same model.
func TestTimerStormInterleaved(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	now := t0
	tm := clock.NewTimers(func() time.Time { return now })
	type live struct {
		c    clock.Call
		when time.Time
		seq  int
	}
	alive := map[int]*live{}
	seq, nextID, ran, scheduled := 0, 0, 0, 0
	var lastWhen time.Time
	var lastSeq int
	var schedule func(d time.Duration)
	schedule = func(d time.Duration) {
		id := nextID
		nextID++
		seq++
		scheduled++
		when := now.Add(d)
		l := &live{when: when, seq: seq}
		l.c = tm.Schedule(when, func() {
			// Deadline order, ties by scheduling order, never early.
			require.False(t, l.when.After(now))
			if l.when.Equal(lastWhen) {
				require.Greater(t, l.seq, lastSeq)
			} else {
				require.True(t, l.when.After(lastWhen))
			}
			lastWhen, lastSeq = l.when, l.seq
			delete(alive, id)
			ran++
			if scheduled < 100_000 {
				for range rng.IntN(4) {
					schedule(time.Duration(1+rng.IntN(100)) * time.Millisecond)
				}
			}
			// Cancel a random other call now and then.
			if rng.IntN(4) == 0 {
				for oid, o := range alive {
					require.True(t, o.c.Cancel())
					delete(alive, oid)
					break
				}
			}
		})
		alive[id] = l
	}
	for range 1000 {
		schedule(time.Duration(rng.IntN(100)) * time.Millisecond)
	}
	for step := 0; tm.Len() > 0; step++ {
		require.Less(t, step, 1_000_000, "bounded")
		next, _ := tm.Next()
		now = next
		drain(tm, now)
		require.Equal(t, len(alive), tm.Len())
	}
	require.Greater(t, ran, 10_000)
	require.Empty(t, alive)
}

func TestScheduleCancelAllocatesNothing(t *testing.T) {
	tm := clock.NewTimers(func() time.Time { return t0 })
	f := func() {}
	for i := range 1000 {
		tm.Schedule(t0.Add(time.Duration(i)*time.Millisecond), f)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		c := tm.Schedule(t0.Add(500*time.Millisecond), f)
		c.Cancel()
	})
	require.Zero(t, allocs)
	allocs = testing.AllocsPerRun(1000, func() {
		tm.Schedule(t0, f)
		drain(tm, t0)
	})
	require.Zero(t, allocs)
}

func BenchmarkScheduleCancel(b *testing.B) {
	tm := clock.NewTimers(func() time.Time { return t0 })
	f := func() {}
	for i := range 1000 {
		tm.Schedule(t0.Add(time.Duration(i)*time.Millisecond), f)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c := tm.Schedule(t0.Add(time.Duration(i%1000)*time.Millisecond), f)
		c.Cancel()
	}
}

func BenchmarkSchedulePopDue(b *testing.B) {
	tm := clock.NewTimers(func() time.Time { return t0 })
	f := func() {}
	for i := range 1000 {
		tm.Schedule(t0.Add(time.Hour+time.Duration(i)*time.Millisecond), f)
	}
	b.ReportAllocs()
	for b.Loop() {
		tm.Schedule(t0, f)
		drain(tm, t0)
	}
}

func BenchmarkReset(b *testing.B) {
	now := t0
	tm := clock.NewTimers(func() time.Time { return now })
	f := func() {}
	for i := range 1000 {
		tm.Schedule(t0.Add(time.Duration(i)*time.Millisecond), f)
	}
	c := tm.Schedule(t0.Add(time.Second), f)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Reset(time.Duration(i%1000) * time.Millisecond)
	}
}

func BenchmarkFakeAdvance(b *testing.B) {
	clk := clock.NewFake()
	var tick func()
	tick = func() { clk.CallLater(time.Millisecond, tick) }
	for range 100 {
		clk.CallLater(time.Millisecond, tick)
	}
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(time.Millisecond)
	}
}

func TestZeroTimersResetUsesWallClock(t *testing.T) {
	var tm clock.Timers
	c := tm.Schedule(t0, func() {})
	before := time.Now()
	require.True(t, c.Reset(time.Hour))
	require.False(t, c.Time().Before(before.Add(time.Hour)))
}
