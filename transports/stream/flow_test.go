package stream

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/transports"
)

// recProducer records the calls it gets; hooks run inside them.
type recProducer struct {
	calls            []string
	onPause, onResum func()
	onStop           func()
}

func (p *recProducer) PauseProducing() {
	p.calls = append(p.calls, "pause")
	if p.onPause != nil {
		p.onPause()
	}
}

func (p *recProducer) ResumeProducing() {
	p.calls = append(p.calls, "resume")
	if p.onResum != nil {
		p.onResum()
	}
}

func (p *recProducer) StopProducing() {
	p.calls = append(p.calls, "stop")
	if p.onStop != nil {
		p.onStop()
	}
}

// pullProducer is a PullProducer only.
type pullProducer struct {
	calls  []string
	onMore func()
}

func (p *pullProducer) ResumeProducing() {
	p.calls = append(p.calls, "more")
	if p.onMore != nil {
		p.onMore()
	}
}
func (p *pullProducer) StopProducing() { p.calls = append(p.calls, "stop") }

// turns is a fake "next turn" queue.
type turns struct{ fs []func() }

func (t *turns) later(f func()) { t.fs = append(t.fs, f) }
func (t *turns) run() {
	for len(t.fs) > 0 {
		fs := t.fs
		t.fs = nil
		for _, f := range fs {
			f()
		}
	}
}

var wm = transports.Watermarks{High: 100, Low: 40}

func TestFlowPushOscillation(t *testing.T) {
	var f Flow
	f.Init(wm, nil, nil)
	p := &recProducer{}
	require.NoError(t, f.Register(p, true))
	// Oscillate around both marks; every value is reported (some twice).
	seq := []int{50, 100, 101, 150, 101, 100, 60, 41, 40, 40, 39, 99, 100, 101, 101, 0, 0, 200, 41, 40, 101}
	for _, n := range seq {
		f.Update(n)
	}
	require.Equal(t, []string{"pause", "resume", "pause", "resume", "pause", "resume", "pause"}, p.calls)
	require.True(t, f.Paused())
}

func TestFlowHonoursLowWatermark(t *testing.T) {
	// tcp resumes only at empty (the bug); Flow resumes at Low.
	var f Flow
	f.Init(wm, nil, nil)
	p := &recProducer{}
	require.NoError(t, f.Register(p, true))
	f.Update(500)
	f.Update(41)
	require.Equal(t, []string{"pause"}, p.calls)
	f.Update(40)
	require.Equal(t, []string{"pause", "resume"}, p.calls)
}

func TestFlowRegisterAboveHighPausesAtOnce(t *testing.T) {
	var f Flow
	f.Init(wm, nil, nil)
	f.Update(101)
	p := &recProducer{}
	require.NoError(t, f.Register(p, true))
	require.Equal(t, []string{"pause"}, p.calls)
	require.True(t, f.Paused())
}

func TestFlowRegisterErrors(t *testing.T) {
	var f Flow
	f.Init(wm, nil, nil)
	require.ErrorIs(t, f.Register(nil, true), ErrNilProducer)
	p := &recProducer{}
	require.NoError(t, f.Register(p, true))
	require.ErrorIs(t, f.Register(&recProducer{}, true), transports.ErrProducerRegistered)
	f.Unregister()
	require.NoError(t, f.Register(p, false))
	f.Stop()
	require.ErrorIs(t, f.Register(&recProducer{}, true), transports.ErrClosed)
}

func TestFlowPullProducer(t *testing.T) {
	var tq turns
	var f Flow
	f.Init(wm, nil, tq.later)
	p := &pullProducer{}
	require.NoError(t, f.Register(p, false))
	require.Empty(t, p.calls, "the first ask is on the next turn")
	tq.run()
	require.Equal(t, []string{"more"}, p.calls)
	f.Update(30) // the producer wrote
	f.Update(10) // partly sent
	require.Len(t, p.calls, 1)
	f.Update(0) // drained: ask for more
	require.Len(t, p.calls, 2)
	f.Update(0) // still empty: not asked twice
	require.Len(t, p.calls, 2)
	f.Update(500) // far above High: a pull producer is never paused
	f.Update(0)
	require.Equal(t, []string{"more", "more", "more"}, p.calls)
	f.Stop()
	require.Equal(t, "stop", p.calls[len(p.calls)-1])
}

func TestFlowPullRegisteredWhileBuffered(t *testing.T) {
	// Not asked on the next turn while bytes are buffered; asked at the drain,
	// once.
	var tq turns
	var f Flow
	f.Init(wm, nil, tq.later)
	f.Update(10)
	p := &pullProducer{}
	require.NoError(t, f.Register(p, false))
	tq.run()
	require.Empty(t, p.calls)
	f.Update(0)
	require.Equal(t, []string{"more"}, p.calls)
}

func TestFlowPullStaleFirstAsk(t *testing.T) {
	// Unregistered and registered again before the next turn: the first
	// registration's ask is dropped, the second's runs once.
	var tq turns
	var f Flow
	f.Init(wm, nil, tq.later)
	p := &pullProducer{}
	require.NoError(t, f.Register(p, false))
	f.Unregister()
	require.NoError(t, f.Register(p, false))
	tq.run()
	require.Equal(t, []string{"more"}, p.calls)
}

func TestFlowPullSynchronousWithoutLater(t *testing.T) {
	var f Flow
	f.Init(wm, nil, nil)
	p := &pullProducer{}
	p.onMore = func() { f.Update(20) } // writes a chunk
	require.NoError(t, f.Register(p, false))
	require.Equal(t, []string{"more"}, p.calls)
	f.Update(0)
	require.Equal(t, []string{"more", "more"}, p.calls)
}

