package streamsuite

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

func testEchoChunked(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		p, _ := Serve(t, k, h, func() *Recorder { return &Recorder{Echo: true} })
		c := Dial(t, k, p)
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

func testLargeWrite(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		big := make([]byte, 64<<20)
		_, _ = rand.Read(big[:1<<20])
		for i := 1 << 20; i < len(big); i += 1 << 20 {
			copy(big[i:], big[:1<<20])
		}
		p, built := Serve(t, k, h, func() *Recorder {
			return &Recorder{OnMade: func(r *Recorder) {
				require.NoError(t, r.T.Write(big))
				require.NoError(t, r.T.LoseConnection())
			}}
		})
		c := Dial(t, k, p)
		got, err := io.ReadAll(c)
		require.NoError(t, err)
		require.Equal(t, len(big), len(got))
		require.True(t, bytes.Equal(big, got))
		require.True(t, h.Eventually(5*time.Second, func() bool { return built()[0].Lost == 1 }))
		h.Do(func() {
			require.ErrorIs(t, built()[0].Reason, transports.ErrConnectionDone)
			require.ErrorIs(t, built()[0].Reason, io.EOF)
		})
	})
}

func testWritesFromOtherGoroutinesKeepOrder(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		ready := make(chan transports.Transport, 1)
		p, _ := Serve(t, k, h, func() *Recorder {
			return &Recorder{OnMade: func(r *Recorder) { ready <- r.T }}
		})
		c := Dial(t, k, p)
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

func testHalfCloseFromPeer(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		p, built := Serve(t, k, h, func() *Recorder { return &Recorder{Echo: true} })
		c := Dial(t, k, p)
		_, err := c.Write([]byte("hello"))
		require.NoError(t, err)
		require.NoError(t, closeWrite(c))
		got, err := io.ReadAll(c)
		require.NoError(t, err)
		require.Equal(t, "hello", string(got))
		require.True(t, h.Eventually(5*time.Second, func() bool { return len(built()) == 1 && built()[0].Lost == 1 }))
		h.Do(func() { require.ErrorIs(t, built()[0].Reason, transports.ErrConnectionDone) })
	})
}

type halfRecorder struct {
	Recorder
	readLost, writeLost int
}

func (h *halfRecorder) ReadConnectionLost() {
	h.readLost++
	_ = h.T.Write([]byte("bye"))
	_ = h.T.CloseWrite()
}
func (h *halfRecorder) WriteConnectionLost() { h.writeLost++ }

func testHalfCloseableProtocol(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var hr *halfRecorder
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol { hr = &halfRecorder{}; return hr })
		p, err := k.listen(t, h, f)
		require.NoError(t, err)
		c := Dial(t, k, p)
		_, _ = c.Write([]byte("x"))
		require.NoError(t, closeWrite(c))
		got, err := io.ReadAll(c)
		require.NoError(t, err)
		require.Equal(t, "bye", string(got))
		require.True(t, h.Eventually(5*time.Second, func() bool { return hr.Lost == 1 }))
		h.Do(func() {
			require.Equal(t, 1, hr.readLost)
			require.Equal(t, 1, hr.writeLost)
			require.Equal(t, "x", hr.Data.String())
			require.ErrorIs(t, hr.Reason, transports.ErrConnectionDone)
			_ = p.Close()
		})
	})
}

func testAbortAndLoseConnection(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		var insideAbort bool
		p, built := Serve(t, k, h, func() *Recorder {
			r := &Recorder{}
			r.OnData = func(r *Recorder, _ []byte) {
				_ = r.T.Write([]byte("dropped"))
				insideAbort = true
				require.NoError(t, r.T.Abort())
				require.NoError(t, r.T.Abort())
				require.NoError(t, r.T.LoseConnection())
				insideAbort = false
				require.ErrorIs(t, r.T.Write([]byte("x")), transports.ErrClosed)
			}
			r.OnLost = func(*Recorder) { require.False(t, insideAbort, "ConnectionLost inside Abort") }
			return r
		})
		c := Dial(t, k, p)
		_, _ = c.Write([]byte("go"))
		_, err := io.ReadAll(c)
		require.True(t, err == nil || errors.Is(err, syscall.ECONNRESET), "got %v", err)
		require.True(t, h.Eventually(5*time.Second, func() bool { return len(built()) == 1 && built()[0].Lost == 1 }))
		h.Do(func() {
			r := built()[0]
			require.ErrorIs(t, r.Reason, transports.ErrConnectionLost)
			require.ErrorIs(t, r.Reason, transports.ErrAborted)
		})
	})
}

