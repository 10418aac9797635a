package policies_test

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/protocols/basic"
	"github.com/gyre-io/gyre/protocols/policies"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

var peer = &net.TCPAddr{IP: net.IPv4(192, 168, 1, 1), Port: 54321}

func TestWrappingFactoryForwards(t *testing.T) {
	inner := &recorderFactory{}
	f := &policies.WrappingFactory{Wrapped: inner}
	var order []string
	f.Setup = func(w *policies.ProtocolWrapper) {
		w.OnConnectionMade = func(*policies.ProtocolWrapper) { order = append(order, "made") }
		w.OnDataReceived = func(p []byte) { order = append(order, "data:"+string(p)) }
		w.OnWrite = func(n int) { order = append(order, "write") }
		w.OnConnectionLost = func(error) { order = append(order, "lost") }
	}
	p, tr := dial(f, clock.NewFake(), peer)
	w := p.(*policies.ProtocolWrapper)
	r := inner.built[0]
	require.Equal(t, peer, inner.addrs[0])
	require.Same(t, w, r.t, "the inner protocol's transport is the wrapper")
	require.Same(t, transports.Transport(tr), w.Transport())
	require.Equal(t, 1, f.Len())
	require.Equal(t, []*policies.ProtocolWrapper{w}, f.Protocols())

	tr.Receive([]byte("hi"))
	require.Equal(t, "hi", string(r.data))
	require.NoError(t, r.t.Write([]byte("a")))
	require.NoError(t, r.t.WriteBuffers([][]byte{[]byte("b"), []byte("c")}))
	require.Equal(t, "abc", tr.String())
	require.Equal(t, peer, r.t.RemoteAddr())
	require.Equal(t, tr.LocalAddr(), r.t.LocalAddr())
	require.Same(t, tr.Clock(), r.t.Clock())
	require.NoError(t, w.SetNoDelay(true))
	require.True(t, tr.NoDelay())
	require.NoError(t, w.SetKeepAlive(true, time.Minute))

	require.NoError(t, r.t.CloseWrite())
	require.True(t, tr.WriteClosed())
	require.NoError(t, r.t.LoseConnection())
	require.True(t, tr.Disconnecting())
	require.NoError(t, r.t.Abort())
	require.True(t, tr.Aborted())
	tr.EndConnection(nil)
	require.Len(t, r.lost, 1)
	require.ErrorIs(t, r.lost[0], transports.ErrConnectionDone)
	require.Zero(t, f.Len())
	require.Equal(t, []string{"made", "data:hi", "write", "write", "lost"}, order)

	f.StartFactory()
	f.StopFactory()
	require.Equal(t, 1, inner.started)
	require.Equal(t, 1, inner.stopped)
}

func TestWrappingFactoryRefusal(t *testing.T) {
	f := &policies.WrappingFactory{Wrapped: &recorderFactory{refuse: true}}
	p := f.BuildProtocol(peer)
	require.Nil(t, p, "a refusal must be a nil interface, not a typed nil")
}

func TestWrapperNotConnected(t *testing.T) {
	w := &policies.ProtocolWrapper{Wrapped: &recorder{}}
	require.ErrorIs(t, w.Write(nil), transports.ErrNotConnected)
	require.ErrorIs(t, w.WriteBuffers(nil), transports.ErrNotConnected)
	require.ErrorIs(t, w.LoseConnection(), transports.ErrNotConnected)
	require.ErrorIs(t, w.Abort(), transports.ErrNotConnected)
	require.ErrorIs(t, w.CloseWrite(), transports.ErrNotConnected)
	require.ErrorIs(t, w.RegisterProducer(&pushProducer{}, true), transports.ErrNotConnected)
	require.ErrorIs(t, w.SetNoDelay(true), errors.ErrUnsupported)
	require.Nil(t, w.RemoteAddr())
	require.Nil(t, w.LocalAddr())
	require.Nil(t, w.Clock())
	w.PauseReading()
	w.ResumeReading()
	w.UnregisterProducer()
}

func TestWrapperReadingPauseComposes(t *testing.T) {
	w := &policies.ProtocolWrapper{Wrapped: &recorder{}}
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(w, tr)

	w.PauseReading() // the protocol
	require.True(t, tr.ReadingPaused())
	w.HoldReading() // a policy
	w.ResumeReading()
	require.True(t, tr.ReadingPaused(), "still held by the policy")
	w.HoldReading()
	w.ReleaseReading()
	require.True(t, tr.ReadingPaused(), "holds nest")
	w.ReleaseReading()
	require.False(t, tr.ReadingPaused())
	w.ReleaseReading() // extra release is harmless
	require.False(t, tr.ReadingPaused())

	w.HoldReading()
	w.PauseReading()
	w.ReleaseReading()
	require.True(t, tr.ReadingPaused(), "the protocol's pause survives the policy's release")
}

func TestWrapperPushProducerComposes(t *testing.T) {
	w := &policies.ProtocolWrapper{Wrapped: &recorder{}}
	tr := transporttest.NewStringTransport(nil)
	tr.Watermarks = transports.Watermarks{High: 100, Low: 10}
	transporttest.Connect(w, tr)
	p := &pushProducer{}
	require.NoError(t, w.RegisterProducer(p, true))
	require.ErrorIs(t, w.RegisterProducer(p, true), transports.ErrProducerRegistered)
	require.Same(t, p, w.Producer())

	tr.SetPending(200) // the transport pauses
	require.True(t, p.paused)
	w.HoldProducer()
	tr.SetPending(0) // the transport resumes, the policy still holds
	require.True(t, p.paused)
	w.ReleaseProducer()
	require.False(t, p.paused)
	require.Equal(t, 1, p.pauses)

	w.HoldProducer()
	require.True(t, p.paused)
	tr.SetPending(200)
	tr.SetPending(0)
	require.True(t, p.paused)
	w.ReleaseProducer()
	require.False(t, p.paused)

	tr.EndConnection(nil)
	require.True(t, p.stopped)
}

