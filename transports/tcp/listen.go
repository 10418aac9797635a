// Package tcp is gyre's TCP transport: Listen (Twisted's listenTCP) returns a
// Port; Connect (connectTCP) returns a Connector; each connection is a *Conn
// implementing transports.TCPTransport. The same code runs on the io_uring and
// the epoll backend.
package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/internal/sockaddr"
	"github.com/gyre-io/gyre/transports/stream"
)

// ListenOptions configure Listen. The zero value is a good default.
type ListenOptions struct {
	// Backlog of the listening socket; default 511 (the kernel caps it at
	// net.core.somaxconn).
	Backlog int
	// ReusePort sets SO_REUSEPORT so several loops can each listen on the same
	// address (one accept queue per loop).
	ReusePort bool
	// NoReuseAddr leaves SO_REUSEADDR off (it is on by default, as in Twisted
	// and Go).
	NoReuseAddr bool
	// V6Only makes a listener on "::" or "[::]" accept IPv6 only (the default is
	// dual stack).
	V6Only bool
	// Nagle keeps Nagle's algorithm on for accepted connections (default off:
	// TCP_NODELAY, as Go's net does).
	Nagle bool
	// KeepAlive, when positive, turns keep-alive on with that idle time.
	KeepAlive time.Duration
	// Watermarks for producers on accepted connections.
	Watermarks transports.Watermarks
}

// Port is a listening TCP socket (transports.Port): a stream.Listener (the
// accept loop, see its documentation) on a TCP socket. Close must be called
// on the loop; Addr and Done are goroutine-safe.
type Port struct {
	*stream.Listener
}

var _ transports.Port = (*Port)(nil)

// ErrBadAddress is returned (wrapped) for an address that cannot be parsed.
var ErrBadAddress = errors.New("gyre/tcp: bad address")

// Listen binds and listens on addr ("host:port"; empty host: every address,
// dual stack; port 0: any free port) and accepts connections on loop, building
// a protocol for each with f. Binding happens before Listen returns, so an
// address in use is reported here (errors.Is(err, syscall.EADDRINUSE)).
// Accepting starts on the loop's next turn. Goroutine-safe.
func Listen(loop *reactor.Loop, addr string, f transports.Factory, opts ListenOptions) (*Port, error) {
	ap, err := resolveListen(addr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Err: err}
	}
	fd, err := listenSocket(ap, opts)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: err}
	}
	return listenOn(loop, fd, f, opts)
}

// listenOn accepts on fd, a bound and listening TCP socket (owned from now
// on), with accepted connections set up per opts.
func listenOn(loop *reactor.Loop, fd int, f transports.Factory, opts ListenOptions) (*Port, error) {
	laddr, _ := sockaddr.LocalTCP(fd).(*net.TCPAddr)
	l, err := stream.Listen(loop, fd, f, stream.ListenerConfig{
		Net:  "tcp",
		Addr: laddr,
		NewConn: func(loop *reactor.Loop, fd int) (*stream.Conn, transports.Transport) {
			c := acceptedConn(loop, fd, opts)
			return &c.Conn, c
		},
	})
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: laddr, Err: err}
	}
	return &Port{l}, nil
}

// acceptedConn applies the listener's socket options to an accepted socket
// and wraps it.
func acceptedConn(loop *reactor.Loop, fd int, opts ListenOptions) *Conn {
	if !opts.Nagle {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if opts.KeepAlive > 0 {
		_ = setKeepAlive(fd, true, opts.KeepAlive)
	}
	return newConn(loop, fd, stream.ConnConfig{Local: sockaddr.LocalTCP(fd), Remote: sockaddr.RemoteTCP(fd), Watermarks: opts.Watermarks})
}

func resolveListen(addr string) (netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %v", ErrBadAddress, err)
	}
	port, err := net.LookupPort("tcp", portStr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %v", ErrBadAddress, err)
	}
	if host == "" {
		return netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(port)), nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a, uint16(port)), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", host)
	if err != nil || len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("%w: resolving %q: %v", ErrBadAddress, host, err)
	}
	for _, ip := range ips {
		if ip = ip.Unmap(); ip.Is4() {
			return netip.AddrPortFrom(ip, uint16(port)), nil
		}
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(port)), nil
}

func family(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func listenSocket(ap netip.AddrPort, opts ListenOptions) (int, error) {
	fam := family(ap.Addr())
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil && fam == unix.AF_INET6 && ap.Addr().IsUnspecified() {
		// No IPv6 on this host: fall back to every IPv4 address.
		ap = netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port())
		fam = unix.AF_INET
		fd, err = unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	}
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	fail := func(call string, err error) (int, error) {
		_ = unix.Close(fd)
		return -1, os.NewSyscallError(call, err)
	}
	if !opts.NoReuseAddr {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fail("setsockopt", err)
		}
	}
	if opts.ReusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail("setsockopt", err)
		}
	}
	if fam == unix.AF_INET6 {
		v := 0
		if opts.V6Only {
			v = 1
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v); err != nil {
			return fail("setsockopt", err)
		}
	}
	if err := unix.Bind(fd, sockaddr.Sockaddr(ap)); err != nil {
		return fail("bind", err)
	}
	backlog := opts.Backlog
	if backlog <= 0 {
		backlog = 511
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return fail("listen", err)
	}
	return fd, nil
}
