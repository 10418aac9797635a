package policies_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/protocols/policies"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

func TestThrottlingMaxConnections(t *testing.T) {
	clk := clock.NewFake()
	f := policies.NewThrottlingFactory(&recorderFactory{}, 2, 0, 0)
	_, a := dial(f, clk, peer)
	_, b := dial(f, clk, peer)
	p, _ := dial(f, clk, peer)
	require.Nil(t, p)
	require.Equal(t, 2, f.Count())
	a.EndConnection(nil)
	p, c := dial(f, clk, peer)
	require.NotNil(t, p)
	b.EndConnection(nil)
	c.EndConnection(nil)
	require.Zero(t, f.Count())
	require.Zero(t, clk.Len())

	refusing := policies.NewThrottlingFactory(&recorderFactory{refuse: true}, 1, 0, 0)
	require.Nil(t, refusing.BuildProtocol(peer))
	require.Zero(t, refusing.Count(), "a refusal by the wrapped factory is not counted")
}

func TestThrottlingReads(t *testing.T) {
	clk := clock.NewFake()
	f := policies.NewThrottlingFactory(&recorderFactory{}, 0, 10, 0)
	_, a := dial(f, clk, peer)
	_, b := dial(f, clk, peer)

	a.Receive(make([]byte, 20))
	b.Receive(make([]byte, 10)) // 30 bytes in the second: 3x the limit
	clk.Advance(time.Second)
	require.True(t, f.ReadThrottled())
	require.True(t, a.ReadingPaused())
	require.True(t, b.ReadingPaused())

	// A connection made while throttled starts paused.
	_, c := dial(f, clk, peer)
	require.True(t, c.ReadingPaused())

	clk.Advance(1999 * time.Millisecond) // paused for 30/10-1 = 2 s
	require.True(t, a.ReadingPaused())
	clk.Advance(time.Millisecond)
	require.False(t, f.ReadThrottled())
	require.False(t, a.ReadingPaused())
	require.False(t, b.ReadingPaused())
	require.False(t, c.ReadingPaused())

	// Under the limit nothing happens.
	a.Receive(make([]byte, 10))
	clk.Advance(time.Second)
	require.False(t, a.ReadingPaused())

	a.EndConnection(nil)
	b.EndConnection(nil)
	c.EndConnection(nil)
	require.Zero(t, clk.Len(), "timers stop with the last connection")
}

func TestThrottlingDoesNotResumeProtocolPause(t *testing.T) {
	clk := clock.NewFake()
	inner := &recorderFactory{}
	f := policies.NewThrottlingFactory(inner, 0, 10, 0)
	_, a := dial(f, clk, peer)
	a.Receive(make([]byte, 25))
	clk.Advance(time.Second)
	require.True(t, a.ReadingPaused())
	inner.built[0].t.PauseReading() // the protocol wants a pause of its own
	clk.Advance(2 * time.Second)
	require.False(t, f.ReadThrottled())
	require.True(t, a.ReadingPaused(), "unthrottling must not undo the protocol's pause")
	inner.built[0].t.ResumeReading()
	require.False(t, a.ReadingPaused())
}

func TestThrottlingWrites(t *testing.T) {
	clk := clock.NewFake()
	inner := &recorderFactory{}
	f := policies.NewThrottlingFactory(inner, 0, 0, 100)
	_, a := dial(f, clk, peer)
	r := inner.built[0]
	prod := &pushProducer{}
	require.NoError(t, r.t.RegisterProducer(prod, true))

	require.NoError(t, r.t.Write(make([]byte, 150)))
	require.NoError(t, r.t.WriteBuffers([][]byte{make([]byte, 50), make([]byte, 50)}))
	clk.Advance(time.Second) // 250 bytes: paused for 1.5 s
	require.True(t, f.WriteThrottled())
	require.True(t, prod.paused)
	clk.Advance(1499 * time.Millisecond)
	require.True(t, prod.paused)
	clk.Advance(time.Millisecond)
	require.False(t, prod.paused)

	// The transport's own pause survives unthrottling.
	require.NoError(t, r.t.Write(make([]byte, 200)))
	clk.Advance(time.Second)
	require.True(t, prod.paused)
	a.SetPending(1 << 20) // over the high watermark
	clk.Advance(time.Second)
	require.False(t, f.WriteThrottled())
	require.True(t, prod.paused)
	a.SetPending(0)
	require.False(t, prod.paused)
	require.Equal(t, transporttest.Producing, a.ProducerState())
	a.EndConnection(nil)
	require.True(t, prod.stopped)
	require.Zero(t, clk.Len())
}

func TestThrottlingLongBurstExtendsPause(t *testing.T) {
	clk := clock.NewFake()
	f := policies.NewThrottlingFactory(&recorderFactory{}, 0, 10, 0)
	f.Clock = clk
	_, a := dial(f, clk, peer)
	a.Receive(make([]byte, 50)) // 4 s pause
	clk.Advance(time.Second)
	require.True(t, a.ReadingPaused())
	clk.Advance(3 * time.Second)
	require.True(t, a.ReadingPaused())
	clk.Advance(time.Second)
	require.False(t, a.ReadingPaused())
	a.EndConnection(transports.Lost(nil))
}
