package transporttest_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// halfCloser records the half-close callbacks too.
type halfCloser struct {
	recorder
	readLost, writeLost int
}

func (h *halfCloser) ReadConnectionLost()  { h.readLost++ }
func (h *halfCloser) WriteConnectionLost() { h.writeLost++ }

func TestPairDeliversOnlyWhenPumped(t *testing.T) {
	client, server := &recorder{}, &echo{}
	p := transporttest.NewPair(client, server, nil)
	require.Equal(t, 1, client.made)
	require.Equal(t, 1, server.made)
	require.Same(t, p.Client, client.tr)
	require.Same(t, p.Server, server.tr)
	require.Equal(t, transporttest.PairClientAddr, p.Client.LocalAddr())
	require.Equal(t, transporttest.PairServerAddr, p.Client.RemoteAddr())
	require.Equal(t, transporttest.PairServerAddr, p.Server.LocalAddr())
	require.Equal(t, transporttest.PairClientAddr, p.Server.RemoteAddr())

	buf := []byte("hello")
	require.NoError(t, p.Client.Write(buf))
	buf[0] = 'X'
	require.NoError(t, p.Client.WriteBuffers([][]byte{[]byte(" "), []byte("world")}))
	require.Equal(t, 11, p.Client.Queued())
	require.Empty(t, server.data, "nothing moves without a pump")

	require.True(t, p.Pump())
	require.Equal(t, "hello world", string(server.data))
	require.Len(t, server.chunks, 1, "one turn's bytes leave together")
	require.Equal(t, "hello world", string(client.data), "the echo came back in the same round")
	require.False(t, p.Pump(), "quiet")
	require.NoError(t, p.Flush())
}

func TestPairChunkedDelivery(t *testing.T) {
	client, server := &recorder{}, &recorder{}
	p := transporttest.NewPair(client, server, nil)
	p.Chunk = 3
	require.NoError(t, p.Client.Write([]byte("abcdefgh")))
	require.NoError(t, p.Flush())
	require.Equal(t, []string{"abc", "def", "gh"}, toStrings(server.chunks))
}

func toStrings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

func TestPairLoseConnection(t *testing.T) {
	client, server := &recorder{}, &recorder{}
	p := transporttest.NewPair(client, server, nil)
	require.NoError(t, p.Server.Write([]byte("bye")))
	require.NoError(t, p.Server.LoseConnection())
	require.NoError(t, p.Server.LoseConnection())
	require.ErrorIs(t, p.Server.Write([]byte("x")), transports.ErrClosed)
	require.Empty(t, client.lost, "nothing inside LoseConnection")
	require.NoError(t, p.Flush())
	require.Equal(t, "bye", string(client.data), "queue flushed before the close")
	require.Len(t, client.lost, 1)
	require.Len(t, server.lost, 1)
	require.ErrorIs(t, client.lost[0], transports.ErrConnectionDone)
	require.ErrorIs(t, server.lost[0], transports.ErrConnectionDone)
	ended, reason := p.Client.Ended()
	require.True(t, ended)
	require.ErrorIs(t, reason, transports.ErrConnectionDone)
	require.ErrorIs(t, p.Client.Write([]byte("x")), transports.ErrClosed)
	require.ErrorIs(t, p.Client.RegisterProducer(&producer{}, true), transports.ErrClosed)
	require.False(t, p.Pump())
}

func TestPairAbort(t *testing.T) {
	client, server := &recorder{}, &recorder{}
	p := transporttest.NewPair(client, server, nil)
	require.NoError(t, p.Client.Write([]byte("dropped")))
	require.NoError(t, p.Client.Abort())
	require.NoError(t, p.Client.Abort())
	require.True(t, p.Client.Aborted())
	require.Empty(t, client.lost, "ConnectionLost never inside Abort")
	require.NoError(t, p.Flush())
	require.Empty(t, server.data, "the queue was dropped")
	require.Len(t, client.lost, 1)
	require.Len(t, server.lost, 1)
	require.ErrorIs(t, client.lost[0], transports.ErrConnectionLost)
	require.ErrorIs(t, client.lost[0], transports.ErrAborted)
	require.ErrorIs(t, server.lost[0], transports.ErrConnectionLost)
	require.ErrorIs(t, server.lost[0], syscall.ECONNRESET)
}

