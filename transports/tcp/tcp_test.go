package tcp_test

import (
	"bytes"
	"crypto/rand"
	"errors"
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
	"github.com/gyre-io/gyre/transports/tcp"
)

// recorder is a Protocol that records what happens to it. Loop goroutine only.
type recorder struct {
	t      transports.Transport
	data   bytes.Buffer
	made   int
	lost   int
	reason error
	echo   bool
	onMade func(r *recorder)
	onData func(r *recorder, p []byte)
	onLost func(r *recorder)
}

func (r *recorder) ConnectionMade(t transports.Transport) {
	r.t = t
	r.made++
	if r.onMade != nil {
		r.onMade(r)
	}
}

func (r *recorder) DataReceived(p []byte) {
	if r.echo {
		_ = r.t.Write(p)
	}
	r.data.Write(p)
	if r.onData != nil {
		r.onData(r, p)
	}
}

func (r *recorder) ConnectionLost(reason error) {
	r.lost++
	r.reason = reason
	if r.onLost != nil {
		r.onLost(r)
	}
}

// server listens on 127.0.0.1:0 with protocols from mk; it returns the port
// and a function listing the protocols built so far.
func server(t *testing.T, h *reactortest.Loop, mk func() *recorder) (*tcp.Port, func() []*recorder) {
	t.Helper()
	var mu sync.Mutex
	var built []*recorder
	f := transports.FactoryFunc(func(net.Addr) transports.Protocol {
		r := mk()
		mu.Lock()
		built = append(built, r)
		mu.Unlock()
		return r
	})
	p, err := tcp.Listen(h.Loop, "127.0.0.1:0", f, tcp.ListenOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		h.Do(func() { _ = p.Close() })
	})
	return p, func() []*recorder {
		mu.Lock()
		defer mu.Unlock()
		return append([]*recorder(nil), built...)
	}
}

func dial(t *testing.T, p *tcp.Port) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr().String(), 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

func TestEchoChunked(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		p, _ := server(t, h, func() *recorder { return &recorder{echo: true} })
		c := dial(t, p)
		msg := make([]byte, 4096)
		_, _ = rand.Read(msg)
		for _, size := range []int{1, 2, 3, 7, 64, 100, 1000, 4096} {
			go func() {
				for off := 0; off < len(msg); off += size {
					_, _ = c.Write(msg[off:min(off+size, len(msg))])
				}
			}()
			got := make([]byte, len(msg))
			_, err := io.ReadFull(c, got)
			require.NoError(t, err, "size %d", size)
			require.Equal(t, msg, got, "size %d", size)
		}
	})
}

func TestLargeWrite(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		big := make([]byte, 64<<20)
		_, _ = rand.Read(big[:1<<20])
		for i := 1 << 20; i < len(big); i += 1 << 20 {
			copy(big[i:], big[:1<<20])
		}
		p, built := server(t, h, func() *recorder {
			return &recorder{onMade: func(r *recorder) {
				require.NoError(t, r.t.Write(big))
				require.NoError(t, r.t.LoseConnection())
			}}
		})
		c := dial(t, p)
		got, err := io.ReadAll(c)
		require.NoError(t, err)
		require.Equal(t, len(big), len(got))
		require.True(t, bytes.Equal(big, got))
		require.True(t, h.Eventually(5*time.Second, func() bool { return built()[0].lost == 1 }))
		h.Do(func() {
			require.ErrorIs(t, built()[0].reason, transports.ErrConnectionDone)
			require.ErrorIs(t, built()[0].reason, io.EOF)
		})
	})
}

func TestWritesFromOtherGoroutinesKeepOrder(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		ready := make(chan transports.Transport, 1)
		p, _ := server(t, h, func() *recorder {
			return &recorder{onMade: func(r *recorder) { ready <- r.t }}
		})
		c := dial(t, p)
		tr := <-ready
		const n = 5000
		go func() {
			for i := 0; i < n; i++ {
				b := []byte{byte(i), byte(i >> 8)}
				_ = h.Call(func() { _ = tr.Write(b) })
			}
		}()
		got := make([]byte, 2*n)
		_, err := io.ReadFull(c, got)
		require.NoError(t, err)
		for i := 0; i < n; i++ {
			require.Equal(t, []byte{byte(i), byte(i >> 8)}, got[2*i:2*i+2], "message %d", i)
		}
	})
}

func TestHalfCloseFromPeer(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		p, built := server(t, h, func() *recorder { return &recorder{echo: true} })
		c := dial(t, p)
		_, err := c.Write([]byte("hello"))
		require.NoError(t, err)
		require.NoError(t, c.CloseWrite())
		got, err := io.ReadAll(c)
		require.NoError(t, err)
		require.Equal(t, "hello", string(got))
		require.True(t, h.Eventually(5*time.Second, func() bool { return len(built()) == 1 && built()[0].lost == 1 }))
		h.Do(func() { require.ErrorIs(t, built()[0].reason, transports.ErrConnectionDone) })
	})
}

