package hostile_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	gyrehttp "github.com/gyre-io/gyre/protocols/http"
	"github.com/gyre-io/gyre/protocols/policies"
	"github.com/gyre-io/gyre/protocols/resp"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
)

// trickler is a set of slow clients on raw non-blocking sockets, driven
// from the test goroutine: every interval each connection still open gets
// the next byte of req (cycling through it), and whatever the server sends
// is collected. A connection counts as closed by the server once a read
// sees EOF or a reset.
type trickler struct {
	fds    []int
	pos    []int
	closed []bool
	got    [][]byte
}

// newTrickler opens n connections to sa from the local address src (a
// loopback address other than 127.0.0.1 keeps them apart from the prober
// for per-peer limits) and sends first on each right after it connected
// (so that the server's idle timeout does not run while the others
// connect).
func newTrickler(t *testing.T, src [4]byte, sa *unix.SockaddrInet4, n int, first []byte) *trickler {
	tr := &trickler{pos: make([]int, n), closed: make([]bool, n), got: make([][]byte, n)}
	t.Cleanup(func() { closeRaw(tr.fds, true) })
	for i := 0; i < n; i++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		tr.fds = append(tr.fds, fd)
		require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: src}))
		require.NoError(t, unix.Connect(fd, sa))
		if len(first) > 0 {
			_, err = unix.Write(fd, first)
			require.NoError(t, err)
			tr.pos[i] = len(first)
		}
		require.NoError(t, unix.SetNonblock(fd, true))
	}
	return tr
}

// poll reads what is there on every connection still open.
func (tr *trickler) poll() {
	buf := make([]byte, 4096)
	for i, fd := range tr.fds {
		for !tr.closed[i] {
			r, err := unix.Read(fd, buf)
			if err == unix.EAGAIN {
				break
			}
			if err != nil || r == 0 {
				tr.closed[i] = true
				break
			}
			tr.got[i] = append(tr.got[i], buf[:r]...)
		}
	}
}

// run trickles req for the given time (sending bytes only while send is
// true), polling, and returns early once every connection was closed.
func (tr *trickler) run(req []byte, interval, d time.Duration, send bool) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		time.Sleep(interval)
		tr.poll()
		if tr.numClosed() == len(tr.fds) {
			return
		}
		if send {
			for i, fd := range tr.fds {
				if !tr.closed[i] {
					_, _ = unix.SendmsgN(fd, req[tr.pos[i]%len(req):][:1], nil, nil, unix.MSG_NOSIGNAL)
					tr.pos[i]++
				}
			}
		}
	}
	tr.poll()
}

func (tr *trickler) numClosed() int {
	n := 0
	for _, c := range tr.closed {
		if c {
			n++
		}
	}
	return n
}

// serverFixture runs one server factory on a loop with a prober.
type serverFixture struct {
	h     *reactortest.Loop
	sa    *unix.SockaddrInet4
	probe *prober
	base  reactor.Stats
}

func newServerFixture(t *testing.T, kind reactor.BackendKind, f transports.Factory, rt roundTrip) *serverFixture {
	h := reactortest.Start(t, kind)
	p, err := tcp.Listen(h.Loop, "127.0.0.1:0", f, tcp.ListenOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { h.Do(func() { _ = p.Close() }) })
	sf := &serverFixture{h: h, sa: sockaddr(t, p.Addr().String())}
	sf.probe = startProber(p.Addr().String(), rt)
	t.Cleanup(func() { sf.probe.Stop() })
	require.True(t, sf.probe.waitCount(5, 10*time.Second), "prober: %v", sf.probe.Err())
	sf.base = h.Stats()
	return sf
}

// done checks the prober kept going (at least minTrips more round trips
// since before, no error) and that only its connection is left open.
func (sf *serverFixture) done(t *testing.T, before, minTrips int64) {
	t.Helper()
	require.True(t, sf.probe.waitCount(before+minTrips, 10*time.Second), "prober: %d round trips, %v", sf.probe.count.Load(), sf.probe.Err())
	require.True(t, reactortest.WaitUntil(10*time.Second, func() bool { return sf.h.Stats().ConnsOpen == 1 }), "%+v", sf.h.Stats())
	n, err := sf.probe.Stop()
	require.NoError(t, err)
	require.Zero(t, sf.h.Stats().Panics)
	require.Empty(t, sf.h.Errors())
	t.Logf("prober: %d round trips", n)
}

var slowSrc = [4]byte{127, 0, 0, 2}

func httpOK() transports.Factory {
	return gyrehttp.NewFactory(gyrehttp.HandlerFunc(func(w gyrehttp.ResponseWriter, r *gyrehttp.Request) {
		_, _ = w.Write([]byte("ok"))
	}), gyrehttp.Options{IdleTimeout: 2 * time.Second, HeaderTimeout: 300 * time.Millisecond})
}

