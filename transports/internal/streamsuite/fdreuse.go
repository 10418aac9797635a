package streamsuite

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// TestFDReuseServerSide aborts an accepted connection while its receive is
// in flight and data is arriving, then accepts a new connection that gets the
// same descriptor number: nothing of the old connection (data, completions,
// callbacks) may reach the new one.
func testFDReuseServerSide(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		p, built := strictServer(t, k, h, func(i int) *strict {
			s := newStrict(t, fmt.Sprintf("server conn %d", i))
			s.keep = true
			return s
		})
		sa := sockaddrOf(t, k, p.Addr())
		rounds := scaled(40, 10)
		reused := 0

		// The client of each round is connected before the previous round's
		// server side is aborted, so the accept of the next round is the
		// first to ask for a descriptor after the old one was closed.
		next := rawSocket(t, k)
		require.NoError(t, unix.Connect(next, sa))
		for round := 0; round < rounds; round++ {
			cA := next
			sA := waitBuilt(t, built, round+1)[round]
			waitMade(t, sA)
			fdA := peerFD(t, p, cA)
			require.GreaterOrEqual(t, fdA, 0, "server descriptor of round %d not found", round)

			// The next client's socket exists (its number taken) before A's
			// server descriptor is freed.
			next = rawSocket(t, k)

			// Data in flight towards A while it is aborted.
			// Connection r only ever carries letter(r).
			aData := bytes.Repeat([]byte{letter(round)}, 8192)
			_, err := unix.Write(cA, aData)
			require.NoError(t, err)
			h.Do(func() { require.NoError(t, sA.transport().Abort()) })
			sA.waitLost(t, 5*time.Second)
			_, _, nA, reason := sA.state()
			require.ErrorIs(t, reason, transports.ErrAborted)

			// B: accepted on the (usually) same number.
			require.NoError(t, unix.Connect(next, sa))
			sB := waitBuilt(t, built, round+2)[round+1]
			waitMade(t, sB)
			fdB := peerFD(t, p, next)
			if fdB == fdA {
				reused++
			}
			bData := bytes.Repeat([]byte{letter(round + 1)}, 4096)
			_, err = unix.Write(next, bData)
			require.NoError(t, err)
			require.True(t, h.Eventually(5*time.Second, func() bool {
				_, _, n, _ := sB.state()
				return n >= len(bData)
			}), "round %d: B's data did not arrive", round)
			require.Equal(t, bData, sB.received(), "round %d: B received foreign bytes", round)
			for _, b := range sA.received() {
				require.Equal(t, letter(round), b, "round %d: A received foreign bytes", round)
			}
			_, _, nA2, _ := sA.state()
			require.Equal(t, nA, nA2, "round %d: A received data after ConnectionLost", round)
			require.NoError(t, unix.Close(cA))
		}
		_ = unix.Close(next)
		all := built()
		sLast := all[len(all)-1]
		sLast.waitLost(t, 5*time.Second)
		for _, s := range all {
			_, lost, _, _ := s.state()
			require.Equal(t, 1, lost, s.name)
		}
		t.Logf("%d of %d rounds reused the descriptor number", reused, rounds)
		require.Greater(t, reused, 0, "no round reused a descriptor number; the scenario did not happen")
	})
}

func letter(i int) byte { return 'a' + byte(i%26) }

// peerFD is the descriptor number of the server side of the raw client c.
func peerFD(t *testing.T, p Port, c int) int {
	t.Helper()
	return socketFD(p.Addr().String(), peerAddrString(t, c))
}

// reuseClient is the client factory of TestFDReuseClientSide: every
// connection aborts itself in DataReceived while its receive is in flight and
// the server keeps sending; ClientConnectionLost reconnects at once, so the
// new socket takes the number the old one just released.
type reuseClient struct {
	t       *testing.T
	rounds  int
	min     int // bytes to receive before aborting
	mu      sync.Mutex
	protos  []*strict
	fds     []int
	markers []byte
	lost    []error
	failed  []error
	done    chan struct{}
}

