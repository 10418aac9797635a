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
	"github.com/gyre-io/gyre/reactor/backend"
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

type connState int

const (
	stateIdle connState = iota
	stateResolving
	stateConnecting
	stateConnected
)

// Connector is one outgoing TCP connection's controller
// (transports.Connector). Its methods run on the loop; Destination is
// goroutine-safe.
type Connector struct {
	loop    *reactor.Loop
	host    string
	port    uint16
	dest    net.Addr
	factory transports.ClientFactory
	opts    ConnectOptions
	track   int

	state     connState
	attempt   uint64
	fd        int
	connOp    backend.Op
	connOn    bool
	raw       unix.RawSockaddrAny
	target    netip.AddrPort
	timer     transports.DelayedCall
	failWith  error
	conn      *Conn
	shutdown  bool
	factoryOn bool
}

var _ transports.Connector = (*Connector)(nil)

// Connect starts connecting to addr ("host:port"; host names are resolved off
// the loop) on loop and returns the Connector. The factory sees
// StartedConnecting, then BuildProtocol on success or ClientConnectionFailed on
// failure, and ClientConnectionLost when an established connection ends.
// Goroutine-safe: the attempt itself starts on the loop's next turn.
func Connect(loop *reactor.Loop, addr string, f transports.ClientFactory, opts ConnectOptions) (*Connector, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: %v", ErrBadAddress, err)}
	}
	port, err := net.LookupPort("tcp", portStr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("%w: %v", ErrBadAddress, err)}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	c := &Connector{loop: loop, host: host, port: uint16(port), factory: f, opts: opts, fd: -1, track: -1}
	if a, err := netip.ParseAddr(host); err == nil {
		c.dest = net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, c.port))
	} else {
		c.dest = &hostAddr{addr: addr}
	}
	if err := loop.Call(func() { _ = c.Connect() }); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: c.dest, Err: err}
	}
	return c, nil
}

// hostAddr is the destination of a connector given a host name.
type hostAddr struct{ addr string }

func (h *hostAddr) Network() string { return "tcp" }
func (h *hostAddr) String() string  { return h.addr }

// Destination implements transports.Connector.
func (c *Connector) Destination() net.Addr { return c.dest }

// Connect implements transports.Connector: (re)starts an attempt. Loop only.
func (c *Connector) Connect() error {
	if c.shutdown {
		return reactor.ErrStopped
	}
	if c.state != stateIdle {
		return nil
	}
	if c.track < 0 {
		c.track = c.loop.Track(c)
	}
	if !c.factoryOn {
		c.factoryOn = true
		if fs, ok := c.factory.(transports.FactoryStarter); ok {
			fs.StartFactory()
		}
	}
	c.attempt++
	c.failWith = nil
	c.factory.StartedConnecting(c)
	if c.state != stateIdle { // StartedConnecting may have called Connect
		return nil
	}
	if a, err := netip.ParseAddr(c.host); err == nil {
		c.state = stateConnecting
		c.dial(netip.AddrPortFrom(a.Unmap(), c.port))
		return nil
	}
	c.state = stateResolving
	attempt := c.attempt
	host := c.host
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
	go func() {
		defer cancel()
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		_ = c.loop.Call(func() { c.resolved(attempt, ips, err) })
	}()
	return nil
}

func (c *Connector) resolved(attempt uint64, ips []netip.Addr, err error) {
	if attempt != c.attempt || c.state != stateResolving {
		return
	}
	if err == nil && len(ips) == 0 {
		err = fmt.Errorf("no addresses for %q", c.host)
	}
	if err != nil {
		c.fail(&net.OpError{Op: "dial", Net: "tcp", Addr: c.dest, Err: err})
		return
	}
	ip := ips[0].Unmap()
	for _, a := range ips {
		if a = a.Unmap(); a.Is4() {
			ip = a
			break
		}
	}
	c.state = stateConnecting
	c.dial(netip.AddrPortFrom(ip, c.port))
}

func (c *Connector) dial(ap netip.AddrPort) {
	c.target = ap
	fd, err := unix.Socket(family(ap.Addr()), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		c.failLater(c.opErr(os.NewSyscallError("socket", err)))
		return
	}
	if c.opts.BindAddr.IsValid() {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if err := unix.Bind(fd, toSockaddr(c.opts.BindAddr)); err != nil {
			_ = unix.Close(fd)
			c.failLater(c.opErr(os.NewSyscallError("bind", err)))
			return
		}
	}
	c.fd = fd
	n := rawAddr(ap, &c.raw)
	c.connOp = backend.Op{Kind: backend.KindConnect, Fd: int32(fd), Addr: &c.raw, AddrLen: n}
	if err := c.loop.Submit(&c.connOp, c); err != nil {
		_ = unix.Close(fd)
		c.fd = -1
		c.failLater(c.opErr(err))
		return
	}
	c.connOn = true
	c.timer = c.loop.CallLater(c.opts.Timeout, c.timedOut)
}

