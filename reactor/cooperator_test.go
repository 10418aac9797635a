package reactor

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
)

// counter returns a step that logs name and runs n times.
func counter(log *[]string, name string, n int) func() bool {
	i := 0
	return func() bool {
		i++
		*log = append(*log, fmt.Sprintf("%s%d", name, i))
		return i < n
	}
}

func TestCooperatorRoundRobin(t *testing.T) {
	clk := clock.NewFake()
	c := NewCooperator(clk)
	var log []string
	a := c.Cooperate(counter(&log, "a", 3))
	b := c.Cooperate(counter(&log, "b", 1))
	d := c.Cooperate(counter(&log, "c", 2))
	require.Empty(t, log, "nothing runs inside Cooperate")
	require.Equal(t, 3, c.Len())
	require.Equal(t, 1, clk.Len(), "one tick scheduled for all")

	var results []string
	for _, tk := range []*Task{a, b, d} {
		tk.WhenDone(func(err error) { results = append(results, fmt.Sprint(err)) })
	}
	clk.Advance(0) // the clock does not move: the whole job fits one tick
	require.Equal(t, []string{"a1", "b1", "c1", "a2", "c2", "a3"}, log)
	require.Equal(t, []string{"<nil>", "<nil>", "<nil>"}, results)
	for _, tk := range []*Task{a, b, d} {
		done, err := tk.Finished()
		require.True(t, done)
		require.NoError(t, err)
	}
	require.Zero(t, c.Len())
	require.Zero(t, clk.Len(), "no tick scheduled when idle")
	ticks, steps := c.Stats()
	require.Equal(t, uint64(1), ticks)
	require.Equal(t, uint64(6), steps)
}

func TestCooperatorSliceYieldsAndRotationCarriesOver(t *testing.T) {
	clk := clock.NewFake()
	c := NewCooperator(clk)
	c.Slice = 10 * time.Millisecond
	var log []string
	slow := func(name string) func() bool {
		i := 0
		return func() bool {
			i++
			log = append(log, fmt.Sprintf("%s%d", name, i))
			clk.Jump(3 * time.Millisecond) // each step takes 3 ms
			return true
		}
	}
	a := c.Cooperate(slow("a"))
	c.Cooperate(slow("b"))
	c.Cooperate(slow("c"))

	clk.Advance(0)
	require.Equal(t, []string{"a1", "b1", "c1", "a2"}, log, "4 steps = 12 ms >= 10 ms slice")
	require.Equal(t, 1, clk.Len(), "next tick scheduled")
	log = nil
	clk.Advance(0)
	require.Equal(t, []string{"b2", "c2", "a3", "b3"}, log, "rotation resumes where it stopped")

	log = nil
	require.NoError(t, a.Stop())
	c.Stop()
	clk.Advance(time.Second)
	require.Empty(t, log)
}

func TestCooperatorMaxStepsBoundsTickOnFakeClock(t *testing.T) {
	clk := clock.NewFake()
	c := NewCooperator(clk)
	c.MaxSteps = 5
	n := 0
	tk := c.Cooperate(func() bool { n++; return true }) // never ends
	clk.Advance(0)
	require.Equal(t, 5, n)
	clk.Advance(0)
	require.Equal(t, 10, n)
	require.NoError(t, tk.Stop())
	require.ErrorIs(t, tk.Stop(), ErrTaskFinished)
	clk.Advance(0)
	require.Equal(t, 10, n)

	// The default bound also ends a tick of a never-ending task.
	c2 := NewCooperator(clk)
	m := 0
	c2.Cooperate(func() bool { m++; return true })
	clk.Advance(0)
	require.Equal(t, DefaultMaxSteps, m)
	c2.Stop()
}

