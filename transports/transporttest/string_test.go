package transporttest_test

import (
	"bytes"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// recorder is a protocol that records every callback.
type recorder struct {
	tr     transports.Transport
	made   int
	data   []byte
	chunks [][]byte
	lost   []error
	onData func(p []byte)
}

func (r *recorder) ConnectionMade(t transports.Transport) { r.tr = t; r.made++ }
func (r *recorder) DataReceived(p []byte) {
	r.data = append(r.data, p...)
	r.chunks = append(r.chunks, bytes.Clone(p))
	if r.onData != nil {
		r.onData(p)
	}
}
func (r *recorder) ConnectionLost(reason error) { r.lost = append(r.lost, reason) }

// echo writes back what it receives.
type echo struct{ recorder }

func (e *echo) DataReceived(p []byte) {
	e.recorder.DataReceived(p)
	_ = e.tr.Write(p)
}

// producer records the calls a transport makes on it.
type producer struct {
	calls []string
	onRes func()
}

func (p *producer) PauseProducing() { p.calls = append(p.calls, "pause") }
func (p *producer) ResumeProducing() {
	p.calls = append(p.calls, "resume")
	if p.onRes != nil {
		p.onRes()
	}
}
func (p *producer) StopProducing() { p.calls = append(p.calls, "stop") }

type pullOnly struct {
	resumes, stops int
	onRes          func()
}

func (p *pullOnly) ResumeProducing() {
	p.resumes++
	if p.onRes != nil {
		p.onRes()
	}
}
func (p *pullOnly) StopProducing() { p.stops++ }

func TestStringTransportRecordsWrites(t *testing.T) {
	tr := transporttest.NewStringTransport(nil)
	p := &echo{}
	transporttest.Connect(p, tr)
	require.Equal(t, 1, p.made)
	require.Same(t, tr, p.tr)
	require.Equal(t, p, tr.Protocol())

	buf := []byte("hello")
	require.NoError(t, tr.Write(buf))
	buf[0] = 'J' // Write copied
	require.NoError(t, tr.WriteBuffers([][]byte{[]byte(", "), []byte("world")}))
	require.Equal(t, "hello, world", tr.String())
	require.Equal(t, []byte("hello, world"), tr.Value())
	require.Equal(t, 2, tr.Writes())

	tr.Clear()
	require.Empty(t, tr.Value())
	tr.Receive([]byte("ping"))
	require.Equal(t, "ping", tr.String())
}

func TestStringTransportCloseRequests(t *testing.T) {
	tr := transporttest.NewStringTransport(nil)
	require.False(t, tr.Closed())
	require.NoError(t, tr.CloseWrite())
	require.True(t, tr.WriteClosed())
	require.ErrorIs(t, tr.Write([]byte("x")), transports.ErrClosed)
	require.False(t, tr.Closed(), "half-close is not close")

	tr = transporttest.NewStringTransport(nil)
	require.NoError(t, tr.Write([]byte("queued")))
	require.NoError(t, tr.LoseConnection())
	require.NoError(t, tr.LoseConnection(), "idempotent")
	require.True(t, tr.Disconnecting())
	require.True(t, tr.Closed())
	require.False(t, tr.Aborted())
	require.ErrorIs(t, tr.Write([]byte("x")), transports.ErrClosed)
	require.ErrorIs(t, tr.WriteBuffers([][]byte{[]byte("x")}), transports.ErrClosed)
	require.Equal(t, "queued", tr.String(), "bytes accepted before are kept")

	tr = transporttest.NewStringTransport(nil)
	tr.SetPending(100)
	require.NoError(t, tr.Abort())
	require.NoError(t, tr.Abort())
	require.True(t, tr.Aborted())
	require.Zero(t, tr.Pending(), "abort drops the queue")
	require.ErrorIs(t, tr.Write([]byte("x")), transports.ErrClosed)
}

func TestStringTransportWriteErr(t *testing.T) {
	tr := transporttest.NewStringTransport(nil)
	boom := errors.New("boom")
	tr.WriteErr = boom
	require.ErrorIs(t, tr.Write([]byte("x")), boom)
	require.ErrorIs(t, tr.WriteBuffers(nil), boom)
	require.Empty(t, tr.Value())
	require.Zero(t, tr.Writes())
}

func TestStringTransportEndConnection(t *testing.T) {
	tr := transporttest.NewStringTransport(nil)
	p := &recorder{}
	transporttest.Connect(p, tr)
	prod := &producer{}
	require.NoError(t, tr.RegisterProducer(prod, true))

	tr.EndConnection(nil)
	tr.EndConnection(errors.New("ignored"))
	require.Len(t, p.lost, 1, "ConnectionLost exactly once")
	require.ErrorIs(t, p.lost[0], transports.ErrConnectionDone)
	ended, reason := tr.Ended()
	require.True(t, ended)
	require.ErrorIs(t, reason, transports.ErrConnectionDone)
	require.Equal(t, []string{"stop"}, prod.calls)
	require.Equal(t, transporttest.Stopped, tr.ProducerState())

	tr.Receive([]byte("late"))
	require.Empty(t, p.data, "nothing after ConnectionLost")
	require.ErrorIs(t, tr.Write([]byte("x")), transports.ErrClosed)
	require.ErrorIs(t, tr.CloseWrite(), transports.ErrClosed)

	tr.UnregisterProducer()
	late := &producer{}
	require.ErrorIs(t, tr.RegisterProducer(late, true), transports.ErrClosed)
	require.Empty(t, late.calls)

	tr2 := transporttest.NewStringTransport(nil)
	p2 := &recorder{}
	transporttest.Connect(p2, tr2)
	cause := errors.New("reset by peer")
	tr2.EndConnection(transports.Lost(cause))
	require.ErrorIs(t, p2.lost[0], transports.ErrConnectionLost)
	require.ErrorIs(t, p2.lost[0], cause)
}

func TestStringTransportPauseReading(t *testing.T) {
	tr := transporttest.NewStringTransport(nil)
	p := &recorder{}
	transporttest.Connect(p, tr)
	tr.PauseReading()
	require.True(t, tr.ReadingPaused())
	in := []byte("ab")
	tr.Receive(in)
	in[0] = 'X'
	tr.Receive([]byte("cd"))
	require.Empty(t, p.data, "held while paused")
	tr.ResumeReading()
	require.False(t, tr.ReadingPaused())
	require.Equal(t, "abcd", string(p.data))
	require.Len(t, p.chunks, 1)

	// Data held when the connection ends is dropped.
	tr.PauseReading()
	tr.Receive([]byte("zz"))
	tr.EndConnection(nil)
	tr.ResumeReading()
	require.Equal(t, "abcd", string(p.data))
}

func TestStringTransportStreamingProducerWatermarks(t *testing.T) {
	tr := transporttest.NewStringTransport(nil)
	tr.Watermarks = transports.Watermarks{High: 100, Low: 10}
	prod := &producer{}
	require.NoError(t, tr.RegisterProducer(prod, true))
	got, streaming := tr.Producer()
	require.Same(t, prod, got)
	require.True(t, streaming)
	require.Equal(t, transporttest.Producing, tr.ProducerState())
	require.ErrorIs(t, tr.RegisterProducer(&producer{}, true), transports.ErrProducerRegistered)

	tr.SetPending(100)
	require.Empty(t, prod.calls, "at the high watermark is not above it")
	tr.SetPending(101)
	require.Equal(t, []string{"pause"}, prod.calls)
	require.Equal(t, transporttest.Paused, tr.ProducerState())
	tr.SetPending(500)
	require.Equal(t, []string{"pause"}, prod.calls, "paused once")
	tr.Drain(489)
	require.Equal(t, 11, tr.Pending())
	require.Equal(t, []string{"pause"}, prod.calls)
	tr.Drain(1)
	require.Equal(t, []string{"pause", "resume"}, prod.calls)
	require.Equal(t, transporttest.Producing, tr.ProducerState())

	tr.UnregisterProducer()
	require.Equal(t, transporttest.NoProducer, tr.ProducerState())
	p, _ := tr.Producer()
	require.Nil(t, p)
	tr.SetPending(1000)
	require.Equal(t, []string{"pause", "resume"}, prod.calls, "unregistered producers are left alone")

	// Registering above the high watermark pauses at once.
	prod2 := &producer{}
	require.NoError(t, tr.RegisterProducer(prod2, true))
	require.Equal(t, []string{"pause"}, prod2.calls)
	tr.SetPending(-5)
	require.Zero(t, tr.Pending())
	require.Equal(t, []string{"pause", "resume"}, prod2.calls)
}

func TestStringTransportCountWrites(t *testing.T) {
	tr := transporttest.NewStringTransport(nil)
	tr.Watermarks = transports.Watermarks{High: 8, Low: 2}
	tr.CountWrites = true
	prod := &producer{}
	require.NoError(t, tr.RegisterProducer(prod, true))
	for !slices.Contains(prod.calls, "pause") {
		require.NoError(t, tr.Write([]byte("abc")))
		require.Less(t, tr.Writes(), 10, "producer never paused")
	}
	require.Equal(t, 9, tr.Pending())
	require.Equal(t, 3, tr.Writes())
	tr.Drain(7)
	require.Equal(t, []string{"pause", "resume"}, prod.calls)
}

func TestStringTransportPullProducer(t *testing.T) {
	clk := clock.NewFake()
	tr := transporttest.NewStringTransport(clk)
	tr.CountWrites = true
	chunks := 0
	prod := &pullOnly{}
	prod.onRes = func() {
		if chunks < 3 {
			chunks++
			require.NoError(t, tr.Write([]byte("chunk")))
		}
	}
	require.NoError(t, tr.RegisterProducer(prod, false))
	require.Zero(t, prod.resumes, "never inside RegisterProducer")
	clk.Advance(0)
	require.Equal(t, 1, prod.resumes, "asked for data on the next turn: queue is empty")
	require.Equal(t, 5, tr.Pending())
	tr.Drain(2)
	require.Equal(t, 1, prod.resumes, "not drained yet")
	tr.Drain(3)
	require.Equal(t, 2, prod.resumes)
	tr.SetPending(0)
	tr.SetPending(0)
	require.Equal(t, 4, prod.resumes)
	// The last ResumeProducing wrote nothing: it is not asked again until
	// something it writes has drained (Twisted; stream.Flow).
	tr.SetPending(0)
	require.Equal(t, 4, prod.resumes)
	require.Equal(t, "chunkchunkchunk", tr.String())
	tr.EndConnection(nil)
	require.Equal(t, 1, prod.stops)
}

func TestStringTransportAddrsClockOptions(t *testing.T) {
	clk := clock.NewFake()
	tr := transporttest.NewStringTransport(clk)
	require.Same(t, clk, tr.Clock())
	require.Equal(t, transporttest.DefaultLocalAddr, tr.LocalAddr())
	require.Equal(t, transporttest.DefaultRemoteAddr, tr.RemoteAddr())
	tr.Local = &net.TCPAddr{IP: net.IPv6loopback, Port: 1}
	tr.Remote = &net.TCPAddr{IP: net.IPv6loopback, Port: 2}
	require.Equal(t, "[::1]:1", tr.LocalAddr().String())
	require.Equal(t, "[::1]:2", tr.RemoteAddr().String())

	require.NoError(t, tr.SetNoDelay(true))
	require.True(t, tr.NoDelay())
	require.NoError(t, tr.SetKeepAlive(true, time.Minute))
	on, idle := tr.KeepAlive()
	require.True(t, on)
	require.Equal(t, time.Minute, idle)

	_, ok := transporttest.NewStringTransport(nil).Clock().(*clock.Fake)
	require.True(t, ok, "a nil clock becomes a fresh fake")
}

func TestFeedChunks(t *testing.T) {
	data := []byte("0123456789")
	for size := -1; size <= len(data)+1; size++ {
		p := &recorder{}
		transporttest.FeedChunks(p, data, size)
		require.Equal(t, string(data), string(p.data), "size %d", size)
		want := size
		if size <= 0 || size > len(data) {
			want = len(data)
		}
		for i, c := range p.chunks {
			if i < len(p.chunks)-1 {
				require.Len(t, c, want)
			} else {
				require.LessOrEqual(t, len(c), want)
			}
		}
	}
	p := &recorder{}
	transporttest.FeedChunks(p, nil, 3)
	require.Empty(t, p.chunks)

	// A protocol that keeps the borrowed slice sees it change.
	var kept []byte
	keeper := &recorder{onData: func(b []byte) {
		if kept == nil {
			kept = b
		}
	}}
	transporttest.FeedChunks(keeper, []byte("abcdef"), 3)
	require.NotEqual(t, "abc", string(kept))
}
