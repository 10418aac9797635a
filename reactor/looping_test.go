package reactor

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
)

func TestLoopingCallNowAndGrid(t *testing.T) {
	clk := clock.NewFake()
	start := clk.Now()
	var at []time.Duration
	lc := NewLoopingCall(clk, func() { at = append(at, clk.Now().Sub(start)) })
	require.False(t, lc.Running())
	require.NoError(t, lc.Start(time.Second, true))
	require.True(t, lc.Running())
	require.Equal(t, time.Second, lc.Interval())
	require.Equal(t, []time.Duration{0}, at, "now=true calls inside Start")
	require.Equal(t, start.Add(time.Second), lc.Next())

	clk.Advance(3500 * time.Millisecond)
	require.Equal(t, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}, at)
	require.Equal(t, uint64(4), lc.Calls())
	require.Equal(t, 1, clk.Len(), "exactly one pending call")

	lc.Stop()
	require.False(t, lc.Running())
	require.Zero(t, clk.Len(), "Stop cancels the pending call")
	require.True(t, lc.Next().IsZero())
	lc.Stop() // idempotent
	clk.Advance(10 * time.Second)
	require.Len(t, at, 4)
}

func TestLoopingCallNotNow(t *testing.T) {
	clk := clock.NewFake()
	start := clk.Now()
	var at []time.Duration
	lc := NewLoopingCall(clk, func() { at = append(at, clk.Now().Sub(start)) })
	require.NoError(t, lc.Start(2*time.Second, false))
	require.Empty(t, at)
	clk.Advance(1999 * time.Millisecond)
	require.Empty(t, at)
	clk.Advance(time.Millisecond)
	require.Equal(t, []time.Duration{2 * time.Second}, at)
}

func TestLoopingCallStartErrors(t *testing.T) {
	clk := clock.NewFake()
	lc := NewLoopingCall(clk, func() {})
	require.ErrorIs(t, lc.Start(-time.Second, false), ErrNegativeInterval)
	require.False(t, lc.Running())
	require.NoError(t, lc.Start(time.Second, false))
	require.ErrorIs(t, lc.Start(time.Second, false), ErrLoopRunning)
	require.Equal(t, 1, clk.Len(), "failed Start schedules nothing")
	lc.Stop()
	require.NoError(t, lc.Start(time.Second, false), "restartable after Stop")
}

func TestLoopingCallSlowCallbackSkipsSlots(t *testing.T) {
	clk := clock.NewFake()
	start := clk.Now()
	var at []time.Duration
	var counts []int
	slow := true
	lc := NewLoopingCallWithCount(clk, func(n int) {
		at = append(at, clk.Now().Sub(start))
		counts = append(counts, n)
		if slow && len(at) == 2 {
			clk.Jump(3500 * time.Millisecond) // the callback takes 3.5 intervals
		}
	})
	require.NoError(t, lc.Start(time.Second, true))
	clk.Advance(10 * time.Second)
	// Calls at 0 and 1s; the second returns at 4.5s, so slots 2, 3 and 4 are
	// skipped and the grid resumes at 5s, not at 5.5s.
	require.Equal(t, []time.Duration{0, 1 * time.Second, 5 * time.Second, 6 * time.Second,
		7 * time.Second, 8 * time.Second, 9 * time.Second, 10 * time.Second}, at)
	require.Equal(t, []int{1, 1, 4, 1, 1, 1, 1, 1}, counts)
}

func TestLoopingCallWithCountAfterClockJump(t *testing.T) {
	clk := clock.NewFake()
	var counts []int
	lc := NewLoopingCallWithCount(clk, func(n int) { counts = append(counts, n) })
	require.NoError(t, lc.Start(time.Second, false))
	clk.Advance(time.Second)
	require.Equal(t, []int{1}, counts)
	clk.Jump(7500 * time.Millisecond) // the loop stalled
	clk.Advance(0)
	require.Equal(t, []int{1, 7}, counts, "slots 2..8 elapsed, one call")
	next := lc.Next()
	require.Equal(t, clock.FakeEpoch.Add(9*time.Second), next, "grid kept")
	clk.Advance(500 * time.Millisecond)
	require.Equal(t, []int{1, 7, 1}, counts)
}

func TestLoopingCallWithCountNow(t *testing.T) {
	clk := clock.NewFake()
	var counts []int
	lc := NewLoopingCallWithCount(clk, func(n int) { counts = append(counts, n) })
	require.NoError(t, lc.Start(time.Second, true))
	clk.Advance(2 * time.Second)
	require.Equal(t, []int{1, 1, 1}, counts)
}

func TestLoopingCallZeroInterval(t *testing.T) {
	clk := clock.NewFake()
	var counts []int
	lc := NewLoopingCallWithCount(clk, func(n int) { counts = append(counts, n) })
	require.NoError(t, lc.Start(0, false))
	require.Empty(t, counts, "never synchronous without now")
	for range 3 {
		clk.Advance(0) // one loop turn each
	}
	require.Equal(t, []int{1, 1, 1}, counts)
	clk.Jump(time.Hour)
	clk.Advance(0)
	require.Equal(t, []int{1, 1, 1, 1}, counts)
	lc.Stop()
	clk.Advance(0)
	require.Len(t, counts, 4)
}

