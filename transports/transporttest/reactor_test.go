package transporttest_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

func TestMemoryReactorUNIX(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	var r transports.Reactor = m
	f := &clientFactory{}
	port, err := r.ListenUNIX("/tmp/a.sock", f, listenOpts{Backlog: 3})
	require.NoError(t, err)
	require.Equal(t, &net.UnixAddr{Name: "/tmp/a.sock", Net: "unix"}, port.Addr())
	l := m.LastListen()
	require.Equal(t, "unix", l.Network)
	require.Equal(t, listenOpts{Backlog: 3}, l.Options)

	c, err := r.ConnectUNIX("@abstract", f, nil)
	require.NoError(t, err)
	require.Equal(t, "unix", m.LastConnect().Network)
	require.Equal(t, &net.UnixAddr{Name: "@abstract", Net: "unix"}, c.Destination())
	require.Equal(t, []string{"started"}, f.events)

	_, err = r.ListenTCP("127.0.0.1:0", f, nil)
	require.NoError(t, err)
	require.Equal(t, "tcp", m.LastListen().Network)
	require.Len(t, m.Listens, 2)
}

func TestMemoryReactorCall(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	var order []int
	require.NoError(t, m.Call(func() {
		order = append(order, 1)
		require.NoError(t, m.Call(func() { order = append(order, 3) }))
	}))
	require.NoError(t, m.Call(func() { order = append(order, 2) }))
	require.Empty(t, order, "never inside Call")
	require.Equal(t, 2, m.Queued())
	require.Equal(t, 2, m.RunCalls())
	require.Equal(t, []int{1, 2}, order, "a call queued by a running call waits for the next run")
	require.Equal(t, 1, m.RunCalls())
	require.Equal(t, []int{1, 2, 3}, order)
	require.Zero(t, m.RunCalls())

	// From other goroutines.
	var wg sync.WaitGroup
	n := 0
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = m.Call(func() { n++ }) }()
	}
	wg.Wait()
	require.Equal(t, 8, m.WaitCalls(time.Second))
	require.Equal(t, 8, n)

	go func() { _ = m.Call(func() { n++ }) }()
	require.Equal(t, 1, m.WaitCalls(5*time.Second), "waits for a call from another goroutine")
	require.Zero(t, m.WaitCalls(10*time.Millisecond), "and gives up after the timeout")

	m.CallErr = transports.ErrClosed
	require.ErrorIs(t, m.Call(func() { n++ }), transports.ErrClosed)
	require.Zero(t, m.Queued())
}

func TestDoublesReportTheirReactor(t *testing.T) {
	m := transporttest.NewMemoryReactor(nil)
	port, err := m.ListenTCP(":0", &clientFactory{}, nil)
	require.NoError(t, err)
	_, st, err := port.(*transporttest.FakePort).Accept(nil)
	require.NoError(t, err)
	require.Same(t, m, st.Reactor())

	// A StringTransport made alone gets a MemoryReactor on its own clock.
	clk := clock.NewFake()
	st = transporttest.NewStringTransport(clk)
	mr, ok := st.Reactor().(*transporttest.MemoryReactor)
	require.True(t, ok)
	require.Same(t, clk, mr.Clock())
	require.Same(t, mr, st.Reactor(), "the same one every time")
	st.SetReactor(m)
	require.Same(t, m, st.Reactor())

	// Both ends of a pair share the pair's reactor; Pump runs its calls.
	pair := transporttest.NewPair(&recorder{}, &recorder{}, clk)
	pr := pair.Reactor()
	require.Same(t, pr, pair.Client.Reactor())
	require.Same(t, pr, pair.Server.Reactor())
	ran := false
	require.NoError(t, pr.Call(func() { ran = true }))
	require.True(t, pair.Pump(), "a call ran: the round moved")
	require.True(t, ran)
	pair.SetReactor(m)
	require.Same(t, m, pair.Client.Reactor())
}

// Transports are push producers: pausing one pauses its reading, stopping it
// loses the connection.
func TestDoublesAreProducers(t *testing.T) {
	st := transporttest.NewStringTransport(nil)
	r := &recorder{}
	transporttest.Connect(r, st)
	var p transports.PushProducer = st
	p.PauseProducing()
	require.True(t, st.ReadingPaused())
	st.Receive([]byte("held"))
	require.Empty(t, r.data)
	p.ResumeProducing()
	require.False(t, st.ReadingPaused())
	require.Equal(t, "held", string(r.data))
	p.StopProducing()
	require.True(t, st.Disconnecting())

	pair := transporttest.NewPair(&recorder{}, &recorder{}, nil)
	p = pair.Server
	p.PauseProducing()
	require.True(t, pair.Server.ReadingPaused())
	p.ResumeProducing()
	require.False(t, pair.Server.ReadingPaused())
	p.StopProducing()
	require.NoError(t, pair.Flush())
	ended, reason := pair.Client.Ended()
	require.True(t, ended)
	require.ErrorIs(t, reason, transports.ErrConnectionDone)
}

// A proxy in memory: the front connection's transport is the producer of
// the back one and the reverse, with no adapter. When the back end's queue
// passes its high watermark, reading the front pauses.
func TestPairProxyBackpressure(t *testing.T) {
	clk := clock.NewFake()
	front := transporttest.NewPair(&recorder{}, &recorder{}, clk)
	back := transporttest.NewPair(&recorder{}, &recorder{}, clk)
	back.Client.Watermarks = transports.Watermarks{High: 10, Low: 2}
	require.NoError(t, back.Client.RegisterProducer(front.Server, true))
	require.NoError(t, front.Server.RegisterProducer(back.Client, true))

	require.NoError(t, back.Client.Write([]byte("0123456789A")))
	require.True(t, front.Server.ReadingPaused(), "back queue above High: front reading paused")
	require.NoError(t, back.Flush())
	require.False(t, front.Server.ReadingPaused(), "drained: resumed")

	// The back connection ends: the front is stopped (LoseConnection).
	require.NoError(t, back.Server.LoseConnection())
	require.NoError(t, back.Flush())
	require.True(t, front.Server.Disconnecting())
	require.NoError(t, front.Flush())
	ended, _ := front.Client.Ended()
	require.True(t, ended)
}
