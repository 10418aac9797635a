package clock_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
)

func TestFakeStartsAtEpoch(t *testing.T) {
	f := clock.NewFake()
	require.Equal(t, clock.FakeEpoch, f.Now())
	require.Zero(t, f.Len())
	_, ok := f.Next()
	require.False(t, ok)
	at := time.Date(2020, 5, 6, 7, 8, 9, 0, time.UTC)
	require.Equal(t, at, clock.NewFakeAt(at).Now())
}

func TestFakeAdvanceRunsInDeadlineOrder(t *testing.T) {
	f := clock.NewFake()
	start := f.Now()
	var got []string
	var at []time.Duration
	rec := func(name string) func() {
		return func() {
			got = append(got, name)
			at = append(at, f.Now().Sub(start))
		}
	}
	f.CallLater(3*time.Second, rec("c"))
	f.CallLater(1*time.Second, rec("a"))
	f.CallLater(2*time.Second, rec("b1"))
	f.CallLater(2*time.Second, rec("b2")) // tie: scheduling order
	f.CallLater(10*time.Second, rec("late"))

	f.Advance(500 * time.Millisecond)
	require.Empty(t, got, "nothing due yet")
	require.Equal(t, start.Add(500*time.Millisecond), f.Now())

	f.Advance(2500 * time.Millisecond)
	require.Equal(t, []string{"a", "b1", "b2", "c"}, got)
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 2 * time.Second, 3 * time.Second}, at,
		"Now reads each call's deadline while it runs")
	require.Equal(t, start.Add(3*time.Second), f.Now())
	require.Equal(t, 1, f.Len())
}

func TestFakeCallsScheduledDuringAdvanceInWindowRun(t *testing.T) {
	f := clock.NewFake()
	start := f.Now()
	var got []time.Duration
	var tick func()
	tick = func() {
		got = append(got, f.Now().Sub(start))
		f.CallLater(time.Second, tick)
	}
	f.CallLater(time.Second, tick)
	f.CallLater(2500*time.Millisecond, func() { got = append(got, -1) })
	f.Advance(4 * time.Second)
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, -1, 3 * time.Second, 4 * time.Second}, got)
	require.Equal(t, 1, f.Len(), "the tick at 5s is pending")
	next, ok := f.Next()
	require.True(t, ok)
	require.Equal(t, start.Add(5*time.Second), next)
}

func TestFakeCallLaterZeroIsNextTurn(t *testing.T) {
	f := clock.NewFake()
	n := 0
	var again func()
	again = func() {
		n++
		f.CallLater(0, again) // would spin forever if run in the same turn
	}
	c := f.CallLater(0, again)
	require.True(t, c.Active())
	require.Equal(t, 0, n, "never synchronous")
	f.Advance(0)
	require.Equal(t, 1, n)
	f.Advance(0)
	require.Equal(t, 2, n)

	// With another deadline inside the window the fresh call runs at that
	// instant's turn (it is earlier, so it goes first), once per instant.
	var order []string
	f.CallLater(time.Second, func() { order = append(order, "timer") })
	f.Advance(2 * time.Second)
	require.Equal(t, 4, n, "one run at the start, one at the 1s instant")
	require.Equal(t, []string{"timer"}, order)
	require.Equal(t, 1, f.Len())
}

func TestFakeCallLaterNegativeIsZero(t *testing.T) {
	f := clock.NewFake()
	c := f.CallLater(-time.Hour, func() {})
	require.Equal(t, f.Now(), c.Time())
}

func TestFakeJumpThenAdvanceZero(t *testing.T) {
	f := clock.NewFake()
	start := f.Now()
	var saw []time.Duration
	f.CallLater(time.Second, func() { saw = append(saw, f.Now().Sub(start)) })
	f.CallLater(2*time.Second, func() { saw = append(saw, f.Now().Sub(start)) })
	f.Jump(5 * time.Second)
	require.Empty(t, saw, "Jump runs nothing")
	f.Jump(-time.Second)
	require.Equal(t, start.Add(5*time.Second), f.Now(), "negative Jump does nothing")
	f.Advance(0)
	require.Equal(t, []time.Duration{5 * time.Second, 5 * time.Second}, saw, "late calls see the jumped time")
}

func TestFakePump(t *testing.T) {
	f := clock.NewFake()
	start := f.Now()
	var saw []time.Duration
	for _, d := range []time.Duration{1, 3, 6} {
		f.CallLater(d*time.Second, func() { saw = append(saw, f.Now().Sub(start)) })
	}
	f.Pump([]time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second})
	require.Equal(t, []time.Duration{time.Second, 3 * time.Second, 6 * time.Second}, saw)
	require.Equal(t, start.Add(6*time.Second), f.Now())
}