func TestPairCloseWriteHalfCloseable(t *testing.T) {
	client, server := &halfCloser{}, &halfCloser{}
	p := transporttest.NewPair(client, server, nil)
	require.NoError(t, p.Client.Write([]byte("request")))
	require.NoError(t, p.Client.CloseWrite())
	require.True(t, p.Client.WriteClosed())
	require.ErrorIs(t, p.Client.Write([]byte("x")), transports.ErrClosed)
	require.NoError(t, p.Flush())
	require.Equal(t, "request", string(server.data))
	require.Equal(t, 1, server.readLost)
	require.Equal(t, 1, client.writeLost)
	require.Empty(t, server.lost, "still open for the reply")

	require.NoError(t, p.Server.Write([]byte("reply")))
	require.NoError(t, p.Flush())
	require.Equal(t, "reply", string(client.data), "the half-closed side keeps reading")
	require.NoError(t, p.Server.CloseWrite())
	require.NoError(t, p.Flush())
	require.Len(t, client.lost, 1, "both directions shut: closed")
	require.Len(t, server.lost, 1)
	require.ErrorIs(t, client.lost[0], transports.ErrConnectionDone)
}

func TestPairCloseWriteToPlainProtocolCloses(t *testing.T) {
	client, server := &halfCloser{}, &recorder{}
	p := transporttest.NewPair(client, server, nil)
	require.NoError(t, p.Client.CloseWrite())
	require.NoError(t, p.Flush())
	require.Len(t, server.lost, 1)
	require.Len(t, client.lost, 1)
	require.ErrorIs(t, server.lost[0], transports.ErrConnectionDone)
}

func TestPairPauseReading(t *testing.T) {
	client, server := &recorder{}, &recorder{}
	p := transporttest.NewPair(client, server, nil)
	p.Server.PauseReading()
	require.True(t, p.Server.ReadingPaused())
	require.NoError(t, p.Client.Write([]byte("held")))
	require.NoError(t, p.Client.LoseConnection())
	require.NoError(t, p.Flush())
	require.Empty(t, server.data)
	require.Empty(t, server.lost, "close waits behind the undelivered bytes")
	require.Equal(t, 4, p.Client.Queued())
	p.Server.ResumeReading()
	require.NoError(t, p.Flush())
	require.Equal(t, "held", string(server.data))
	require.Len(t, server.lost, 1)
}

func TestPairPauseFromInsideDataReceived(t *testing.T) {
	client := &recorder{}
	server := &recorder{}
	p := transporttest.NewPair(client, server, nil)
	p.Chunk = 2
	server.onData = func([]byte) { server.tr.PauseReading() }
	require.NoError(t, p.Client.Write([]byte("abcdef")))
	require.NoError(t, p.Flush())
	require.Equal(t, "ab", string(server.data), "pause takes effect between chunks")
	p.Server.ResumeReading()
	p.Pump()
	require.Equal(t, "abcd", string(server.data))
}

