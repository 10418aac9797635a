package streamsuite

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The raw peers: blocking sockets of the kind's family made with socket(2),
// for what Go's net package does not offer (a chosen receive buffer, a
// listener that never accepts, shutdown of a listening socket).

// rawNames numbers the abstract names raw UNIX clients bind to.
var rawNames atomic.Int64

// rawSocket makes a blocking stream socket of k's family (not yet
// connected); the caller closes it. A UNIX socket is bound to a unique
// abstract name first, so that the accepted end's peer address (getpeername)
// tells connections apart as a TCP port does.
func rawSocket(t *testing.T, k *Kind) int {
	t.Helper()
	fd, err := unix.Socket(family(k), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	if k.Network == "unix" {
		name := fmt.Sprintf("@gyre-streamsuite-%d-%d", os.Getpid(), rawNames.Add(1))
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
			_ = unix.Close(fd)
			t.Fatalf("bind %s: %v", name, err)
		}
	}
	return fd
}

func family(k *Kind) int {
	if k.Network == "unix" {
		return unix.AF_UNIX
	}
	return unix.AF_INET
}

// sockaddrOf is the socket address of a (loopback IPv4 or UNIX) address.
func sockaddrOf(t *testing.T, k *Kind, a net.Addr) unix.Sockaddr {
	t.Helper()
	switch a := a.(type) {
	case *net.TCPAddr:
		sa := &unix.SockaddrInet4{Port: a.Port}
		copy(sa.Addr[:], a.IP.To4())
		return sa
	case *net.UnixAddr:
		return &unix.SockaddrUnix{Name: a.Name}
	}
	t.Fatalf("%s: no socket address for %T %v", k.Name, a, a)
	return nil
}

// sockaddrString writes a socket address as its net.Addr's String does
// ("" for an unnamed UNIX socket; "@name" for an abstract one).
func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return (&net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}).String()
	case *unix.SockaddrInet6:
		return (&net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}).String()
	case *unix.SockaddrUnix:
		return a.Name
	}
	return ""
}

// rawListener makes a raw listening socket of k's family on a fresh address
// with the given backlog; it returns the descriptor (closed at cleanup too,
// harmlessly if the test closed it) and the address to connect to.
func rawListener(t *testing.T, k *Kind, backlog int) (fd int, addr string) {
	t.Helper()
	fd, err := unix.Socket(family(k), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if k.Network == "unix" {
		sa = &unix.SockaddrUnix{Name: k.NewAddr(t)}
	}
	if err := unix.Bind(fd, sa); err != nil {
		_ = unix.Close(fd)
		t.Fatalf("bind: %v", err)
	}
	require.NoError(t, unix.Listen(fd, backlog))
	got, err := unix.Getsockname(fd)
	require.NoError(t, err)
	return fd, sockaddrString(got)
}

// closedAddr is an address of k's network where nothing listens, so a
// connect is refused (ECONNREFUSED): a TCP port just closed; a UNIX socket
// file whose socket is bound but closed.
func closedAddr(t *testing.T, k *Kind) string {
	t.Helper()
	if k.Network == "unix" {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		path := k.NewAddr(t)
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: path})
		_ = unix.Close(fd)
		require.NoError(t, err)
		return path
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// resetFD closes fd abortively: with SO_LINGER 0 on TCP (RST). An AF_UNIX
// close resets (ECONNRESET at the peer) only when unread bytes are left in
// fd's receive queue; the scenarios that need more are gated by
// Caps.ResetWithoutUnread.
func resetFD(t *testing.T, k *Kind, fd int) {
	t.Helper()
	if k.Network == "tcp" {
		require.NoError(t, unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}))
	}
	require.NoError(t, unix.Close(fd))
}

// resetConn is resetFD for a Go net.Conn.
func resetConn(t *testing.T, c net.Conn) {
	t.Helper()
	if tc, ok := c.(*net.TCPConn); ok {
		require.NoError(t, tc.SetLinger(0))
	}
	require.NoError(t, c.Close())
}

// closeWrite half-closes a Go net.Conn (TCP or UNIX).
func closeWrite(c net.Conn) error {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		return errors.New("no CloseWrite on " + fmt.Sprintf("%T", c))
	}
	return cw.CloseWrite()
}

// fdOf is the descriptor of a stream transport (-1 when it has none or is
// closed).
func fdOf(tr any) int {
	if f, ok := tr.(interface{ Fd() int }); ok {
		return f.Fd()
	}
	return -1
}

// peerAddrString is the address the accepted end of raw client fd sees as
// its peer.
func peerAddrString(t *testing.T, fd int) string {
	t.Helper()
	la, err := unix.Getsockname(fd)
	require.NoError(t, err)
	return sockaddrString(la)
}
