package transports_test

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	"github.com/gyre-io/gyre/transports/transporttest"
)

// stoppingClock is a fake clock whose "loop" can be made to stop.
type stoppingClock struct {
	*clock.Fake
	stopping bool
}

func (c *stoppingClock) Stopping() bool { return c.stopping }

// Once the clock's loop is stopping, a failure schedules no retry and a
// retry already scheduled does not connect.
func TestReconnectStopsOnceLoopStopping(t *testing.T) {
	clk := &stoppingClock{Fake: clock.NewFake()}
	f := &transports.ReconnectingClientFactory{
		Clock: clk, InitialDelay: time.Second, Factor: 2, Jitter: -1,
		Factory: transports.FactoryFunc(func(net.Addr) transports.Protocol { return nopProto{} }),
	}
	m := transporttest.NewMemoryReactor(clk)
	c, err := m.ConnectTCP("127.0.0.1:9", f, nil)
	require.NoError(t, err)
	conn := c.(*transporttest.FakeConnector)

	// Stopping while a retry is scheduled: it does not connect.
	require.NoError(t, conn.Fail(syscall.ECONNREFUSED))
	require.Equal(t, 1, clk.Len())
	clk.stopping = true
	clk.Advance(time.Hour)
	require.Equal(t, 1, conn.Attempts(), "retried after the loop began stopping")

	// Stopping while an attempt is in progress: its failure schedules nothing.
	clk2 := &stoppingClock{Fake: clock.NewFake()}
	f2 := &transports.ReconnectingClientFactory{
		Clock: clk2, InitialDelay: time.Second, Jitter: -1,
		Factory: transports.FactoryFunc(func(net.Addr) transports.Protocol { return nopProto{} }),
	}
	c2, err := transporttest.NewMemoryReactor(clk2).ConnectTCP("127.0.0.1:9", f2, nil)
	require.NoError(t, err)
	clk2.stopping = true
	require.NoError(t, c2.(*transporttest.FakeConnector).Fail(syscall.ECONNREFUSED))
	require.Zero(t, clk2.Len(), "a retry was scheduled on a stopping loop")
}

// countingReconnector counts the attempts started while its loop is stopping.
type countingReconnector struct {
	*transports.ReconnectingClientFactory
	loop          *reactor.Loop
	attempts      int
	whileStopping int
	retrying      chan struct{}
}

func (c *countingReconnector) StartedConnecting(cn transports.Connector) {
	c.attempts++
	if c.loop.Stopping() {
		c.whileStopping++
	}
	if c.attempts == 3 {
		close(c.retrying)
	}
	c.ReconnectingClientFactory.StartedConnecting(cn)
}

// A real loop and a refused TCP connect retried every millisecond: once Stop
// is called, no new attempt starts, even while a "before shutdown" trigger
// keeps the loop (and its timers) running.
func TestReconnectStopsWithLoop(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close()) // connecting to addr is refused

		h := reactortest.Start(t, kind)
		f := &countingReconnector{
			ReconnectingClientFactory: &transports.ReconnectingClientFactory{
				InitialDelay: time.Millisecond, Factor: 1.01, Jitter: -1,
				Factory: transports.FactoryFunc(func(net.Addr) transports.Protocol { return nopProto{} }),
			},
			loop:     h.Loop,
			retrying: make(chan struct{}),
		}
		h.Do(func() {
			// A graceful-shutdown hook that holds the loop for 100 ms.
			h.AddSystemEventTrigger(reactor.Shutdown, reactor.Before, func(done func()) {
				h.CallLater(100*time.Millisecond, done)
			})
		})
		_, err = tcp.Connect(h.Loop, addr, f, tcp.ConnectOptions{})
		require.NoError(t, err)
		select {
		case <-f.retrying:
		case <-time.After(10 * time.Second):
			t.Fatal("the factory did not retry")
		}
		h.StopWait()
		require.GreaterOrEqual(t, f.attempts, 3)
		require.Zero(t, f.whileStopping, "attempts started after Stop")
	})
}
