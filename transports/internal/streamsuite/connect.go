package streamsuite

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// fullBacklog returns the address of a listener of k's family (listen
// backlog 0, never accepting) whose accept queue is full, so that a further
// connect cannot complete: on TCP the SYN is dropped and the connect hangs;
// on UNIX a non-blocking connect fails with EAGAIN (a blocking one would
// wait). It skips the test when the kernel completes connections anyway.
// Everything is closed at cleanup.
func fullBacklog(t *testing.T, k *Kind) string {
	t.Helper()
	var fds []int
	t.Cleanup(func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	})
	lfd, addr := rawListener(t, k, 0)
	fds = append(fds, lfd)
	sa, err := unix.Getsockname(lfd)
	require.NoError(t, err)

	// connect starts a non-blocking connect; it reports whether the queue
	// refused it at once (AF_UNIX: EAGAIN).
	connect := func() (fd int, refused bool) {
		fd, err := unix.Socket(family(k), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		fds = append(fds, fd)
		err = unix.Connect(fd, sa)
		if errors.Is(err, unix.EAGAIN) && k.Network == "unix" {
			return fd, true
		}
		if err != nil && !errors.Is(err, unix.EINPROGRESS) {
			t.Fatalf("filling the backlog: connect: %v", err)
		}
		return fd, false
	}
	connected := func(fd int, wait time.Duration) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(pfd, int(wait/time.Millisecond))
		if err != nil || n == 0 {
			return false
		}
		soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		return err == nil && soErr == 0
	}
	// The queue (backlog 0) takes one connection; the next must hang.
	first, refused := connect()
	if refused || !connected(first, 2*time.Second) {
		t.Fatalf("the first connection to the never-accepting listener did not complete")
	}
	probe, refused := connect()
	if !refused && connected(probe, 100*time.Millisecond) {
		t.Skip("the kernel completed a connection to a full accept queue (syncookies?); no way to make connect hang on loopback")
	}
	return addr
}

// TestConnectTimeoutFullBacklog: a connect to a listener whose accept queue
// is full hangs; the connector's timeout cancels it and the factory sees
// ClientConnectionFailed wrapping ErrConnectTimeout, with no late
// BuildProtocol and no descriptor left behind.
func testConnectTimeoutFullBacklog(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		addr := fullBacklog(t, k)
		h := reactortest.Start(t, kind)
		before := reactortest.FDCount()
		f := &cancelClient{proto: newStrict(t, "never"), done: make(chan struct{})}
		_, err := k.Connect(h.Loop, addr, f, 200*time.Millisecond)
		require.NoError(t, err)
		select {
		case <-f.done:
		case <-time.After(10 * time.Second):
			t.Fatal("connect timeout not reported")
		}
		settle(h)
		f.mu.Lock()
		defer f.mu.Unlock()
		require.Len(t, f.failed, 1)
		require.Empty(t, f.lost)
		require.ErrorIs(t, f.failed[0], transports.ErrConnectTimeout)
		var op *net.OpError
		require.ErrorAs(t, f.failed[0], &op)
		made, _, _, _ := f.proto.state()
		require.Equal(t, 0, made, "late ConnectionMade after the timeout")
		require.LessOrEqual(t, reactortest.FDCount(), before, "the timed-out socket was not closed")
	})
}

// TestStopConnectingHungConnect: StopConnecting on a connect that hangs (full
// backlog) ends it with ErrConnectStopped; Connect then starts a new attempt
// that times out.
func testStopConnectingHungConnect(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		addr := fullBacklog(t, k)
		h := reactortest.Start(t, kind)
		f := &cancelClient{proto: newStrict(t, "never"), done: make(chan struct{})}
		conn, err := k.Connect(h.Loop, addr, f, 150*time.Millisecond)
		require.NoError(t, err)
		time.Sleep(20 * time.Millisecond) // the SYN is out and dropped
		h.Do(func() {
			require.NoError(t, conn.StopConnecting())
			require.NoError(t, conn.StopConnecting(), "a second StopConnecting during the same attempt")
		})
		<-f.done
		f.mu.Lock()
		require.Len(t, f.failed, 1)
		require.ErrorIs(t, f.failed[0], transports.ErrConnectStopped)
		f.done = make(chan struct{})
		f.mu.Unlock()
		h.Do(func() {
			require.ErrorIs(t, conn.StopConnecting(), transports.ErrNotConnected)
			require.NoError(t, conn.Connect())
		})
		select {
		case <-f.done:
		case <-time.After(10 * time.Second):
			t.Fatal("second attempt did not time out")
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		require.Len(t, f.failed, 2)
		require.ErrorIs(t, f.failed[1], transports.ErrConnectTimeout)
		require.False(t, errors.Is(f.failed[1], syscall.ECONNREFUSED))
	})
}
