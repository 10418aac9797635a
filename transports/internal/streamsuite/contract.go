package streamsuite

import (
	"errors"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
)

// listenerFD finds this process's listening socket bound to addr (-1 if none).
func listenerFD(addr net.Addr) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != 1 {
			continue
		}
		if la, err := unix.Getsockname(fd); err == nil && sockaddrString(la) == addr.String() {
			return fd
		}
	}
	return -1
}

// fdLink is what /proc/self/fd/fd names ("socket:[inode]"), "" if fd is
// not open: a descriptor number reused for another socket names another inode.
func fdLink(fd int) string {
	l, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	return l
}

// waitFor polls cond every millisecond for at most d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// peerOf connects a raw peer (small receive buffer) to port, waits for the
// accepted connection's protocol and returns the peer and the server-side
// descriptor.
func peerOf(t *testing.T, k *Kind, port Port, built func() []*strict) (peer int, s *strict, serverFD int) {
	t.Helper()
	peer = rawPeerSocket(t, k)
	t.Cleanup(func() { _ = unix.Close(peer) })
	require.NoError(t, unix.Connect(peer, sockaddrOf(t, k, port.Addr())))
	s = waitBuilt(t, built, 1)[0]
	waitMade(t, s)
	serverFD = socketFD(port.Addr().String(), peerAddrString(t, peer))
	require.GreaterOrEqual(t, serverFD, 0)
	return peer, s, serverFD
}

// TestLoseConnectionStopsReading: after LoseConnection (here still flushing
// to a peer that does not read) the connection no longer reads: what the peer
// sends stays in the socket's receive queue, and DataReceived is not called
// (strict checks).
func testLoseConnectionStopsReading(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind, reactor.Config{DrainTimeout: 200 * time.Millisecond})
		port, built := strictServer(t, k, h, func(int) *strict {
			s := newStrict(t, "server")
			s.onMade = func(s *strict) { _ = s.tr.Write(make([]byte, stopBig)) }
			return s
		})
		peer, s, serverFD := peerOf(t, k, port, built)
		h.Do(func() { require.NoError(t, s.lose()) })
		// The recv's cancel reaches the kernel at the loop's next wait; two
		// more turns make sure it has, so the bytes below cannot race with a
		// recv still armed (those would be read and dropped, as documented).
		h.Do(func() {})
		h.Do(func() {})
		const n = 1000
		_, err := unix.Write(peer, make([]byte, n))
		require.NoError(t, err)
		queued := func() bool {
			v, err := unix.IoctlGetInt(serverFD, unix.SIOCINQ)
			return err == nil && v == n
		}
		require.True(t, waitFor(5*time.Second, queued), "the peer's bytes were read after LoseConnection")
		h.Do(func() {}) // a turn with the bytes there: still unread
		require.True(t, queued())
		_, lost, got, _ := s.state()
		require.Zero(t, lost, "LoseConnection cannot have finished: the peer reads nothing")
		require.Zero(t, got)
	})
}

// TestPortCloseDone: Close returns at once; the port's Done is closed once its
// accept has finished, and then the listening descriptor is gone and the
// factory stopped.
func testPortCloseDone(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		f := &startStopFactory{}
		port, err := k.listen(t, h, f)
		require.NoError(t, err)
		h.Do(func() {}) // accepting
		fd := listenerFD(port.Addr())
		require.GreaterOrEqual(t, fd, 0)
		link := fdLink(fd)
		select {
		case <-port.Done():
			t.Fatal("Done closed before Close")
		default:
		}
		h.Do(func() { require.NoError(t, port.Close()) })
		select {
		case <-port.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("Done not closed after Close")
		}
		require.NotEqual(t, link, fdLink(fd), "listening descriptor still open after Done")
		require.EqualValues(t, 1, f.stops.Load())
		h.Do(func() { require.ErrorIs(t, port.Close(), transports.ErrClosed) })
	})
}

// TestAcceptEINVALClosesPort: when the listening socket stops listening
// under the port (shutdown(2) from elsewhere), accept fails with EINVAL at
// once, every time; the port reports it once and closes (Done, descriptor
// closed) instead of re-arming in a loop.
func testAcceptEINVALClosesPort(t *testing.T, k *Kind) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		f := &startStopFactory{}
		port, err := k.listen(t, h, f)
		require.NoError(t, err)
		h.Do(func() {})
		fd := listenerFD(port.Addr())
		require.GreaterOrEqual(t, fd, 0)
		link := fdLink(fd)
		require.NoError(t, unix.Shutdown(fd, unix.SHUT_RD))
		select {
		case <-port.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the port did not close after accept failed with EINVAL")
		}
		require.NotEqual(t, link, fdLink(fd), "listening descriptor still open after Done")
		var einval int
		for _, err := range h.Errors() {
			if errors.Is(err, syscall.EINVAL) {
				einval++
			}
		}
		require.Equal(t, 1, einval, "errors: %v", h.Errors())
		require.EqualValues(t, 1, f.stops.Load())
	})
}

// TestHalfCloseFailureIsLost: a half-close that fails (the peer reset the
// connection while we were not reading, so shutdown(2) returns ENOTCONN) ends
// the connection with ErrConnectionLost wrapping ENOTCONN — not
// WriteConnectionLost after CloseWrite, not a clean ErrConnectionDone after
// LoseConnection.
func testHalfCloseFailureIsLost(t *testing.T, k *Kind) {
	for _, how := range []string{"CloseWrite", "LoseConnection"} {
		t.Run(how, func(t *testing.T) {
			reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
				h := reactortest.Start(t, kind)
				hs := &halfStrict{strict: newStrict(t, "server")}
				hs.onMade = func(s *strict) { s.tr.PauseReading() }
				port, err := k.listen(t, h, transports.FactoryFunc(func(net.Addr) transports.Protocol { return hs }))
				require.NoError(t, err)
				peer, s, serverFD := peerOf(t, k, port, func() []*strict { return []*strict{hs.strict} })
				// Reset from the peer; our side (not reading) sees only the
				// socket's state change.
				resetFD(t, k, peer)
				require.True(t, waitFor(5*time.Second, func() bool {
					info, err := unix.GetsockoptTCPInfo(serverFD, unix.IPPROTO_TCP, unix.TCP_INFO)
					return err == nil && info.State == 7 // TCP_CLOSE
				}), "the reset did not arrive")
				h.Do(func() {
					if how == "CloseWrite" {
						require.NoError(t, s.transport().CloseWrite())
					} else {
						require.NoError(t, s.lose())
					}
				})
				s.waitLost(t, 5*time.Second)
				_, _, _, reason := s.state()
				require.ErrorIs(t, reason, transports.ErrConnectionLost)
				require.ErrorIs(t, reason, syscall.ENOTCONN)
				require.Zero(t, hs.writeLost.Load(), "WriteConnectionLost after a failed half-close")
			})
		})
	}
}

// startStopFactory counts StartFactory/StopFactory; it refuses connections.
type startStopFactory struct{ starts, stops atomic.Int32 }

func (f *startStopFactory) BuildProtocol(net.Addr) transports.Protocol { return nil }
func (f *startStopFactory) StartFactory()                              { f.starts.Add(1) }
func (f *startStopFactory) StopFactory()                               { f.stops.Add(1) }