// TestHTTPSlowloris: 200 clients send a request head a byte every 50 ms —
// often enough that the 2 s idle timeout never fires — and 200 more a byte
// a second. The 300 ms header timeout answers every one of them 408 and
// closes it, within a generous bound, while the prober's round trips go on.
func TestHTTPSlowloris(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		sf := newServerFixture(t, kind, httpOK(), httpRT)
		before := sf.probe.count.Load()
		req := []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 4000) + "\r\n\r\n")
		for _, interval := range []time.Duration{50 * time.Millisecond, time.Second} {
			tr := newTrickler(t, slowSrc, sf.sa, 200, req[:1])
			tr.run(req, interval, 10*time.Second, true)
			require.Equal(t, 200, tr.numClosed(), "interval %v: server closed %d of 200", interval, tr.numClosed())
			for i, g := range tr.got {
				require.True(t, bytes.HasPrefix(g, []byte("HTTP/1.1 408 ")), "interval %v, conn %d: %q", interval, i, g)
				require.Less(t, tr.pos[i], len(req), "a whole head got through")
			}
		}
		sf.done(t, before, 20)
	})
}

// TestHTTPHalfOpen: 500 connections that send nothing, and 200 that send
// part of a head and then nothing: the idle timeout (2 s) closes the first
// (no answer), the header timeout (300 ms) answers the second 408 and
// closes them; the prober is served throughout.
func TestHTTPHalfOpen(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		sf := newServerFixture(t, kind, httpOK(), httpRT)
		before := sf.probe.count.Load()
		silent := newTrickler(t, slowSrc, sf.sa, 500, nil)
		head := []byte("GET / HTTP/1.1\r\nHo")
		partial := newTrickler(t, slowSrc, sf.sa, 200, head)
		partial.run(head, 20*time.Millisecond, 10*time.Second, false)
		silent.run(nil, 20*time.Millisecond, 10*time.Second, false)
		require.Equal(t, 500, silent.numClosed())
		require.Equal(t, 200, partial.numClosed())
		for i, g := range silent.got {
			require.Empty(t, g, "silent conn %d", i)
		}
		for i, g := range partial.got {
			require.True(t, bytes.HasPrefix(g, []byte("HTTP/1.1 408 ")), "partial conn %d: %q", i, g)
		}
		sf.done(t, before, 20)
	})
}

// respFactory is the RESP server behind the policies a deployment facing
// untrusted peers puts in front of it: an idle timeout (RESP itself has
// none, as Redis's "timeout" defaults to 0) and a per-peer connection cap.
func respFactory(perPeer int) transports.Factory {
	return policies.NewLimitConnectionsByPeer(
		policies.NewTimeoutFactory(resp.NewFactory(resp.NewStore(), resp.Options{}), time.Second), perPeer)
}

// TestRESPSlowClients: against RESP behind a 1 s idle timeout (longer than
// the other tests' timeouts, so that a scheduling stall of the prober on a
// loaded machine does not look idle) and a cap of 50 connections per peer
// host:
//   - 50 clients (from 127.0.0.2) sending a byte every 2 s are closed by
//     the idle timeout after their first byte;
//   - 200 clients trickling a request a byte every 50 ms are never idle, so
//     nothing in RESP times them out (RESP has no request timeout, like
//     Redis): the cap holds them to 50 (the other 150 are refused at once),
//     each one's buffered request is bounded by MaxQueryBuffer, and once
//     they stop sending the idle timeout closes them.
//
// The prober (from 127.0.0.1, its own peer) is served throughout.
func TestRESPSlowClients(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		const perPeer = 50
		sf := newServerFixture(t, kind, respFactory(perPeer), respRT)
		before := sf.probe.count.Load()
		req := []byte(fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n", 5000, strings.Repeat("v", 5000)))

		slow := newTrickler(t, slowSrc, sf.sa, perPeer, req[:1])
		slow.run(req, 2*time.Second, 10*time.Second, true)
		require.Equal(t, perPeer, slow.numClosed(), "slow clients closed by the idle timeout")
		for i, p := range slow.pos {
			require.LessOrEqual(t, p, 5, "conn %d: sent %d bytes before the idle timeout", i, p)
		}
		require.True(t, reactortest.WaitUntil(10*time.Second, func() bool { return sf.h.Stats().ConnsOpen == 1 }), "%+v, prober %v", sf.h.Stats(), sf.probe.Err())

		tr := newTrickler(t, slowSrc, sf.sa, 200, req[:1])
		tr.run(req, 50*time.Millisecond, 1500*time.Millisecond, true)
		require.Equal(t, 200-perPeer, tr.numClosed(), "refused over the per-peer cap")
		require.EqualValues(t, 1+perPeer, sf.h.Stats().ConnsOpen)
		mid := sf.probe.count.Load()
		require.Greater(t, mid, before, "prober served while trickled")
		// Silence: the idle timeout takes the rest.
		tr.run(req, 20*time.Millisecond, 10*time.Second, false)
		require.Equal(t, 200, tr.numClosed())
		sf.done(t, before, 20)
	})
}

// TestRESPHalfOpen: 500 silent connections (from 127.0.0.2, under a cap of
// 1000) are all closed by the idle timeout; the prober is served.
func TestRESPHalfOpen(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		sf := newServerFixture(t, kind, respFactory(1000), respRT)
		before := sf.probe.count.Load()
		silent := newTrickler(t, slowSrc, sf.sa, 500, nil)
		silent.run(nil, 20*time.Millisecond, 10*time.Second, false)
		require.Equal(t, 500, silent.numClosed())
		sf.done(t, before, 20)
	})
}
