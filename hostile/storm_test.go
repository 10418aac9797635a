package hostile_test

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/tcp"
)

// echoServer starts a loop with a TCP echo server on it (default listen
// options: backlog 511) and a prober against it, and returns them with the
// baseline taken after the prober's first round trips.
type echoFixture struct {
	h     *reactortest.Loop
	addr  string
	sa    *unix.SockaddrInet4
	probe *prober
	base  reactor.Stats
	fd0   int
}

func newEchoFixture(t *testing.T, kind reactor.BackendKind) *echoFixture {
	h := reactortest.Start(t, kind)
	p, err := tcp.Listen(h.Loop, "127.0.0.1:0", echo.Factory{}, tcp.ListenOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { h.Do(func() { _ = p.Close() }) })
	f := &echoFixture{h: h, addr: p.Addr().String(), sa: sockaddr(t, p.Addr().String())}
	f.probe = startProber(f.addr, echoRT)
	t.Cleanup(func() { f.probe.Stop() })
	require.True(t, f.probe.waitCount(5, 10*time.Second), "prober: %v", f.probe.Err())
	require.True(t, reactortest.WaitUntil(5*time.Second, func() bool { return h.Stats().ConnsOpen == 1 }))
	f.base = h.Stats()
	f.fd0 = reactortest.FDCount()
	return f
}

// settled checks that the storm left nothing behind: only the prober's
// connection open, the loop's ops in flight and the process's descriptors
// at their baseline, no panic, no reported error; and that the prober,
// which ran throughout, made at least minTrips more round trips without an
// error.
func (f *echoFixture) settled(t *testing.T, before int64, minTrips int64) {
	t.Helper()
	require.True(t, reactortest.WaitUntil(20*time.Second, func() bool {
		s := f.h.Stats()
		return s.ConnsOpen == 1 && s.OpsInFlight == f.base.OpsInFlight
	}), "after storm: %+v (baseline %+v)", f.h.Stats(), f.base)
	require.True(t, reactortest.WaitUntil(5*time.Second, func() bool { return reactortest.FDCount() <= f.fd0 }),
		"descriptors: baseline %d, now %d", f.fd0, reactortest.FDCount())
	s := f.h.Stats()
	require.Zero(t, s.Panics)
	require.Empty(t, f.h.Errors())
	require.True(t, f.probe.waitCount(before+minTrips, 10*time.Second), "prober: %d round trips, %v", f.probe.count.Load(), f.probe.Err())
	n, err := f.probe.Stop()
	require.NoError(t, err)
	t.Logf("prober: %d round trips in all; storm connections %d", n, s.ConnsTotal-f.base.ConnsTotal)
}

// TestAcceptStorm: 3,000 connections started at once (no window) against
// an echo server with the default backlog of 511, so the kernel's accept
// queue overflows and SYNs are retried; every one of them completes its
// round trip, the prober keeps being served, and everything is released
// after they close.
func TestAcceptStorm(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		f := newEchoFixture(t, kind)
		before := f.probe.count.Load()
		msg := []byte("accept storm")
		const n = 3000
		fds, err := exchangeMany(f.sa, n, n, msg, 60*time.Second)
		require.NoError(t, err)
		require.True(t, reactortest.WaitUntil(10*time.Second, func() bool { return f.h.Stats().ConnsOpen == n+1 }), "%+v", f.h.Stats())
		closeRaw(fds, false)
		f.settled(t, before, 20)
		require.EqualValues(t, n, f.h.Stats().ConnsTotal-f.base.ConnsTotal)
	})
}

// TestVanishingClients: 4,000 clients that connect and go away at once —
// closed right after connect started (before or just after the handshake),
// half of them with a reset (SO_LINGER 0) — and 1,000 that send a few bytes
// and vanish the same two ways. The server accepts what reached its queue,
// ends each connection, keeps serving the prober and leaks nothing.
func TestVanishingClients(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		f := newEchoFixture(t, kind)
		before := f.probe.count.Load()
		for round := 0; round < 40; round++ {
			fds := make([]int, 0, 100)
			for i := 0; i < 100; i++ {
				fd, err := rawConnect(f.sa)
				require.NoError(t, err)
				fds = append(fds, fd)
			}
			closeRaw(fds[:50], false)
			closeRaw(fds[50:], true)
		}
		for round := 0; round < 10; round++ {
			fds := make([]int, 0, 100)
			for i := 0; i < 100; i++ {
				c, err := net.Dial("tcp", f.addr)
				require.NoError(t, err)
				_, err = c.Write([]byte("hello, and goodbye"))
				require.NoError(t, err)
				raw, err := c.(*net.TCPConn).File() // a dup, so the net.Conn can go at once
				require.NoError(t, err)
				require.NoError(t, c.Close())
				fds = append(fds, int(raw.Fd()))
				// raw keeps the dup open until closeRaw; keep the *os.File
				// from closing it when collected.
				defer raw.Close()
			}
			closeRaw(fds[:50], false)
			closeRaw(fds[50:], true)
		}
		f.settled(t, before, 20)
	})
}

// TestRSTStormDuringWrites: 320 clients each send 64 KiB to the echo
// server, read one byte of the echo (so the server is writing), then send
// 256 KiB more and read nothing, so the server's echo is stuck mid-write
// (its write queue above the watermark, reading paused), then reset the
// connection (SO_LINGER 0). Eight client goroutines do it concurrently. Every
// connection ends (the failed sends are the reason), the queued bytes are
// freed, the prober keeps being served and nothing leaks.
func TestRSTStormDuringWrites(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		f := newEchoFixture(t, kind)
		before := f.probe.count.Load()
		payload := bytes.Repeat([]byte("RST storm payload "), (256<<10)/18)
		const workers, each = 8, 40
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					c, err := net.Dial("tcp", f.addr)
					if err != nil {
						errs <- err
						return
					}
					_ = c.SetDeadline(time.Now().Add(5 * time.Second))
					// First make sure the server is echoing (one byte read
					// back), then stop reading and keep sending: the write may
					// stop short at the deadline once the server paused
					// reading and the socket buffers are full — that is the
					// state to reset.
					if _, err := c.Write(payload[:64<<10]); err != nil {
						errs <- err
						return
					}
					if _, err := c.Read(make([]byte, 1)); err != nil {
						errs <- err
						return
					}
					_ = c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
					_, _ = c.Write(payload)
					_ = c.(*net.TCPConn).SetLinger(0)
					_ = c.Close()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		f.settled(t, before, 20)
		s := f.h.Stats()
		require.EqualValues(t, workers*each, s.ConnsTotal-f.base.ConnsTotal)
		// Each storm connection was echoing (at least a byte each went
		// out), and the resets cut the echo short: the server received
		// more than it sent back (what was queued was dropped with the
		// connections).
		in, out := s.BytesIn-f.base.BytesIn, s.BytesOut-f.base.BytesOut
		t.Logf("storm bytes in %d, out %d", in, out)
		require.Greater(t, out, uint64(workers*each))
		require.Less(t, out, in)
	})
}