func TestFlowUnregisterInsideCallback(t *testing.T) {
	var f Flow
	f.Init(wm, nil, nil)
	p := &recProducer{}
	p.onPause = func() { f.Unregister() }
	require.NoError(t, f.Register(p, true))
	f.Update(200)
	f.Update(0)
	f.Update(200)
	f.Stop()
	require.Equal(t, []string{"pause"}, p.calls, "nothing after unregistering, StopProducing included")

	// Registering a new producer from inside a callback: the new one is
	// brought in line with the count after the callback returns.
	f.Init(wm, nil, nil)
	p2 := &recProducer{}
	p1 := &recProducer{}
	p1.onPause = func() {
		f.Unregister()
		require.NoError(t, f.Register(p2, true))
	}
	require.NoError(t, f.Register(p1, true))
	f.Update(200)
	require.Equal(t, []string{"pause"}, p1.calls)
	require.Equal(t, []string{"pause"}, p2.calls)
}

func TestFlowReentrantWrites(t *testing.T) {
	var f Flow
	f.Init(wm, nil, nil)
	n := 0
	write := func(k int) { n += k; f.Update(n) }
	p := &recProducer{}
	p.onPause = func() { write(50) }  // PauseProducing that writes more
	p.onResum = func() { write(500) } // ResumeProducing that writes past High
	require.NoError(t, f.Register(p, true))
	write(150)
	require.Equal(t, []string{"pause"}, p.calls, "a write inside PauseProducing does not pause twice")
	n = 0
	f.Update(0)
	// Resume writes 500: paused inside that write (Twisted's FileDescriptor).
	require.Equal(t, []string{"pause", "resume", "pause"}, p.calls)
	require.True(t, f.Paused())
}

// TestFlowPauseInsideResume: a push producer that produces in a loop inside
// ResumeProducing until paused (protocols/http's pipelining does) is paused
// by the write that crosses High, so it stops there.
func TestFlowPauseInsideResume(t *testing.T) {
	var f Flow
	f.Init(wm, nil, nil)
	n, paused, chunks := 0, false, 0
	p := &recProducer{}
	p.onPause = func() { paused = true }
	p.onResum = func() {
		paused = false
		for !paused && chunks < 100 {
			chunks++
			n += 30
			f.Update(n)
		}
	}
	require.NoError(t, f.Register(p, true))
	n = 200
	f.Update(n)
	require.True(t, paused)
	n = 0
	f.Update(0)
	require.Equal(t, 4, chunks, "30-byte chunks: the fourth crosses High=100 and pauses")
	require.True(t, f.Paused())
	require.Equal(t, []string{"pause", "resume", "pause"}, p.calls)
}

func TestFlowResumeNotNestedInsideResume(t *testing.T) {
	var f Flow
	f.Init(wm, nil, nil)
	depth, maxDepth := 0, 0
	p := &recProducer{}
	enter := func() {
		depth++
		maxDepth = max(maxDepth, depth)
		f.Update(1000)
		f.Update(0)
		f.Update(1000)
		depth--
	}
	p.onPause, p.onResum = enter, enter
	require.NoError(t, f.Register(p, true))
	f.Update(1000)
	f.Update(0)
	require.Equal(t, 2, maxDepth, "only a pause nests, inside a resume; nothing nests inside a pause")
	require.Equal(t, []string{"pause", "resume", "pause"}, p.calls[:3])
}

func TestFlowStopOnce(t *testing.T) {
	var f Flow
	f.Init(wm, nil, nil)
	p := &recProducer{}
	require.NoError(t, f.Register(p, true))
	f.Update(200)
	f.Stop()
	f.Stop()
	f.Update(0)
	require.Equal(t, []string{"pause", "stop"}, p.calls)
	require.True(t, f.Stopped())
	p2, _ := f.Producer()
	require.Nil(t, p2)
}

func TestFlowProtectedCallbacks(t *testing.T) {
	// A panicking producer is handled by protect; flow control goes on.
	var f Flow
	var caught []any
	protect := func(fn func()) {
		defer func() {
			if r := recover(); r != nil {
				caught = append(caught, r)
			}
		}()
		fn()
	}
	f.Init(wm, protect, nil)
	p := &recProducer{}
	p.onPause = func() { panic(errors.New("boom")) }
	require.NoError(t, f.Register(p, true))
	f.Update(200)
	require.Len(t, caught, 1)
	f.Update(0)
	require.Equal(t, []string{"pause", "resume"}, p.calls)
	p.onStop = func() { panic("stop boom") }
	f.Stop()
	require.Len(t, caught, 2)
}

// onlyProducer implements neither pause nor resume.
type onlyProducer struct{ stops int }

func (p *onlyProducer) StopProducing() { p.stops++ }

func TestFlowProducerWithoutMethods(t *testing.T) {
	var tq turns
	var f Flow
	f.Init(wm, nil, tq.later)
	p := &onlyProducer{}
	require.NoError(t, f.Register(p, true))
	f.Update(200)
	require.True(t, f.Paused())
	f.Update(0)
	f.Unregister()
	require.NoError(t, f.Register(p, false))
	tq.run()
	f.Stop()
	require.Equal(t, 1, p.stops)
}

func TestFlowDefaultsWatermarks(t *testing.T) {
	var f Flow
	f.Init(transports.Watermarks{}, nil, nil)
	require.Equal(t, transports.Watermarks{High: 64 << 10, Low: 16 << 10}, f.Watermarks())
}

func TestFlowUpdateAllocs(t *testing.T) {
	var f Flow
	f.Init(wm, func(fn func()) { fn() }, nil)
	require.NoError(t, f.Register(&recProducer{}, true))
	n := 0
	require.Zero(t, testing.AllocsPerRun(1000, func() { n = (n + 7) % 90; f.Update(n) }))
}