type halfRecorder struct {
	recorder
	readLost, writeLost int
}

func (h *halfRecorder) ReadConnectionLost() {
	h.readLost++
	_ = h.t.Write([]byte("bye"))
	_ = h.t.CloseWrite()
}
func (h *halfRecorder) WriteConnectionLost() { h.writeLost++ }

func TestHalfCloseableProtocol(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var hr *halfRecorder
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol { hr = &halfRecorder{}; return hr })
		p, err := tcp.Listen(h.Loop, "127.0.0.1:0", f, tcp.ListenOptions{})
		require.NoError(t, err)
		c := dial(t, p)
		_, _ = c.Write([]byte("x"))
		require.NoError(t, c.CloseWrite())
		got, err := io.ReadAll(c)
		require.NoError(t, err)
		require.Equal(t, "bye", string(got))
		require.True(t, h.Eventually(5*time.Second, func() bool { return hr.lost == 1 }))
		h.Do(func() {
			require.Equal(t, 1, hr.readLost)
			require.Equal(t, 1, hr.writeLost)
			require.Equal(t, "x", hr.data.String())
			require.ErrorIs(t, hr.reason, transports.ErrConnectionDone)
			_ = p.Close()
		})
	})
}

func TestAbortAndLoseConnection(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var insideAbort bool
		p, built := server(t, h, func() *recorder {
			r := &recorder{}
			r.onData = func(r *recorder, _ []byte) {
				_ = r.t.Write([]byte("dropped"))
				insideAbort = true
				require.NoError(t, r.t.Abort())
				require.NoError(t, r.t.Abort())
				require.NoError(t, r.t.LoseConnection())
				insideAbort = false
				require.ErrorIs(t, r.t.Write([]byte("x")), transports.ErrClosed)
			}
			r.onLost = func(*recorder) { require.False(t, insideAbort, "ConnectionLost inside Abort") }
			return r
		})
		c := dial(t, p)
		_, _ = c.Write([]byte("go"))
		_, err := io.ReadAll(c)
		require.True(t, err == nil || errors.Is(err, syscall.ECONNRESET), "got %v", err)
		require.True(t, h.Eventually(5*time.Second, func() bool { return len(built()) == 1 && built()[0].lost == 1 }))
		h.Do(func() {
			r := built()[0]
			require.ErrorIs(t, r.reason, transports.ErrConnectionLost)
			require.ErrorIs(t, r.reason, transports.ErrAborted)
		})
	})
}

func TestPeerResetMidWrite(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		chunk := make([]byte, 1<<20)
		p, built := server(t, h, func() *recorder {
			r := &recorder{}
			var pump func()
			pump = func() {
				if r.lost > 0 {
					return
				}
				_ = r.t.Write(chunk)
				r.t.Clock().CallLater(time.Millisecond, pump)
			}
			r.onMade = func(*recorder) { pump() }
			return r
		})
		c := dial(t, p)
		buf := make([]byte, 1000)
		_, err := io.ReadFull(c, buf)
		require.NoError(t, err)
		require.NoError(t, c.SetLinger(0))
		require.NoError(t, c.Close())
		require.True(t, h.Eventually(10*time.Second, func() bool { return len(built()) == 1 && built()[0].lost == 1 }))
		h.Do(func() {
			r := built()[0]
			require.ErrorIs(t, r.reason, transports.ErrConnectionLost)
			require.True(t, errors.Is(r.reason, syscall.ECONNRESET) || errors.Is(r.reason, syscall.EPIPE), "reason %v", r.reason)
		})
	})
}

func TestConnectRefusedAndEcho(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		// Find a closed port.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close())

		cf := newClientFactory()
		_, err = tcp.Connect(h.Loop, addr, cf, tcp.ConnectOptions{})
		require.NoError(t, err)
		select {
		case err := <-cf.failed:
			require.ErrorIs(t, err, syscall.ECONNREFUSED)
		case <-time.After(5 * time.Second):
			t.Fatal("connect refused not reported")
		}

		p, _ := server(t, h, func() *recorder { return &recorder{echo: true} })
		cf = newClientFactory()
		cf.onMade = func(r *recorder) { _ = r.t.Write([]byte("ping")) }
		cf.onData = func(r *recorder, _ []byte) {
			if r.data.Len() >= 4 {
				_ = r.t.LoseConnection()
			}
		}
		_, err = tcp.Connect(h.Loop, p.Addr().String(), cf, tcp.ConnectOptions{})
		require.NoError(t, err)
		select {
		case err := <-cf.lostCh:
			require.ErrorIs(t, err, transports.ErrConnectionDone)
		case <-time.After(5 * time.Second):
			t.Fatal("client connection not lost")
		}
		h.Do(func() { require.Equal(t, "ping", cf.proto.data.String()) })
	})
}

type clientFactory struct {
	failed  chan error
	lostCh  chan error
	started int
	proto   *recorder
	onMade  func(r *recorder)
	onData  func(r *recorder, p []byte)
}

