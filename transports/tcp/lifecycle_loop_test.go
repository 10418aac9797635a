package tcp_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	"github.com/gyre-io/gyre/uring"
)

// countingFactory counts StartFactory and StopFactory (goroutine-safe).
type countingFactory struct {
	starts, stops atomic.Int32
}

func (f *countingFactory) BuildProtocol(net.Addr) transports.Protocol { return nil }
func (f *countingFactory) StartFactory()                              { f.starts.Add(1) }
func (f *countingFactory) StopFactory()                               { f.stops.Add(1) }

func newStoppedTestLoop(t *testing.T, kind reactor.BackendKind) *reactor.Loop {
	t.Helper()
	l, err := reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true})
	if errors.Is(err, uring.ErrUnavailable) {
		t.Skip(err)
	}
	require.NoError(t, err)
	return l
}

func waitLoopDone(t *testing.T, l *reactor.Loop) {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("loop never stopped")
	}
}

// requireFree checks that addr can be bound again (the listener is gone).
func requireFree(t *testing.T, addr net.Addr) {
	t.Helper()
	ln, err := net.Listen("tcp", addr.String())
	require.NoError(t, err, "%v is still bound", addr)
	require.NoError(t, ln.Close())
}

// Listen, then Stop before Run: the start queued by Listen runs in the
// shutdown, the port is closed with the other resources, the address is free
// and every descriptor is back.
func TestListenThenStopBeforeRun(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		base := reactortest.FDCount()
		l := newStoppedTestLoop(t, kind)
		f := &countingFactory{}
		p, err := tcpListen(l, f)
		require.NoError(t, err)
		l.Stop()
		waitLoopDone(t, l)
		requireFree(t, p.Addr())
		require.Equal(t, base, reactortest.FDCount(), "descriptors leaked")
		require.Equal(t, f.starts.Load(), f.stops.Load(), "StartFactory/StopFactory unpaired")
		require.ErrorIs(t, l.Run(context.Background()), reactor.ErrNotRestartable)

		// Listen on a stopped loop is refused, and its socket closed.
		_, err = tcpListen(l, f)
		require.ErrorIs(t, err, reactor.ErrStopped)
		require.Equal(t, base, reactortest.FDCount(), "descriptors leaked")
	})
}

// Listen racing with Stop on a running loop: each Listen either fails with
// ErrStopped (its socket closed) or returns a port that is closed by the
// shutdown; nothing stays bound and no descriptor leaks.
func TestListenRacingStop(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		base := reactortest.FDCount()
		for round := 0; round < 10; round++ {
			l := newStoppedTestLoop(t, kind)
			ran := make(chan error, 1)
			go func() { ran <- l.Run(context.Background()) }()
			f := &countingFactory{}
			var mu sync.Mutex
			var ports []*tcpPort
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 8; i++ {
						p, err := tcpListen(l, f)
						if err != nil {
							require.ErrorIs(t, err, reactor.ErrStopped)
							return
						}
						mu.Lock()
						ports = append(ports, p)
						mu.Unlock()
					}
				}()
			}
			if round%2 == 1 {
				time.Sleep(time.Millisecond)
			}
			l.Stop()
			wg.Wait()
			waitLoopDone(t, l)
			if err := <-ran; err != nil { // Stop may win the race with Run
				require.ErrorIs(t, err, reactor.ErrNotRestartable)
			}
			for _, p := range ports {
				requireFree(t, p.Addr())
			}
			require.Equal(t, f.starts.Load(), f.stops.Load(), "StartFactory/StopFactory unpaired")
		}
		require.Equal(t, base, reactortest.FDCount(), "descriptors leaked")
	})
}

type tcpPort = tcp.Port

func tcpListen(l *reactor.Loop, f transports.Factory) (*tcp.Port, error) {
	return tcp.Listen(l, "127.0.0.1:0", f, tcp.ListenOptions{})
}
