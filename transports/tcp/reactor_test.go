package tcp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/internal/streamsuite"
	"github.com/gyre-io/gyre/transports/stream"
	"github.com/gyre-io/gyre/transports/tcp"
)

// The real reactor reaches tcp through the "tcp" network: options are
// ListenOptions/ConnectOptions (value or pointer) or nil, anything else is
// ErrBadOptions; unix is not linked in yet.
func TestReactorTCPOptions(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var r transports.Reactor = stream.Reactor(h.Loop)
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol { return &streamsuite.Recorder{Echo: true} })
		for _, opts := range []any{nil, tcp.ListenOptions{Backlog: 8}, &tcp.ListenOptions{}, (*tcp.ListenOptions)(nil)} {
			p, err := r.ListenTCP("127.0.0.1:0", f, opts)
			require.NoError(t, err, "%T", opts)
			_, ok := p.(*tcp.Port)
			require.True(t, ok)
			h.Do(func() { require.NoError(t, p.Close()) })
		}
		_, err := r.ListenTCP("127.0.0.1:0", f, tcp.ConnectOptions{})
		require.ErrorIs(t, err, transports.ErrBadOptions)
		_, err = r.ConnectTCP("127.0.0.1:1", transports.ClientFactoryFunc(nil), tcp.ListenOptions{})
		require.ErrorIs(t, err, transports.ErrBadOptions)
		_, err = r.ListenTCP("no port", f, nil)
		require.ErrorIs(t, err, tcp.ErrBadAddress)
		var c transports.Connector
		c, err = r.ConnectTCP("no port", transports.ClientFactoryFunc(nil), nil)
		require.ErrorIs(t, err, tcp.ErrBadAddress)
		require.Nil(t, c, "an untyped nil on error")
		_, err = r.ListenUNIX("/tmp/gyre-x.sock", f, nil)
		require.ErrorIs(t, err, transports.ErrUnsupportedNetwork)
	})
}

// connectOnLoop runs ConnectProtocol on the loop and returns a channel
// that gets done's arguments.
type result struct {
	t      transports.Transport
	err    error
	onLoop bool
}

func connectOnLoop(t *testing.T, h *reactortest.Loop, ctx context.Context, addr string, p transports.Protocol, opts any) (<-chan result, transports.Connector) {
	t.Helper()
	ch := make(chan result, 2)
	var c transports.Connector
	h.Do(func() {
		var err error
		var loopDone bool
		c, err = transports.ConnectProtocol(ctx, stream.Reactor(h.Loop), "tcp", addr, p, opts, func(tr transports.Transport, err error) {
			ch <- result{tr, err, loopDone}
		})
		require.NoError(t, err)
		loopDone = true // done never runs inside ConnectProtocol
	})
	return ch, c
}

func TestConnectProtocolTCP(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		port, _ := streamsuite.Serve(t, &tcpKind, h, func() *streamsuite.Recorder { return &streamsuite.Recorder{Echo: true} })

		// Success: done after ConnectionMade, on the loop; the protocol
		// then owns the connection.
		cl := &streamsuite.Recorder{}
		ch, c := connectOnLoop(t, h, context.Background(), port.Addr().String(), cl, tcp.ConnectOptions{Timeout: 5 * time.Second})
		res := <-ch
		require.NoError(t, res.err)
		require.True(t, res.onLoop)
		h.Do(func() {
			require.Equal(t, 1, cl.Made)
			require.Same(t, cl.T, res.t)
			require.Equal(t, port.Addr().String(), c.Destination().String())
			require.NoError(t, res.t.Write([]byte("ping")))
		})
		require.True(t, h.Eventually(5*time.Second, func() bool { return cl.Data.String() == "ping" }))
		h.Do(func() { require.NoError(t, res.t.LoseConnection()) })
		require.True(t, h.Eventually(5*time.Second, func() bool { return cl.Lost == 1 }))

		// Refused: a port nobody listens on.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		dead := ln.Addr().String()
		require.NoError(t, ln.Close())
		p := &streamsuite.Recorder{}
		ch, _ = connectOnLoop(t, h, context.Background(), dead, p, nil)
		res = <-ch
		require.ErrorIs(t, res.err, syscall.ECONNREFUSED)
		require.Nil(t, res.t)
		h.Do(func() { require.Zero(t, p.Made) })
	})
}

// Cancelling races the connection: whichever wins, done is called once, p
// is called only on success, and no descriptor is left behind.
func TestConnectProtocolTCPCancel(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		port, built := streamsuite.Serve(t, &tcpKind, h, func() *streamsuite.Recorder { return &streamsuite.Recorder{} })
		fds := reactortest.FDCount()
		const n = 20
		var wins, cancels int
		for range n {
			ctx, cancel := context.WithCancel(context.Background())
			p := &streamsuite.Recorder{}
			ch := make(chan result, 2)
			h.Do(func() {
				_, err := transports.ConnectProtocol(ctx, stream.Reactor(h.Loop), "tcp", port.Addr().String(), p, nil,
					func(tr transports.Transport, err error) { ch <- result{t: tr, err: err} })
				require.NoError(t, err)
				cancel() // the hop to the loop races the attempt
			})
			res := <-ch
			if res.err == nil {
				wins++
				h.Do(func() {
					require.Equal(t, 1, p.Made)
					require.NoError(t, res.t.Abort())
				})
				require.True(t, h.Eventually(5*time.Second, func() bool { return p.Lost == 1 }))
			} else {
				cancels++
				require.ErrorIs(t, res.err, context.Canceled)
				h.Do(func() { require.Zero(t, p.Made) })
			}
			select {
			case r := <-ch:
				t.Fatalf("done called twice: %v", r.err)
			default:
			}
		}
		t.Logf("%d connected first, %d cancelled first", wins, cancels)
		// Every server-side connection ends too (refused or aborted ones).
		require.True(t, h.Eventually(5*time.Second, func() bool {
			for _, r := range built() {
				if r.Lost != 1 {
					return false
				}
			}
			return true
		}))
		require.Eventually(t, func() bool { return reactortest.FDCount() <= fds }, 5*time.Second, 10*time.Millisecond,
			"descriptors: %d before, %d after", fds, reactortest.FDCount())

		// Cancelled before it starts: nothing is started.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		h.Do(func() {
			_, err := transports.ConnectProtocol(ctx, stream.Reactor(h.Loop), "tcp", port.Addr().String(), &streamsuite.Recorder{}, nil,
				func(transports.Transport, error) { t.Error("done called") })
			require.ErrorIs(t, err, context.Canceled)
		})
	})
}