func (c *Connector) opErr(err error) error {
	var dest net.Addr = c.dest
	if c.target.IsValid() {
		dest = net.TCPAddrFromAddrPort(c.target)
	}
	return &net.OpError{Op: "dial", Net: "tcp", Addr: dest, Err: err}
}

func (c *Connector) timedOut() {
	if c.connOn && c.failWith == nil {
		c.failWith = c.opErr(transports.ErrConnectTimeout)
		c.loop.Cancel(c.connOp.Token)
	}
}

// Complete implements reactor.Handler.
func (c *Connector) Complete(op *backend.Op, comp *backend.Completion) {
	c.connOn = false
	c.timer.Cancel()
	fd := c.fd
	c.fd = -1
	if c.failWith != nil || comp.Res < 0 {
		_ = unix.Close(fd)
		err := c.failWith
		if err == nil {
			err = c.opErr(os.NewSyscallError("connect", comp.Err()))
		}
		c.fail(err)
		return
	}
	if !c.opts.Nagle {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if c.opts.KeepAlive > 0 {
		_ = setKeepAlive(fd, true, c.opts.KeepAlive)
	}
	remote := remoteAddr(fd)
	if remote == nil {
		remote = net.TCPAddrFromAddrPort(c.target)
	}
	conn := newConn(c.loop, fd, stream.ConnConfig{Local: localAddr(fd), Remote: remote, Watermarks: c.opts.Watermarks, OnLost: c.connLost})
	var proto transports.Protocol
	func() {
		defer func() {
			if err := reactor.Recovered(recover()); err != nil {
				c.loop.ReportError(err)
				proto = nil
			}
		}()
		proto = c.factory.BuildProtocol(remote)
	}()
	if proto == nil {
		_ = unix.Close(fd)
		c.fail(c.opErr(ErrRefused))
		return
	}
	c.state = stateConnected
	c.conn = conn
	conn.start(proto)
}

// ErrRefused is the failure reason when the client factory's BuildProtocol
// returned nil.
var ErrRefused = fmt.Errorf("gyre/tcp: factory refused the connection")

func (c *Connector) connLost(conn *stream.Conn, reason error) {
	if c.conn == nil || &c.conn.Conn != conn {
		return
	}
	c.conn = nil
	c.state = stateIdle
	c.factory.ClientConnectionLost(c, reason)
	c.maybeStop()
}

func (c *Connector) failLater(err error) {
	attempt := c.attempt
	c.loop.CallLater(0, func() {
		if c.attempt == attempt && c.state == stateConnecting {
			c.fail(err)
		}
	})
}

func (c *Connector) fail(err error) {
	c.state = stateIdle
	c.factory.ClientConnectionFailed(c, err)
	c.maybeStop()
}

// maybeStop stops the factory when the connector ends for good (the factory did
// not reconnect from its callback).
func (c *Connector) maybeStop() {
	if c.state != stateIdle {
		return
	}
	if c.factoryOn {
		c.factoryOn = false
		if fs, ok := c.factory.(transports.FactoryStarter); ok {
			fs.StopFactory()
		}
	}
	c.loop.Untrack(c.track)
	c.track = -1
}

// StopConnecting implements transports.Connector: an attempt in progress ends
// with ClientConnectionFailed(ErrConnectStopped). Loop only.
func (c *Connector) StopConnecting() error {
	switch c.state {
	case stateResolving:
		c.attempt++ // the resolver's answer is now stale
		c.fail(c.opErr(transports.ErrConnectStopped))
		return nil
	case stateConnecting:
		if c.failWith == nil {
			c.failWith = c.opErr(transports.ErrConnectStopped)
		}
		if c.connOn {
			c.loop.Cancel(c.connOp.Token)
		}
		return nil
	}
	return transports.ErrNotConnected
}

// Disconnect implements transports.Connector: stop connecting, or lose the
// established connection. Loop only.
func (c *Connector) Disconnect() {
	switch c.state {
	case stateResolving, stateConnecting:
		_ = c.StopConnecting()
	case stateConnected:
		if c.conn != nil {
			_ = c.conn.LoseConnection()
		}
	}
}

// Clock is the connector's loop as a time source (ReconnectingClientFactory
// schedules its retries on it when given no Clock).
func (c *Connector) Clock() transports.Clock { return c.loop }

// Transport is the established connection, or nil.
func (c *Connector) Transport() *Conn { return c.conn }

// Shutdown implements reactor.Resource.
func (c *Connector) Shutdown(error) {
	c.shutdown = true
	if c.state == stateResolving || c.state == stateConnecting {
		_ = c.StopConnecting()
	}
}
