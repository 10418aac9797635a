package flow_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/internal/flow"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

func newTransport() *transporttest.StringTransport {
	tr := transporttest.NewStringTransport(nil)
	tr.Watermarks = transports.Watermarks{High: 100, Low: 10}
	return tr
}

func TestGateFollowsWatermarks(t *testing.T) {
	tr := newTransport()
	var g flow.Gate
	require.NoError(t, g.Start(tr, nil))
	p, streaming := tr.Producer()
	require.Same(t, &g, p)
	require.True(t, streaming)
	tr.SetPending(101)
	require.True(t, tr.ReadingPaused())
	require.Equal(t, flow.WriteQueue, g.Holds())
	tr.SetPending(11)
	require.True(t, tr.ReadingPaused(), "above low")
	tr.SetPending(10)
	require.False(t, tr.ReadingPaused())
	require.False(t, g.Held())
}

// TestGateReasonsCompose: the write queue draining does not resume reading
// another reason paused, nor does that reason's end resume it while the
// queue is full — in either order.
func TestGateReasonsCompose(t *testing.T) {
	const mine = flow.Custom
	for _, queueFirst := range []bool{true, false} {
		tr := newTransport()
		var g flow.Gate
		require.NoError(t, g.Start(tr, nil))
		if queueFirst {
			tr.SetPending(200)
			g.Hold(mine)
		} else {
			g.Hold(mine)
			tr.SetPending(200)
		}
		require.True(t, tr.ReadingPaused())
		tr.SetPending(0)
		require.True(t, tr.ReadingPaused(), "still held by the protocol's reason")
		tr.SetPending(200)
		g.Release(mine)
		require.True(t, tr.ReadingPaused(), "still held by the write queue")
		g.Hold(mine)
		g.Hold(mine) // idempotent
		g.Release(mine)
		tr.SetPending(0)
		require.False(t, tr.ReadingPaused())
	}
}

// TestGateDrainBeforeResume: the drain callback runs with reading still
// paused; if it fills the queue again, reading stays paused.
func TestGateDrainBeforeResume(t *testing.T) {
	tr := newTransport()
	tr.CountWrites = true
	var g flow.Gate
	var pausedInDrain []bool
	refill := true
	require.NoError(t, g.Start(tr, func() {
		pausedInDrain = append(pausedInDrain, tr.ReadingPaused())
		if refill {
			_ = tr.Write(make([]byte, 150))
		}
	}))
	_ = tr.Write(make([]byte, 150))
	require.True(t, tr.ReadingPaused())
	tr.SetPending(0)
	require.True(t, tr.ReadingPaused(), "the drain refilled the queue")
	refill = false
	tr.SetPending(0)
	require.False(t, tr.ReadingPaused())
	require.Equal(t, []bool{true, true}, pausedInDrain)

	// No drain while another reason holds.
	g.Hold(flow.Custom)
	_ = tr.Write(make([]byte, 150))
	tr.SetPending(0)
	require.Len(t, pausedInDrain, 2)
}

// TestGateReentrantResume: a transport that delivers held bytes from inside
// ResumeReading, to a protocol that pauses again, stays paused.
func TestGateReentrantResume(t *testing.T) {
	tr := newTransport()
	tr.CountWrites = true
	e := &echoish{}
	transporttest.Connect(e, tr)
	tr.Receive(make([]byte, 150))
	require.True(t, tr.ReadingPaused())
	tr.Receive(make([]byte, 150)) // held by the transport
	tr.SetPending(0)              // resume delivers it; the echo pauses again
	require.True(t, tr.ReadingPaused())
	require.Equal(t, 300, len(tr.Value()))
	tr.SetPending(0)
	require.False(t, tr.ReadingPaused())
}

type echoish struct {
	t transports.Transport
	g flow.Gate
}

func (e *echoish) ConnectionMade(t transports.Transport) { e.t = t; _ = e.g.Start(t, nil) }
func (e *echoish) DataReceived(p []byte)                 { _ = e.t.Write(p) }
func (e *echoish) ConnectionLost(error)                  { e.g.Close() }

func TestGateClose(t *testing.T) {
	tr := newTransport()
	var g flow.Gate
	require.NoError(t, g.Start(tr, func() { t.Fatal("no drain after Close") }))
	g.Hold(flow.Custom)
	tr.SetPending(200)
	require.True(t, tr.ReadingPaused())
	g.Close()
	require.False(t, tr.ReadingPaused(), "Close resumes reading")
	p, _ := tr.Producer()
	require.Nil(t, p, "and unregisters")
	g.Hold(flow.Custom)
	g.PauseProducing()
	g.ResumeProducing()
	require.False(t, tr.ReadingPaused())
	g.Close() // idempotent
}

func TestGateStopProducing(t *testing.T) {
	tr := newTransport()
	var g flow.Gate
	require.NoError(t, g.Start(tr, nil))
	tr.SetPending(200)
	tr.EndConnection(nil)
	require.Equal(t, transporttest.Stopped, tr.ProducerState())
	g.Hold(flow.Custom)
	g.Close()
}

// TestGateRegisterFails: another producer holds the slot; Start reports it
// and the protocol's own holds still work.
func TestGateRegisterFails(t *testing.T) {
	tr := newTransport()
	var other flow.Gate
	require.NoError(t, other.Start(tr, nil))
	var g flow.Gate
	require.ErrorIs(t, g.Start(tr, nil), transports.ErrProducerRegistered)
	g.Hold(flow.Custom)
	require.True(t, tr.ReadingPaused())
	g.Release(flow.Custom)
	require.False(t, tr.ReadingPaused())
	g.Close()
	p, _ := tr.Producer()
	require.Same(t, &other, p, "Close leaves the other producer registered")
}

func TestGateAllocs(t *testing.T) {
	tr := newTransport()
	var g flow.Gate
	require.NoError(t, g.Start(tr, nil))
	require.Zero(t, testing.AllocsPerRun(100, func() {
		g.PauseProducing()
		g.ResumeProducing()
		g.Hold(flow.Custom)
		g.Release(flow.Custom)
	}))
}
