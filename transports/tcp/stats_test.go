package tcp_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
)

// TestStatsEcho: the loop's counters follow a real TCP echo: one
// connection, every byte counted in and out, open back to zero after the
// client leaves, completions and waits moving; ExpvarFunc carries them.
func TestStatsEcho(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		before := h.Stats()
		require.Equal(t, kind.String(), before.Backend)
		require.Zero(t, before.ConnsTotal)

		p, err := tcp.Listen(h.Loop, "127.0.0.1:0", echo.Factory{}, tcp.ListenOptions{})
		require.NoError(t, err)
		defer h.Do(func() { _ = p.Close() })

		c, err := net.Dial("tcp", p.Addr().String())
		require.NoError(t, err)
		const rounds, size = 10, 1000
		msg := make([]byte, size)
		got := make([]byte, size)
		for i := 0; i < rounds; i++ {
			_, err := c.Write(msg)
			require.NoError(t, err)
			_, err = io.ReadFull(c, got)
			require.NoError(t, err)
		}
		require.True(t, reactortest.WaitUntil(5*time.Second, func() bool {
			s := h.Stats()
			return s.ConnsOpen == 1 && s.BytesOut == rounds*size
		}), "%+v", h.Stats())
		mid := h.Stats()
		require.EqualValues(t, 1, mid.ConnsTotal)
		require.EqualValues(t, rounds*size, mid.BytesIn)
		require.GreaterOrEqual(t, mid.OpsInFlight, int64(2)) // the accept and the recv
		require.NoError(t, c.Close())

		require.True(t, reactortest.WaitUntil(5*time.Second, func() bool { return h.Stats().ConnsOpen == 0 }), "%+v", h.Stats())
		s := h.Stats()
		require.EqualValues(t, 1, s.ConnsTotal)
		require.EqualValues(t, rounds*size, s.BytesIn)
		require.EqualValues(t, rounds*size, s.BytesOut)
		require.Greater(t, s.Completions, uint64(2*rounds)) // a recv and a send per round at least
		require.GreaterOrEqual(t, s.MaxBatch, uint64(1))
		require.Greater(t, s.Waits+s.Polls, before.Waits+before.Polls)
		require.Greater(t, s.Turns, before.Turns)
		require.Zero(t, s.Panics)
		require.Zero(t, s.CQOverflow)
		require.Zero(t, s.Fallback)

		// The expvar function reports the same counters as JSON.
		raw := reactor.ExpvarFunc(h.Loop).String()
		var doc struct {
			Total reactor.Stats
			Loops []reactor.Stats
		}
		require.NoError(t, json.Unmarshal([]byte(raw), &doc), raw)
		require.Len(t, doc.Loops, 1)
		require.EqualValues(t, 1, doc.Total.ConnsTotal)
		require.EqualValues(t, rounds*size, doc.Total.BytesIn)
		require.EqualValues(t, rounds*size, doc.Loops[0].BytesOut)
		require.Contains(t, raw, `"BufferExhaustions":`)
		require.Contains(t, raw, `"CQOverflow":`)
	})
}

// panicker panics in DataReceived.
type panicker struct{}

func (panicker) ConnectionMade(transports.Transport) {}
func (panicker) ConnectionLost(error)                {}

func (panicker) DataReceived([]byte) { panic(errors.New("boom")) }

// TestStatsPanics: a protocol panic is counted (and reported), the
// connection is counted closed.
func TestStatsPanics(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		var reported []error
		h := reactortest.Start(t, kind, reactor.Config{OnError: func(err error) { reported = append(reported, err) }})
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol { return &panicker{} })
		p, err := tcp.Listen(h.Loop, "127.0.0.1:0", f, tcp.ListenOptions{})
		require.NoError(t, err)
		defer h.Do(func() { _ = p.Close() })
		c, err := net.Dial("tcp", p.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write([]byte("x"))
		require.NoError(t, err)
		require.True(t, reactortest.WaitUntil(5*time.Second, func() bool {
			s := h.Stats()
			return s.Panics == 1 && s.ConnsTotal == 1 && s.ConnsOpen == 0
		}), "%+v", h.Stats())
		h.Do(func() { require.Len(t, reported, 1) })
	})
}

// slowProto holds the received buffer for a while, so that more data finds
// the pool empty.
type slowProto struct{}

func (slowProto) ConnectionMade(transports.Transport) {}
func (slowProto) ConnectionLost(error)                {}

func (slowProto) DataReceived([]byte) { time.Sleep(2 * time.Millisecond) }

// TestStatsBufferExhaustion: with a one-buffer pool and two busy
// connections, reads find the pool empty and are re-armed; each is counted,
// and no byte is lost.
func TestStatsBufferExhaustion(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind, reactor.Config{Sizes: backend.Config{BufferCount: 1, BufferSize: 256}})
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol { return &slowProto{} })
		p, err := tcp.Listen(h.Loop, "127.0.0.1:0", f, tcp.ListenOptions{})
		require.NoError(t, err)
		defer h.Do(func() { _ = p.Close() })
		var conns []net.Conn
		for i := 0; i < 2; i++ {
			c, err := net.Dial("tcp", p.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			conns = append(conns, c)
		}
		msg := make([]byte, 100)
		sent := 0
		deadline := time.Now().Add(5 * time.Second)
		for i := 0; i < 2000 && time.Now().Before(deadline) && h.Stats().BufferExhaustions == 0; i++ {
			for _, c := range conns {
				_, err := c.Write(msg)
				require.NoError(t, err)
				sent += len(msg)
			}
			time.Sleep(500 * time.Microsecond)
		}
		require.NotZero(t, h.Stats().BufferExhaustions)
		require.True(t, reactortest.WaitUntil(10*time.Second, func() bool { return h.Stats().BytesIn == uint64(sent) }),
			"sent %d, %+v", sent, h.Stats())
	})
}