func TestCooperatorPauseResume(t *testing.T) {
	clk := clock.NewFake()
	c := NewCooperator(clk)
	c.MaxSteps = 4
	var log []string
	a := c.Cooperate(counter(&log, "a", 100))
	b := c.Cooperate(counter(&log, "b", 100))

	require.ErrorIs(t, a.Resume(), ErrNotPaused)
	require.NoError(t, a.Pause())
	require.NoError(t, a.Pause()) // nested
	require.True(t, a.Paused())
	clk.Advance(0)
	require.Equal(t, []string{"b1", "b2", "b3", "b4"}, log)
	require.NoError(t, a.Resume())
	require.True(t, a.Paused(), "still paused once")
	log = nil
	clk.Advance(0)
	require.Equal(t, []string{"b5", "b6", "b7", "b8"}, log)
	require.NoError(t, a.Resume())
	require.False(t, a.Paused())
	log = nil
	clk.Advance(0)
	require.Equal(t, []string{"b9", "a1", "b10", "a2"}, log)

	// Pausing every task leaves no tick behind; resuming schedules one.
	require.NoError(t, a.Pause())
	require.NoError(t, b.Pause())
	clk.Advance(0)
	require.Zero(t, clk.Len())
	require.Equal(t, 2, c.Len(), "paused tasks are still unfinished")
	require.NoError(t, b.Resume())
	require.Equal(t, 1, clk.Len())
}

func TestCooperatorPauseAndStopFromInsideSteps(t *testing.T) {
	clk := clock.NewFake()
	c := NewCooperator(clk)
	var log []string
	var a, b *Task
	i := 0
	a = c.Cooperate(func() bool {
		i++
		log = append(log, fmt.Sprint("a", i))
		switch i {
		case 1:
			require.NoError(t, a.Pause()) // pause itself
		case 2:
			require.NoError(t, b.Stop()) // stop another
		}
		return i < 3
	})
	j := 0
	b = c.Cooperate(func() bool {
		j++
		log = append(log, fmt.Sprint("b", j))
		if j == 2 {
			require.NoError(t, a.Resume())
		}
		return true
	})
	var bErr error
	b.WhenDone(func(err error) { bErr = err })
	c.MaxSteps = 3
	clk.Advance(0)
	require.Equal(t, []string{"a1", "b1", "b2"}, log)
	log = nil
	clk.Advance(0)
	require.Equal(t, []string{"b3", "a2", "a3"}, log, "a resumed behind b; b stopped by a, a runs alone")
	require.ErrorIs(t, bErr, ErrTaskStopped)
	done, err := a.Finished()
	require.True(t, done)
	require.NoError(t, err)
	require.ErrorIs(t, a.Pause(), ErrTaskFinished)
	require.ErrorIs(t, a.Resume(), ErrTaskFinished)
	require.Zero(t, c.Len())
}

func TestCooperatorStop(t *testing.T) {
	clk := clock.NewFake()
	c := NewCooperator(clk)
	var log []string
	var errs []error
	a := c.Cooperate(counter(&log, "a", 10))
	p := c.Cooperate(counter(&log, "p", 10))
	require.NoError(t, p.Pause())
	for _, tk := range []*Task{a, p} {
		tk.WhenDone(func(err error) { errs = append(errs, err) })
	}
	c.Stop()
	c.Stop()
	require.True(t, c.Stopped())
	require.Len(t, errs, 2, "paused tasks end too")
	for _, err := range errs {
		require.ErrorIs(t, err, ErrSchedulerStopped)
	}
	require.Zero(t, clk.Len())
	clk.Advance(time.Second)
	require.Empty(t, log)

	late := c.Cooperate(func() bool { t.Fatal("must not run"); return false })
	done, err := late.Finished()
	require.True(t, done)
	require.ErrorIs(t, err, ErrSchedulerStopped)
	var got error
	late.WhenDone(func(err error) { got = err })
	require.ErrorIs(t, got, ErrSchedulerStopped, "WhenDone on a finished task calls at once")
}

func TestCooperatorStopFromInsideStep(t *testing.T) {
	clk := clock.NewFake()
	c := NewCooperator(clk)
	n := 0
	c.Cooperate(func() bool { n++; c.Stop(); return true })
	c.Cooperate(func() bool { n++; return true })
	clk.Advance(0)
	require.Equal(t, 1, n)
	require.Zero(t, clk.Len())
	require.Zero(t, c.Len())
}