func TestPairStreamingProducer(t *testing.T) {
	client, server := &recorder{}, &recorder{}
	p := transporttest.NewPair(client, server, nil)
	p.Client.Watermarks = transports.Watermarks{High: 10, Low: 4}
	prod := &producer{}
	require.NoError(t, p.Client.RegisterProducer(prod, true))
	require.ErrorIs(t, p.Client.RegisterProducer(prod, true), transports.ErrProducerRegistered)
	require.NoError(t, p.Client.Write([]byte("0123456789")))
	require.Empty(t, prod.calls)
	require.NoError(t, p.Client.Write([]byte("a")))
	require.Equal(t, []string{"pause"}, prod.calls)
	require.True(t, p.Client.ProducerPaused())
	p.Server.PauseReading()
	p.Pump()
	require.Equal(t, []string{"pause"}, prod.calls, "nothing delivered, still paused")
	p.Server.ResumeReading()
	p.Pump()
	require.Equal(t, []string{"pause", "resume"}, prod.calls)
	require.False(t, p.Client.ProducerPaused())

	require.NoError(t, p.Client.Abort())
	p.Pump()
	require.Equal(t, []string{"pause", "resume", "stop"}, prod.calls, "stopped when the connection ends")
}

func TestPairPullProducer(t *testing.T) {
	clk := clock.NewFake()
	client, server := &recorder{}, &recorder{}
	p := transporttest.NewPair(client, server, clk)
	require.Same(t, clk, p.Clock())
	require.Same(t, clk, p.Client.Clock())
	n := 0
	prod := &pullOnly{}
	prod.onRes = func() {
		n++
		if n <= 3 {
			require.NoError(t, p.Client.Write([]byte{'0' + byte(n)}))
		} else {
			p.Client.UnregisterProducer()
			require.NoError(t, p.Client.LoseConnection())
		}
	}
	require.NoError(t, p.Client.RegisterProducer(prod, false))
	require.Zero(t, prod.resumes, "first chunk asked on a later turn")
	require.NoError(t, p.Flush())
	require.Equal(t, "123", string(server.data))
	require.Equal(t, 4, prod.resumes)
	require.Len(t, server.lost, 1)
	require.Zero(t, prod.stops, "unregistered before the close")
}

func TestPairRunsFakeClockTurns(t *testing.T) {
	clk := clock.NewFake()
	client, server := &recorder{}, &recorder{}
	p := transporttest.NewPair(client, server, clk)
	// A write scheduled for the next turn (like a coalescing protocol).
	clk.CallLater(0, func() { _ = p.Client.Write([]byte("later")) })
	require.NoError(t, p.Flush())
	require.Equal(t, "later", string(server.data))

	// Timed calls run only when the test advances the clock.
	clk.CallLater(time.Second, func() { _ = p.Client.Write([]byte("!")) })
	require.NoError(t, p.Flush())
	require.Equal(t, "later", string(server.data))
	clk.Advance(time.Second)
	require.NoError(t, p.Flush())
	require.Equal(t, "later!", string(server.data))
}

// pingPong answers every byte with a byte: a pair that never goes quiet.
type pingPong struct{ recorder }

func (pp *pingPong) DataReceived(p []byte) { _ = pp.tr.Write(p) }

func TestPairFlushLimit(t *testing.T) {
	client, server := &pingPong{}, &pingPong{}
	p := transporttest.NewPair(client, server, nil)
	p.MaxRounds = 50
	require.NoError(t, p.Client.Write([]byte("x")))
	require.ErrorIs(t, p.Flush(), transporttest.ErrPumpLimit)
}

func TestPairTCPOptions(t *testing.T) {
	p := transporttest.NewPair(&recorder{}, &recorder{}, nil)
	require.NoError(t, p.Client.SetNoDelay(true))
	require.True(t, p.Client.NoDelay())
	require.NoError(t, p.Client.SetKeepAlive(true, 30*time.Second))
	on, idle := p.Client.KeepAlive()
	require.True(t, on)
	require.Equal(t, 30*time.Second, idle)
	require.NoError(t, p.Client.Abort())
	p.Pump()
	require.ErrorIs(t, p.Client.SetNoDelay(false), transports.ErrClosed)
	require.ErrorIs(t, p.Client.SetKeepAlive(false, 0), transports.ErrClosed)
	require.ErrorIs(t, p.Client.CloseWrite(), transports.ErrClosed)
	var proto transports.Protocol = p.Client.Protocol()
	require.NotNil(t, proto)
}