func TestLoopingCallStopInsideFunction(t *testing.T) {
	clk := clock.NewFake()
	var lc *LoopingCall
	n := 0
	lc = NewLoopingCall(clk, func() {
		n++
		if n == 3 {
			lc.Stop()
		}
	})
	require.NoError(t, lc.Start(time.Second, true))
	clk.Advance(time.Minute)
	require.Equal(t, 3, n)
	require.False(t, lc.Running())
	require.Zero(t, clk.Len())
}

func TestLoopingCallRestartInsideFunction(t *testing.T) {
	clk := clock.NewFake()
	start := clk.Now()
	var lc *LoopingCall
	var at []time.Duration
	lc = NewLoopingCall(clk, func() {
		at = append(at, clk.Now().Sub(start))
		if len(at) == 2 {
			lc.Stop()
			require.NoError(t, lc.Start(5*time.Second, false))
		}
	})
	require.NoError(t, lc.Start(time.Second, false))
	clk.Advance(12 * time.Second)
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 7 * time.Second, 12 * time.Second}, at)
	require.Equal(t, 1, clk.Len(), "the old loop left nothing behind")
}

func TestLoopingCallReset(t *testing.T) {
	clk := clock.NewFake()
	start := clk.Now()
	var at []time.Duration
	var counts []int
	lc := NewLoopingCallWithCount(clk, func(n int) {
		at = append(at, clk.Now().Sub(start))
		counts = append(counts, n)
	})
	lc.Reset() // not running: nothing
	require.NoError(t, lc.Start(time.Second, false))
	clk.Advance(1500 * time.Millisecond)
	lc.Reset()
	clk.Advance(2 * time.Second)
	require.Equal(t, []time.Duration{time.Second, 2500 * time.Millisecond, 3500 * time.Millisecond}, at)
	require.Equal(t, []int{1, 1, 1}, counts)

	// Reset from inside the function restarts the grid at that call.
	var lc2 *LoopingCall
	var at2 []time.Duration
	lc2 = NewLoopingCall(clk, func() {
		at2 = append(at2, clk.Now().Sub(start))
		if len(at2) == 1 {
			clk.Jump(300 * time.Millisecond)
			lc2.Reset()
		}
	})
	lc.Stop()
	base := clk.Now().Sub(start)
	require.NoError(t, lc2.Start(time.Second, true))
	clk.Advance(2 * time.Second)
	require.Equal(t, []time.Duration{base, base + 1300*time.Millisecond, base + 2300*time.Millisecond}, at2)
}

func TestLoopingCallPanicStops(t *testing.T) {
	clk := clock.NewFake()
	n := 0
	lc := NewLoopingCall(clk, func() {
		n++
		if n == 2 {
			panic("boom")
		}
	})
	require.NoError(t, lc.Start(time.Second, true))
	require.PanicsWithValue(t, "boom", func() { clk.Advance(time.Second) })
	require.False(t, lc.Running())
	require.Zero(t, clk.Len())
	require.NoError(t, lc.Start(time.Second, false), "restartable after a panic")
}

func TestLoopingCallTickAllocatesNothing(t *testing.T) {
	clk := clock.NewFake()
	lc := NewLoopingCall(clk, func() {})
	require.NoError(t, lc.Start(time.Millisecond, false))
	clk.Advance(10 * time.Millisecond)
	allocs := testing.AllocsPerRun(1000, func() { clk.Advance(time.Millisecond) })
	require.Zero(t, allocs)
}

func BenchmarkLoopingCallTick(b *testing.B) {
	clk := clock.NewFake()
	lc := NewLoopingCallWithCount(clk, func(int) {})
	if err := lc.Start(time.Millisecond, false); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(time.Millisecond)
	}
}

// A heartbeat every 10 seconds, driven here by a fake clock; on a Loop, pass
// the loop as the clock.
func ExampleLoopingCall() {
	clk := clock.NewFake()
	start := clk.Now()
	beat := NewLoopingCall(clk, func() { fmt.Println("beat at", clk.Now().Sub(start)) })
	if err := beat.Start(10*time.Second, true); err != nil {
		fmt.Println(err)
	}
	clk.Advance(25 * time.Second)
	beat.Stop()
	clk.Advance(time.Minute)
	// Output:
	// beat at 0s
	// beat at 10s
	// beat at 20s
}

// With a count, the function learns how many intervals passed: more than one
// when the loop was too busy to call it on time.
func ExampleNewLoopingCallWithCount() {
	clk := clock.NewFake()
	lc := NewLoopingCallWithCount(clk, func(n int) { fmt.Println("intervals:", n) })
	_ = lc.Start(time.Second, false)
	clk.Advance(time.Second)
	clk.Jump(3 * time.Second) // the loop stalled for 3 s
	clk.Advance(0)
	// Output:
	// intervals: 1
	// intervals: 3
}