func TestWrapperPullProducerHeld(t *testing.T) {
	clk := clock.NewFake()
	w := &policies.ProtocolWrapper{Wrapped: &recorder{}}
	tr := transporttest.NewStringTransport(clk)
	transporttest.Connect(w, tr)
	p := &pullProducer{}
	require.NoError(t, w.RegisterProducer(p, false))
	clk.Advance(0)
	require.Equal(t, 1, p.asked)
	w.HoldProducer()
	tr.SetPending(10) // the producer wrote a chunk…
	tr.SetPending(0)  // …which drained: the transport asks for the next
	require.Equal(t, 1, p.asked, "withheld while held")
	w.ReleaseProducer()
	require.Equal(t, 2, p.asked, "delivered on release")
	w.UnregisterProducer()
	require.Nil(t, w.Producer())
	p2 := &pullProducer{}
	require.NoError(t, w.RegisterProducer(p2, false))
}

type halfCloser struct {
	recorder
	readLost, writeLost int
}

func (h *halfCloser) ReadConnectionLost()  { h.readLost++ }
func (h *halfCloser) WriteConnectionLost() { h.writeLost++ }

func TestWrapperHalfClose(t *testing.T) {
	h := &halfCloser{}
	w := &policies.ProtocolWrapper{Wrapped: h}
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(w, tr)
	w.ReadConnectionLost()
	w.WriteConnectionLost()
	require.Equal(t, 1, h.readLost)
	require.Equal(t, 1, h.writeLost)
	require.False(t, tr.Disconnecting())

	// A protocol that is not half-closeable gets the connection closed.
	w2 := &policies.ProtocolWrapper{Wrapped: &recorder{}}
	tr2 := transporttest.NewStringTransport(nil)
	transporttest.Connect(w2, tr2)
	w2.ReadConnectionLost()
	w2.WriteConnectionLost()
	require.True(t, tr2.Disconnecting())
}

type clientFactory struct {
	recorderFactory
	events []string
}

func (c *clientFactory) StartedConnecting(transports.Connector) { c.events = append(c.events, "start") }
func (c *clientFactory) ClientConnectionFailed(_ transports.Connector, err error) {
	c.events = append(c.events, "failed:"+err.Error())
}
func (c *clientFactory) ClientConnectionLost(_ transports.Connector, err error) {
	c.events = append(c.events, "lost:"+err.Error())
}

func TestWrappingFactoryClientForwarding(t *testing.T) {
	cf := &clientFactory{}
	f := &policies.WrappingFactory{Wrapped: cf}
	f.StartedConnecting(nil)
	f.ClientConnectionFailed(nil, transports.ErrConnectTimeout)
	f.ClientConnectionLost(nil, transports.ErrConnectionLost)
	require.Equal(t, []string{"start", "failed:" + transports.ErrConnectTimeout.Error(), "lost:" + transports.ErrConnectionLost.Error()}, cf.events)
	// A plain factory is fine too.
	g := &policies.WrappingFactory{Wrapped: transports.FactoryFunc(func(net.Addr) transports.Protocol { return nil })}
	g.StartedConnecting(nil)
	g.StartFactory()
}

// A framer behind a wrapper behind a timeout sees the same lines whatever the
// chunking.
func TestWrappedLineReceiverEveryChunking(t *testing.T) {
	in := []byte("one\r\ntwo\r\n\r\nthree\r\nrest")
	for size := 1; size <= len(in); size++ {
		var lines []string
		inner := transports.FactoryFunc(func(net.Addr) transports.Protocol {
			return &basic.LineReceiver{OnLine: func(l []byte) { lines = append(lines, string(l)) }}
		})
		f := policies.NewTimeoutFactory(inner, time.Minute)
		p, tr := dial(f, clock.NewFake(), peer)
		transporttest.FeedChunks(p, in, size)
		require.Equal(t, []string{"one", "two", "", "three"}, lines, "size %d", size)
		tr.EndConnection(nil)
	}
}

func ExampleWrappingFactory() {
	// Count the bytes every connection reads and writes.
	var read, written int
	inner := transports.FactoryFunc(func(net.Addr) transports.Protocol {
		r := &basic.LineReceiver{}
		r.OnLine = func(line []byte) { _ = r.SendLine(line) }
		return r
	})
	f := &policies.WrappingFactory{
		Wrapped: inner,
		Setup: func(w *policies.ProtocolWrapper) {
			w.OnDataReceived = func(p []byte) { read += len(p) }
			w.OnWrite = func(n int) { written += n }
		},
	}

	p := f.BuildProtocol(peer)
	tr := transporttest.NewStringTransport(nil)
	transporttest.Connect(p, tr)
	tr.Receive([]byte("hello\r\nworld\r\n"))
	fmt.Println(read, written, f.Len())
	tr.EndConnection(nil)
	fmt.Println(f.Len())
	// Output:
	// 14 14 1
	// 0
}