func newClientFactory() *clientFactory {
	return &clientFactory{failed: make(chan error, 1), lostCh: make(chan error, 1)}
}

func (f *clientFactory) BuildProtocol(net.Addr) transports.Protocol {
	f.proto = &recorder{onMade: f.onMade, onData: f.onData}
	return f.proto
}
func (f *clientFactory) StartedConnecting(transports.Connector) { f.started++ }
func (f *clientFactory) ClientConnectionFailed(_ transports.Connector, err error) {
	f.failed <- err
}
func (f *clientFactory) ClientConnectionLost(_ transports.Connector, err error) { f.lostCh <- err }

func TestStopConnecting(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		cf := newClientFactory()
		var conn *tcp.Connector
		h.Do(func() {
			var err error
			// A non-routable address in TEST-NET: the SYN goes nowhere... but
			// traffic must stay on loopback, so stop before the loop turns.
			conn, err = tcp.Connect(h.Loop, "127.0.0.1:1", cf, tcp.ConnectOptions{})
			require.NoError(t, err)
		})
		h.Do(func() { _ = conn.StopConnecting() })
		select {
		case err := <-cf.failed:
			require.True(t, errors.Is(err, transports.ErrConnectStopped) || errors.Is(err, syscall.ECONNREFUSED), "got %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("no failure after StopConnecting")
		}
	})
}

func TestPortCloseAndRebind(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol { return &recorder{echo: true} })
		p, err := tcp.Listen(h.Loop, "127.0.0.1:0", f, tcp.ListenOptions{})
		require.NoError(t, err)
		addr := p.Addr().String()
		for i := 0; i < 5; i++ {
			h.Do(func() { require.NoError(t, p.Close()); require.ErrorIs(t, p.Close(), transports.ErrClosed) })
			p, err = tcp.Listen(h.Loop, addr, f, tcp.ListenOptions{})
			require.NoError(t, err, "rebind %d", i)
		}
		c := dial(t, p)
		_, _ = c.Write([]byte("ok"))
		buf := make([]byte, 2)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		h.Do(func() { _ = p.Close() })
	})
}

func TestAddressInUse(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol { return &recorder{} })
		p, err := tcp.Listen(h.Loop, "127.0.0.1:0", f, tcp.ListenOptions{})
		require.NoError(t, err)
		_, err = tcp.Listen(h.Loop, p.Addr().String(), f, tcp.ListenOptions{})
		require.ErrorIs(t, err, syscall.EADDRINUSE)
		_, err = tcp.Listen(h.Loop, "nonsense", f, tcp.ListenOptions{})
		require.ErrorIs(t, err, tcp.ErrBadAddress)
		h.Do(func() { _ = p.Close() })
	})
}

func TestCallbackPanicAbortsOnlyItsConnection(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		p, built := server(t, h, func() *recorder {
			return &recorder{echo: true, onData: func(r *recorder, p []byte) {
				if bytes.Contains(p, []byte("boom")) {
					panic("boom")
				}
			}}
		})
		good := dial(t, p)
		bad := dial(t, p)
		_, _ = bad.Write([]byte("boom"))
		_, _ = io.ReadAll(bad)
		_, _ = good.Write([]byte("fine"))
		buf := make([]byte, 4)
		_, err := io.ReadFull(good, buf)
		require.NoError(t, err)
		require.Equal(t, "fine", string(buf))
		require.True(t, h.Eventually(5*time.Second, func() bool {
			for _, r := range built() {
				if r.lost == 1 {
					var pe *reactor.PanicError
					return errors.As(r.reason, &pe)
				}
			}
			return false
		}))
		require.NotEmpty(t, h.Errors())
	})
}

func TestIPv6Loopback(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol { return &recorder{echo: true} })
		p, err := tcp.Listen(h.Loop, "[::1]:0", f, tcp.ListenOptions{})
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		c, err := net.Dial("tcp", p.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		_, _ = c.Write([]byte("v6"))
		buf := make([]byte, 2)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, "v6", string(buf))
		h.Do(func() { _ = p.Close() })
	})
}

func TestManyConnectCloseCycles(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		p, built := server(t, h, func() *recorder { return &recorder{echo: true} })
		before := reactortest.FDCount()
		n := 2000
		if testing.Short() {
			n = 200
		}
		for i := 0; i < n; i++ {
			c, err := net.Dial("tcp", p.Addr().String())
			require.NoError(t, err)
			_, _ = c.Write([]byte("x"))
			b := make([]byte, 1)
			_, err = io.ReadFull(c, b)
			require.NoError(t, err)
			require.NoError(t, c.Close())
		}
		require.True(t, h.Eventually(10*time.Second, func() bool {
			for _, r := range built() {
				if r.lost != 1 {
					return false
				}
			}
			return len(built()) == n
		}))
		require.LessOrEqual(t, reactortest.FDCount(), before+2)
	})
}
