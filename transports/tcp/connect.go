package tcp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// ConnectOptions configure Connect. The zero value is a good default.
type ConnectOptions struct {
	// Timeout for one attempt; default 30 s (Twisted's default).
	Timeout time.Duration
	// BindAddr, if valid, is the local address to bind before connecting.
	BindAddr netip.AddrPort
	// Nagle keeps Nagle's algorithm on (default off: TCP_NODELAY).
	Nagle bool
	// KeepAlive, when positive, turns keep-alive on with that idle time.
	KeepAlive time.Duration
	// Watermarks for producers on the connection.
	Watermarks transports.Watermarks
}

// Connector is one outgoing TCP connection's controller
// (transports.Connector): a stream.Connector (the state machine, see its
// documentation) with TCP's resolution and socket options. Its methods run
// on the loop; Destination is goroutine-safe.
type Connector struct {
	*stream.Connector
}

var _ transports.Connector = (*Connector)(nil)

// ErrRefused is the failure reason when the client factory's BuildProtocol
// returned nil (stream.ErrRefused).
var ErrRefused = stream.ErrRefused

// Connect starts connecting to addr ("host:port"; host names are resolved off
// the loop, an IPv4 address preferred) on loop and returns the Connector. The
// factory sees StartedConnecting, then BuildProtocol on success or
// ClientConnectionFailed on failure, and ClientConnectionLost when an
// established connection ends. Goroutine-safe: the attempt itself starts on
// the loop's next turn.
func Connect(loop *reactor.Loop, addr string, f transports.ClientFactory, opts ConnectOptions) (*Connector, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: %v", ErrBadAddress, err)}
	}
	p, err := net.LookupPort("tcp", portStr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: %v", ErrBadAddress, err)}
	}
	port := uint16(p)
	cfg := stream.ConnectorConfig{
		Net:     "tcp",
		Timeout: opts.Timeout,
		Socket:  func(t *stream.Target) (int, error) { return dialSocket(t, opts) },
		NewConn: func(loop *reactor.Loop, fd int, t *stream.Target) (*stream.Conn, transports.Transport) {
			c := connectedConn(loop, fd, t, opts)
			return &c.Conn, c
		},
	}
	if a, err := netip.ParseAddr(host); err == nil {
		ap := netip.AddrPortFrom(a.Unmap(), port)
		cfg.Dest = net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, port))
		cfg.Target = target(ap)
	} else {
		cfg.Dest = &hostAddr{addr: addr}
		cfg.Resolve = func(ctx context.Context) (stream.Target, error) { return resolveDial(ctx, host, port) }
	}
	c := &Connector{stream.NewConnector(loop, f, cfg)}
	if err := c.Start(c); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: cfg.Dest, Err: err}
	}
	return c, nil
}

// hostAddr is the destination of a connector given a host name.
type hostAddr struct{ addr string }

func (h *hostAddr) Network() string { return "tcp" }
func (h *hostAddr) String() string  { return h.addr }

func target(ap netip.AddrPort) stream.Target {
	t := stream.Target{Addr: net.TCPAddrFromAddrPort(ap)}
	t.Len = rawAddr(ap, &t.Raw)
	return t
}

// resolveDial resolves host (off the loop), preferring an IPv4 address.
func resolveDial(ctx context.Context, host string, port uint16) (stream.Target, error) {
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err == nil && len(ips) == 0 {
		err = fmt.Errorf("no addresses for %q", host)
	}
	if err != nil {
		return stream.Target{}, err
	}
	ip := ips[0].Unmap()
	for _, a := range ips {
		if a = a.Unmap(); a.Is4() {
			ip = a
			break
		}
	}
	return target(netip.AddrPortFrom(ip, port)), nil
}

// dialSocket opens the socket for t, bound to opts.BindAddr if that is valid.
func dialSocket(t *stream.Target, opts ConnectOptions) (int, error) {
	fd, err := unix.Socket(int(t.Raw.Addr.Family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if opts.BindAddr.IsValid() {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err := unix.Bind(fd, toSockaddr(opts.BindAddr)); err != nil {
			_ = unix.Close(fd)
			return -1, os.NewSyscallError("bind", err)
		}
	}
	return fd, nil
}

// connectedConn applies the connector's socket options to the connected
// socket and wraps it.
func connectedConn(loop *reactor.Loop, fd int, t *stream.Target, opts ConnectOptions) *Conn {
	if !opts.Nagle {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if opts.KeepAlive > 0 {
		_ = setKeepAlive(fd, true, opts.KeepAlive)
	}
	remote := remoteAddr(fd)
	if remote == nil {
		remote = t.Addr
	}
	return newConn(loop, fd, stream.ConnConfig{Local: localAddr(fd), Remote: remote, Watermarks: opts.Watermarks})
}

// Transport is the established connection, or nil.
func (c *Connector) Transport() *Conn {
	t, _ := c.Connector.Transport().(*Conn)
	return t
}