func (f *reuseClient) BuildProtocol(net.Addr) transports.Protocol {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := len(f.protos)
	s := newStrict(f.t, fmt.Sprintf("client conn %d", i))
	s.keep = true
	f.protos = append(f.protos, s)
	f.fds = append(f.fds, -1)
	f.markers = append(f.markers, 0)
	s.onMade = func(s *strict) {
		fd := fdOf(s.tr)
		f.mu.Lock()
		f.fds[i] = fd
		f.mu.Unlock()
	}
	s.onData = func(s *strict, p []byte) {
		got := s.received()
		f.mu.Lock()
		if f.markers[i] == 0 {
			f.markers[i] = got[0]
		}
		m := f.markers[i]
		f.mu.Unlock()
		for _, b := range got {
			if b != m {
				f.t.Errorf("%s: byte %q in a stream of %q", s.name, b, m)
				break
			}
		}
		if len(got) >= f.min {
			_ = s.tr.Abort()
			_ = s.tr.Abort()
		}
	}
	return s
}

func (f *reuseClient) StartedConnecting(transports.Connector) {}

func (f *reuseClient) ClientConnectionFailed(_ transports.Connector, err error) {
	f.mu.Lock()
	f.failed = append(f.failed, err)
	f.mu.Unlock()
	close(f.done)
}

func (f *reuseClient) ClientConnectionLost(c transports.Connector, err error) {
	f.mu.Lock()
	f.lost = append(f.lost, err)
	n := len(f.lost)
	f.mu.Unlock()
	if n >= f.rounds {
		close(f.done)
		return
	}
	if err := c.Connect(); err != nil {
		f.t.Errorf("reconnect: %v", err)
	}
}

// TestFDReuseClientSide: a client connection is aborted while data is
// arriving and its connector reconnects inside ClientConnectionLost; the new
// connection (usually on the same descriptor number) sees only its own
// server's bytes.
func testFDReuseClientSide(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		chunk := make([]byte, 1024)
		p, built := strictServer(t, k, h, func(i int) *strict {
			s := newStrict(t, fmt.Sprintf("server conn %d", i))
			marker := bytes.Repeat([]byte{letter(i)}, len(chunk))
			var pump func()
			pump = func() {
				if _, lost, _, _ := s.state(); lost > 0 {
					return
				}
				_ = s.tr.Write(marker)
				s.tr.Clock().CallLater(time.Millisecond, pump)
			}
			s.onMade = func(*strict) { pump() }
			return s
		})
		rounds := scaled(40, 10)
		f := &reuseClient{t: t, rounds: rounds, min: 2048, done: make(chan struct{})}
		_, err := k.Connect(h.Loop, p.Addr().String(), f, 0)
		require.NoError(t, err)
		select {
		case <-f.done:
		case <-time.After(30 * time.Second):
			t.Fatal("reconnect chain did not finish")
		}
		f.mu.Lock()
		require.Empty(t, f.failed)
		require.Len(t, f.lost, rounds)
		for _, err := range f.lost {
			require.ErrorIs(t, err, transports.ErrAborted)
		}
		reused := 0
		for i := 1; i < len(f.fds); i++ {
			if f.fds[i] >= 0 && f.fds[i] == f.fds[i-1] {
				reused++
			}
			require.NotEqual(t, f.markers[i-1], f.markers[i], "round %d saw the previous server's marker", i)
		}
		protos := append([]*strict(nil), f.protos...)
		f.mu.Unlock()
		for _, s := range protos {
			_, lost, _, _ := s.state()
			require.Equal(t, 1, lost, s.name)
		}
		// Every server side ends too (RST from the aborts).
		require.True(t, h.Eventually(5*time.Second, func() bool {
			for _, s := range built() {
				if _, lost, _, _ := s.state(); lost != 1 {
					return false
				}
			}
			return len(built()) == rounds
		}))
		t.Logf("%d of %d reconnects reused the descriptor number", reused, rounds-1)
		require.Greater(t, reused, 0, "no reconnect reused a descriptor number; the scenario did not happen")
	})
}