func TestCooperatorStepPanicFailsTask(t *testing.T) {
	clk := clock.NewFake()
	c := NewCooperator(clk)
	bad := c.Cooperate(func() bool { panic("kaboom") })
	n := 0
	good := c.Cooperate(func() bool { n++; return n < 3 })
	clk.Advance(0)
	done, err := bad.Finished()
	require.True(t, done)
	require.ErrorIs(t, err, ErrTaskPanicked)
	require.True(t, strings.Contains(err.Error(), "kaboom"))
	done, err = good.Finished()
	require.True(t, done)
	require.NoError(t, err)
	require.Equal(t, 3, n)
}

func TestCooperatorWhenDonePanicKeepsTicking(t *testing.T) {
	clk := clock.NewFake()
	c := NewCooperator(clk)
	c.Cooperate(func() bool { return false }).WhenDone(func(error) { panic("callback") })
	n := 0
	c.Cooperate(func() bool { n++; return n < 5 })
	require.Panics(t, func() { clk.Advance(0) })
	require.Equal(t, 1, clk.Len(), "the next tick was still scheduled")
	clk.Advance(0)
	require.Equal(t, 5, n)
}

func TestCooperatorManyTasksFair(t *testing.T) {
	clk := clock.NewFake()
	c := NewCooperator(clk)
	c.MaxSteps = 1000
	const tasks = 500
	counts := make([]int, tasks)
	for i := range tasks {
		c.Cooperate(func() bool { counts[i]++; return counts[i] < 50 })
	}
	for turn := 0; c.Len() > 0; turn++ {
		require.Less(t, turn, 100, "bounded")
		clk.Advance(0)
		lo, hi := counts[0], counts[0]
		for _, n := range counts {
			lo, hi = min(lo, n), max(hi, n)
		}
		require.LessOrEqual(t, hi-lo, 1, "round-robin keeps tasks within one step")
	}
	for _, n := range counts {
		require.Equal(t, 50, n)
	}
}

func BenchmarkCooperatorStep(b *testing.B) {
	clk := clock.NewFake()
	c := NewCooperator(clk)
	c.MaxSteps = 1024
	for range 8 {
		c.Cooperate(func() bool { return true })
	}
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(0)
	}
	_, steps := c.Stats()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(steps), "ns/step")
}

// Two long jobs share the loop: each tick runs one step of each in turn.
func ExampleCooperator() {
	clk := clock.NewFake()
	coop := NewCooperator(clk)
	coop.MaxSteps = 2 // tiny ticks, to show the interleaving
	job := func(name string, n int) func() bool {
		i := 0
		return func() bool {
			i++
			fmt.Println(name, i)
			return i < n
		}
	}
	coop.Cooperate(job("index", 3))
	coop.Cooperate(job("compact", 2)).WhenDone(func(err error) { fmt.Println("compact done:", err) })
	for coop.Len() > 0 {
		clk.Advance(0) // one loop turn
	}
	// Output:
	// index 1
	// compact 1
	// index 2
	// compact 2
	// compact done: <nil>
	// index 3
}

func TestCooperatorShortStepsBatchClockReads(t *testing.T) {
	clk := clock.NewFake()
	c := NewCooperator(clk)
	c.Slice = 10 * time.Millisecond
	n := 0
	c.Cooperate(func() bool {
		n++
		clk.Jump(10 * time.Microsecond) // short steps: 1000 fill the slice
		return true
	})
	clk.Advance(0)
	require.GreaterOrEqual(t, n, 1000, "the slice is used")
	require.LessOrEqual(t, n, 1000+maxBatch, "overrun bounded by one batch")

	// A long step after short ones resets the batching.
	n = 0
	long := false
	c.Cooperate(func() bool {
		if long {
			clk.Jump(20 * time.Millisecond)
		}
		return true
	})
	long = true
	clk.Advance(0)
	require.LessOrEqual(t, n, 2, "the first long step ends the tick")
	c.Stop()
}