func testPeerResetMidWrite(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		chunk := make([]byte, 1<<20)
		p, built := Serve(t, k, h, func() *Recorder {
			r := &Recorder{}
			var pump func()
			pump = func() {
				if r.Lost > 0 {
					return
				}
				_ = r.T.Write(chunk)
				r.T.Clock().CallLater(time.Millisecond, pump)
			}
			r.OnMade = func(*Recorder) { pump() }
			return r
		})
		c := Dial(t, k, p)
		buf := make([]byte, 1000)
		_, err := io.ReadFull(c, buf)
		require.NoError(t, err)
		// Unread bytes stay in c's receive queue: a reset on UNIX too.
		resetConn(t, c)
		require.True(t, h.Eventually(10*time.Second, func() bool { return len(built()) == 1 && built()[0].Lost == 1 }))
		h.Do(func() {
			r := built()[0]
			require.ErrorIs(t, r.Reason, transports.ErrConnectionLost)
			require.True(t, errors.Is(r.Reason, syscall.ECONNRESET) || errors.Is(r.Reason, syscall.EPIPE), "reason %v", r.Reason)
		})
	})
}

func testConnectRefusedAndEcho(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		addr := closedAddr(t, k)
		cf := NewClientFactory()
		_, err := k.Connect(h.Loop, addr, cf, 0)
		require.NoError(t, err)
		select {
		case err := <-cf.Failed:
			require.ErrorIs(t, err, syscall.ECONNREFUSED)
		case <-time.After(5 * time.Second):
			t.Fatal("connect refused not reported")
		}

		p, _ := Serve(t, k, h, func() *Recorder { return &Recorder{Echo: true} })
		cf = NewClientFactory()
		cf.OnMade = func(r *Recorder) { _ = r.T.Write([]byte("ping")) }
		cf.OnData = func(r *Recorder, _ []byte) {
			if r.Data.Len() >= 4 {
				_ = r.T.LoseConnection()
			}
		}
		_, err = k.Connect(h.Loop, p.Addr().String(), cf, 0)
		require.NoError(t, err)
		select {
		case err := <-cf.LostCh:
			require.ErrorIs(t, err, transports.ErrConnectionDone)
		case <-time.After(5 * time.Second):
			t.Fatal("client connection not lost")
		}
		h.Do(func() { require.Equal(t, "ping", cf.Proto.Data.String()) })
	})
}

func testStopConnecting(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		cf := NewClientFactory()
		var conn transports.Connector
		h.Do(func() {
			var err error
			// Nothing listens there; stop before the loop turns.
			conn, err = k.Connect(h.Loop, closedAddr(t, k), cf, 0)
			require.NoError(t, err)
		})
		h.Do(func() { _ = conn.StopConnecting() })
		select {
		case err := <-cf.Failed:
			require.True(t, errors.Is(err, transports.ErrConnectStopped) || errors.Is(err, syscall.ECONNREFUSED), "got %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("no failure after StopConnecting")
		}
	})
}

func testPortCloseAndRebind(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol { return &Recorder{Echo: true} })
		p, err := k.listen(t, h, f)
		require.NoError(t, err)
		addr := p.Addr().String()
		for i := 0; i < 5; i++ {
			h.Do(func() { require.NoError(t, p.Close()); require.ErrorIs(t, p.Close(), transports.ErrClosed) })
			p, err = k.Listen(h.Loop, addr, f, transports.Watermarks{})
			require.NoError(t, err, "rebind %d", i)
		}
		c := Dial(t, k, p)
		_, _ = c.Write([]byte("ok"))
		buf := make([]byte, 2)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		h.Do(func() { _ = p.Close() })
	})
}

func testCallbackPanicAbortsOnlyItsConnection(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		p, built := Serve(t, k, h, func() *Recorder {
			return &Recorder{Echo: true, OnData: func(r *Recorder, p []byte) {
				if bytes.Contains(p, []byte("boom")) {
					panic("boom")
				}
			}}
		})
		good := Dial(t, k, p)
		bad := Dial(t, k, p)
		_, _ = bad.Write([]byte("boom"))
		_, _ = io.ReadAll(bad)
		_, _ = good.Write([]byte("fine"))
		buf := make([]byte, 4)
		_, err := io.ReadFull(good, buf)
		require.NoError(t, err)
		require.Equal(t, "fine", string(buf))
		require.True(t, h.Eventually(5*time.Second, func() bool {
			for _, r := range built() {
				if r.Lost == 1 {
					var pe *reactor.PanicError
					return errors.As(r.Reason, &pe)
				}
			}
			return false
		}))
		require.NotEmpty(t, h.Errors())
	})
}

func testManyConnectCloseCycles(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		p, built := Serve(t, k, h, func() *Recorder { return &Recorder{Echo: true} })
		before := reactortest.FDCount()
		n := 2000
		if testing.Short() {
			n = 200
		}
		for i := 0; i < n; i++ {
			c, err := net.Dial(k.Network, p.Addr().String())
			require.NoError(t, err)
			_, _ = c.Write([]byte("x"))
			b := make([]byte, 1)
			_, err = io.ReadFull(c, b)
			require.NoError(t, err)
			require.NoError(t, c.Close())
		}
		require.True(t, h.Eventually(10*time.Second, func() bool {
			for _, r := range built() {
				if r.Lost != 1 {
					return false
				}
			}
			return len(built()) == n
		}))
		require.LessOrEqual(t, reactortest.FDCount(), before+2)
	})
}