func TestFakePending(t *testing.T) {
	f := clock.NewFake()
	start := f.Now()
	c3 := f.CallLater(3*time.Second, func() {})
	c1 := f.CallLater(1*time.Second, func() {})
	c2a := f.CallLater(2*time.Second, func() {})
	c2b := f.CallLater(2*time.Second, func() {})
	p := f.Pending()
	require.Equal(t, []clock.Call{c1, c2a, c2b, c3}, p)
	require.True(t, p[3].Cancel())
	require.False(t, c3.Active())
	require.Len(t, f.Pending(), 3)
	f.Advance(time.Second)
	require.False(t, p[0].Active())
	require.Equal(t, start.Add(2*time.Second), f.Pending()[0].Time())
}

func TestFakeResetAndDelayUseFakeTime(t *testing.T) {
	f := clock.NewFake()
	start := f.Now()
	ran := 0
	c := f.CallLater(time.Second, func() { ran++ })
	f.Advance(500 * time.Millisecond)
	require.True(t, c.Reset(time.Second))
	require.Equal(t, start.Add(1500*time.Millisecond), c.Time())
	require.True(t, c.Delay(time.Second))
	require.Equal(t, start.Add(2500*time.Millisecond), c.Time())
	f.Advance(time.Second + 999*time.Millisecond)
	require.Zero(t, ran)
	f.Advance(time.Millisecond)
	require.Equal(t, 1, ran)
	require.False(t, c.Active())
}

func TestFakeNestedAdvanceNeverMovesBack(t *testing.T) {
	f := clock.NewFake()
	start := f.Now()
	var saw []time.Duration
	f.CallLater(time.Second, func() {
		f.Advance(5 * time.Second)
		saw = append(saw, f.Now().Sub(start))
	})
	f.CallLater(3*time.Second, func() { saw = append(saw, f.Now().Sub(start)) })
	f.Advance(2 * time.Second)
	require.Equal(t, []time.Duration{3 * time.Second, 6 * time.Second}, saw)
	require.Equal(t, start.Add(6*time.Second), f.Now())
}

// TestFakeStorm drives a Fake with calls that schedule, cancel and reset other
// calls at random delays (zero included) while the test advances by random
// amounts, and checks the invariants: calls run in (deadline, scheduling)
// order, never early, with Now at their deadline unless they were scheduled
// for "now" during a turn, and Advance leaves nothing due behind except such
// fresh calls.
func TestFakeStorm(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	f := clock.NewFake()
	type rec struct {
		when  time.Time
		seq   int
		fresh bool // scheduled with a deadline at or before Now, inside a call
	}
	seq, ran, scheduled := 0, 0, 0
	var lastWhen time.Time
	lastSeq := 0
	live := map[int]clock.Call{}
	recs := map[int]*rec{}
	var sched func(d time.Duration, inCall bool)
	sched = func(d time.Duration, inCall bool) {
		seq++
		scheduled++
		id := seq
		r := &rec{when: f.Now().Add(d), seq: seq, fresh: inCall && d == 0}
		recs[id] = r
		live[id] = f.CallLater(d, func() {
			delete(live, id)
			ran++
			now := f.Now()
			require.False(t, r.when.After(now), "never early")
			if !r.fresh {
				require.Equal(t, r.when, now, "Now is the deadline")
			}
			if r.when.Equal(lastWhen) {
				require.Greater(t, r.seq, lastSeq, "ties in scheduling order")
			} else {
				require.True(t, r.when.After(lastWhen), "deadline order")
			}
			lastWhen, lastSeq = r.when, r.seq
			if scheduled < 20_000 {
				for range rng.IntN(4) {
					var d time.Duration
					if rng.IntN(5) > 0 {
						d = time.Duration(rng.IntN(50)) * time.Millisecond
					}
					sched(d, true)
				}
			}
			if rng.IntN(6) == 0 {
				for oid, c := range live {
					require.True(t, c.Cancel())
					delete(live, oid)
					break
				}
			}
		})
	}
	for range 200 {
		sched(time.Duration(rng.IntN(50))*time.Millisecond, false)
	}
	for step := 0; f.Len() > 0; step++ {
		require.Less(t, step, 100_000, "bounded")
		f.Advance(time.Duration(rng.IntN(30)) * time.Millisecond)
		require.Equal(t, len(live), f.Len())
		// Anything still due must be a fresh call from the last turn.
		for id := range live {
			if r := recs[id]; !r.when.After(f.Now()) {
				require.True(t, r.fresh, "a due call was left behind")
			}
		}
	}
	require.Greater(t, ran, 5000)
}
