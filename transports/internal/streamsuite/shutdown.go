package streamsuite

import (
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// goEcho is a Go net echo server (of k's network) for gyre clients; stop closes it and every
// connection and waits for its goroutines.
func goEcho(t *testing.T, k *Kind) (addr string, stop func()) {
	t.Helper()
	ln := k.netListen(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A plain loop: io.Copy between TCP conns would splice
				// through pipes Go caches, which the fd count would see.
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				_ = c.Close()
			}()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = ln.Close()
			mu.Lock()
			for _, c := range conns {
				_ = c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// shutdownClients is the client factory of TestStopWithTrafficInFlight: one
// strict protocol per connector, ping-ponging 16 KiB with an echo server.
type shutdownClients struct {
	t      *testing.T
	mu     sync.Mutex
	protos []*strict
	lost   map[transports.Connector]int
	failed map[transports.Connector][]error
}

func (f *shutdownClients) BuildProtocol(net.Addr) transports.Protocol {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := newStrict(f.t, fmt.Sprintf("client %d", len(f.protos)))
	s.onMade = func(s *strict) { _ = s.tr.Write(make([]byte, 16<<10)) }
	s.onData = func(s *strict, p []byte) { _ = s.tr.Write(p) }
	f.protos = append(f.protos, s)
	return s
}
func (f *shutdownClients) StartedConnecting(transports.Connector) {}
func (f *shutdownClients) ClientConnectionFailed(c transports.Connector, err error) {
	f.mu.Lock()
	f.failed[c] = append(f.failed[c], err)
	f.mu.Unlock()
}
func (f *shutdownClients) ClientConnectionLost(c transports.Connector, _ error) {
	f.mu.Lock()
	f.lost[c]++
	f.mu.Unlock()
}

// TestStopWithTrafficInFlight stops the loop while 50 accepted connections
// stream both ways, 10 client connections ping-pong, one connect hangs (on a
// kind without Caps.ConnectWaitsOnFullBacklog: has failed at once with
// EAGAIN) and the port accepts: every protocol gets ConnectionLost exactly
// once (the accepted ones with a clean ErrConnectionDone: their peers read),
// every connector reports its end once, and no goroutine or descriptor is
// left.
func testStopWithTrafficInFlight(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		hung := fullBacklog(t, k)
		echoAddr, stopEcho := goEcho(t, k)
		// Warm Go's own poller (it keeps descriptors) before counting.
		if c, err := net.Dial(k.Network, echoAddr); err == nil {
			_ = c.Close()
		}
		before := reactortest.FDCount()
		beforeList := fdList()

		h := reactortest.Start(t, kind)
		const nServer, nClient = 50, 10
		p, built := strictServer(t, k, h, func(i int) *strict {
			s := newStrict(t, fmt.Sprintf("server %d", i))
			s.onData = func(s *strict, p []byte) { _ = s.tr.Write(p) }
			return s
		})

		// Go peers of the accepted connections: each sends 64 KiB and reads
		// the echo, over and over, until its connection ends. (Bounded data
		// in flight per connection: this test is about shutdown, not about
		// fairness under unbounded load, see TestHotConnectionsDoNotStarveOthers.)
		var peers sync.WaitGroup
		var peerConns []net.Conn
		for i := 0; i < nServer; i++ {
			c, err := net.DialTimeout(k.Network, p.Addr().String(), 5*time.Second)
			require.NoError(t, err)
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			peerConns = append(peerConns, c)
			peers.Add(1)
			go func() {
				defer peers.Done()
				buf := make([]byte, 64<<10)
				for {
					if _, err := c.Write(buf); err != nil {
						return
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
				}
			}()
		}

		cf := &shutdownClients{t: t, lost: map[transports.Connector]int{}, failed: map[transports.Connector][]error{}}
		var connectors []transports.Connector
		for i := 0; i < nClient; i++ {
			c, err := k.Connect(h.Loop, echoAddr, cf, 0)
			require.NoError(t, err)
			connectors = append(connectors, c)
		}
		hungConn, err := k.Connect(h.Loop, hung, cf, time.Minute)
		require.NoError(t, err)

		// Everything flows.
		require.True(t, h.Eventually(10*time.Second, func() bool {
			b := built()
			if len(b) < nServer {
				return false
			}
			for _, s := range b {
				if _, _, n, _ := s.state(); n == 0 {
					return false
				}
			}
			cf.mu.Lock()
			defer cf.mu.Unlock()
			if len(cf.protos) < nClient {
				return false
			}
			for _, s := range cf.protos {
				if _, _, n, _ := s.state(); n == 0 {
					return false
				}
			}
			return true
		}), "traffic did not start on every connection: %s", trafficReport(built(), cf))

		h.StopWait()

		for _, s := range built() {
			made, lost, _, reason := s.state()
			require.Equal(t, 1, made, s.name)
			require.Equal(t, 1, lost, s.name)
			// A graceful stop: the echo queued (at most 64 KiB, which the
			// peer's socket takes even while it writes) is flushed, then FIN.
			require.ErrorIs(t, reason, transports.ErrConnectionDone, s.name)
			require.NotErrorIs(t, reason, transports.ErrConnectionLost, s.name)
			require.ErrorIs(t, reason, reactor.ErrStopped, s.name)
		}
		cf.mu.Lock()
		for _, s := range cf.protos {
			made, lost, _, _ := s.state()
			require.Equal(t, 1, made, s.name)
			require.Equal(t, 1, lost, s.name)
		}
		for i, c := range connectors {
			require.Equal(t, 1, cf.lost[c], "connector %d: ClientConnectionLost count", i)
			require.Empty(t, cf.failed[c], "connector %d", i)
		}
		require.Len(t, cf.failed[hungConn], 1, "the hung connect must fail once")
		if k.Caps.ConnectWaitsOnFullBacklog {
			require.ErrorIs(t, cf.failed[hungConn][0], transports.ErrConnectStopped)
		} else {
			// It failed at once, long before Stop (on every backend).
			require.ErrorIs(t, cf.failed[hungConn][0], syscall.EAGAIN)
		}
		require.Zero(t, cf.lost[hungConn])
		cf.mu.Unlock()

		for _, c := range peerConns {
			_ = c.Close()
		}
		peers.Wait()
		stopEcho()
		if n := reactortest.FDCount(); n > before {
			t.Fatalf("descriptors left after the loop stopped: %d > %d\nbefore %v\nafter  %v", n, before, beforeList, fdList())
		}
	})
}

func trafficReport(server []*strict, cf *shutdownClients) string {
	out := fmt.Sprintf("%d server connections:", len(server))
	for _, s := range server {
		_, _, n, _ := s.state()
		out += fmt.Sprintf(" %d", n)
	}
	cf.mu.Lock()
	defer cf.mu.Unlock()
	out += fmt.Sprintf("; %d clients:", len(cf.protos))
	for _, s := range cf.protos {
		_, _, n, _ := s.state()
		out += fmt.Sprintf(" %d", n)
	}
	return out
}