// --- a proxy: two RegisterProducer calls, no adapter ---

// selfEcho echoes and is its own transport's producer: above the high
// watermark it stops reading.
type selfEcho struct{ t transports.Transport }

func (e *selfEcho) ConnectionMade(t transports.Transport) {
	e.t = t
	_ = t.RegisterProducer(t.(transports.PushProducer), true)
}
func (e *selfEcho) DataReceived(p []byte) { _ = e.t.Write(p) }
func (e *selfEcho) ConnectionLost(error)  {}

// proxyFront is the proxy's accepted connection; back is its connection to
// the echo server. overruns counts bytes that arrived for a side whose peer
// was above its high watermark (flow control should have paused it).
type proxyFront struct {
	t        transports.Transport
	back     *proxyBack
	dest     string
	wm       transports.Watermarks
	overruns *int
	done     chan struct{}
	lost     bool
}

type proxyBack struct {
	t     transports.Transport
	front *proxyFront
}

type buffered interface{ Buffered() int }

func (f *proxyFront) ConnectionMade(t transports.Transport) {
	f.t = t
	t.PauseReading() // until the back connection is up
	f.back = &proxyBack{front: f}
	_, err := transports.ConnectProtocol(context.Background(), t.Reactor(), "tcp", f.dest, f.back,
		tcp.ConnectOptions{Watermarks: f.wm, Timeout: 5 * time.Second},
		func(bt transports.Transport, err error) {
			if err != nil {
				_ = t.Abort()
				return
			}
			// The whole proxy: each transport produces for the other.
			_ = bt.RegisterProducer(t.(transports.PushProducer), true)
			_ = t.RegisterProducer(bt.(transports.PushProducer), true)
			t.ResumeReading()
		})
	if err != nil {
		_ = t.Abort()
	}
}

func (f *proxyFront) DataReceived(p []byte) {
	if f.back.t.(buffered).Buffered() > f.wm.High {
		*f.overruns += len(p)
	}
	_ = f.back.t.Write(p)
}

func (f *proxyFront) ConnectionLost(error) {
	f.lost = true
	if f.back.t != nil {
		_ = f.back.t.LoseConnection()
	}
	close(f.done)
}

func (b *proxyBack) ConnectionMade(t transports.Transport) { b.t = t }
func (b *proxyBack) DataReceived(p []byte) {
	if b.front.t.(buffered).Buffered() > b.front.wm.High {
		*b.front.overruns += len(p)
	}
	_ = b.front.t.Write(p)
}
func (b *proxyBack) ConnectionLost(error) { _ = b.front.t.LoseConnection() }

func TestProxyTransportsAsProducers(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		wm := transports.Watermarks{High: 8 << 10, Low: 2 << 10}
		r := stream.Reactor(h.Loop)
		echoPort, err := r.ListenTCP("127.0.0.1:0", transports.FactoryFunc(func(net.Addr) transports.Protocol { return &selfEcho{} }),
			tcp.ListenOptions{Watermarks: wm})
		require.NoError(t, err)
		t.Cleanup(func() { h.Do(func() { _ = echoPort.Close() }) })

		overruns := 0
		var mu sync.Mutex
		var fronts []*proxyFront
		proxyPort, err := r.ListenTCP("127.0.0.1:0", transports.FactoryFunc(func(net.Addr) transports.Protocol {
			f := &proxyFront{dest: echoPort.Addr().String(), wm: wm, overruns: &overruns, done: make(chan struct{})}
			mu.Lock()
			fronts = append(fronts, f)
			mu.Unlock()
			return f
		}), &tcp.ListenOptions{Watermarks: wm})
		require.NoError(t, err)
		t.Cleanup(func() { h.Do(func() { _ = proxyPort.Close() }) })

		c, err := net.DialTimeout("tcp", proxyPort.Addr().String(), 5*time.Second)
		require.NoError(t, err)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		msg := make([]byte, 4<<20)
		_, _ = rand.Read(msg)
		go func() { _, _ = c.Write(msg) }()
		got := make([]byte, len(msg))
		_, err = io.ReadFull(c, got)
		require.NoError(t, err)
		require.True(t, bytes.Equal(msg, got), "the bytes came back intact through the proxy")
		require.NoError(t, c.Close())

		mu.Lock()
		require.Len(t, fronts, 1)
		f := fronts[0]
		mu.Unlock()
		select {
		case <-f.done:
		case <-time.After(10 * time.Second):
			t.Fatal("proxy connection did not end")
		}
		h.Do(func() {
			require.Zero(t, overruns, "no bytes read for a side above its high watermark")
			nr, ok := f.t.Reactor().(stream.NetReactor)
			require.True(t, ok)
			require.Same(t, h.Loop, nr.Loop(), "a connection's reactor is its loop's")
		})
		require.True(t, h.Eventually(5*time.Second, func() bool {
			return f.back.t.(interface{ Disconnecting() bool }).Disconnecting()
		}))
	})
}
