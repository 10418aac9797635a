package tcp_test

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
)

// fullBacklog returns the address of a loopback listener (listen backlog 0,
// never accepting) whose accept queue is full, so that the SYN of a further
// connect is dropped and the connect hangs. It skips the test when the kernel
// completes connections anyway. Everything is closed at cleanup.
func fullBacklog(t *testing.T) string {
	t.Helper()
	var fds []int
	t.Cleanup(func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	})
	lfd := rawSocket(t)
	fds = append(fds, lfd)
	require.NoError(t, unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(lfd, 0))
	sa, err := unix.Getsockname(lfd)
	require.NoError(t, err)
	port := sa.(*unix.SockaddrInet4).Port
	target := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}

	connect := func() int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		fds = append(fds, fd)
		if err := unix.Connect(fd, target); err != nil && !errors.Is(err, unix.EINPROGRESS) {
			t.Fatalf("filling the backlog: connect: %v", err)
		}
		return fd
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
	first := connect()
	if !connected(first, 2*time.Second) {
		t.Fatalf("the first connection to the never-accepting listener did not complete")
	}
	probe := connect()
	if connected(probe, 100*time.Millisecond) {
		t.Skip("the kernel completed a connection to a full accept queue (syncookies?); no way to make connect hang on loopback")
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// TestConnectTimeoutFullBacklog: a connect to a listener whose accept queue
// is full hangs; the connector's timeout cancels it and the factory sees
// ClientConnectionFailed wrapping ErrConnectTimeout, with no late
// BuildProtocol and no descriptor left behind.
func TestConnectTimeoutFullBacklog(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		addr := fullBacklog(t)
		h := reactortest.Start(t, kind)
		before := reactortest.FDCount()
		f := &cancelClient{proto: newStrict(t, "never"), done: make(chan struct{})}
		_, err := tcp.Connect(h.Loop, addr, f, tcp.ConnectOptions{Timeout: 200 * time.Millisecond})
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
func TestStopConnectingHungConnect(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		addr := fullBacklog(t)
		h := reactortest.Start(t, kind)
		f := &cancelClient{proto: newStrict(t, "never"), done: make(chan struct{})}
		conn, err := tcp.Connect(h.Loop, addr, f, tcp.ConnectOptions{Timeout: 150 * time.Millisecond})
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
