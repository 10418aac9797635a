package transporttest

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports"
)

// ErrAlreadyConnecting is returned by FakeConnector.Connect while an attempt is
// in progress or a connection is up.
var ErrAlreadyConnecting = errors.New("transporttest: connector already connecting or connected")

// MemoryReactor records listen and connect requests instead of touching the
// network (Twisted's MemoryReactor). Code under test calls ListenTCP and
// ConnectTCP; the test inspects Listens and Connects and drives the returned
// FakePort and FakeConnector: accept a connection, make a connect attempt
// succeed or fail, end a connection.
//
// Options are recorded as given (for example a tcp.ListenOptions value) and not
// interpreted. Factories' StartFactory/StopFactory are not called. Not
// goroutine-safe.
type MemoryReactor struct {
	// Listens and Connects record every successful call, in order.
	Listens  []*ListenCall
	Connects []*ConnectCall
	// ListenErr and ConnectErr, when set, make ListenTCP and ConnectTCP fail
	// with them, recording nothing (Twisted's RaisingMemoryReactor).
	ListenErr, ConnectErr error

	clk      clock.Clock
	nextPort int
}

// ListenCall is one recorded ListenTCP.
type ListenCall struct {
	Addr    string
	Factory transports.Factory
	Options any
	Port    *FakePort
}

// ConnectCall is one recorded ConnectTCP.
type ConnectCall struct {
	Addr      string
	Factory   transports.ClientFactory
	Options   any
	Connector *FakeConnector
}

// NewMemoryReactor returns an empty reactor whose transports use clk (a fresh
// clock.Fake when nil).
func NewMemoryReactor(clk clock.Clock) *MemoryReactor {
	if clk == nil {
		clk = clock.NewFake()
	}
	return &MemoryReactor{clk: clk, nextPort: 30000}
}

var _ clock.Clock = (*MemoryReactor)(nil)

// Clock is the reactor's clock, given to every transport it makes.
func (m *MemoryReactor) Clock() clock.Clock { return m.clk }

// Now is the clock's time, so a *MemoryReactor is also a clock.Clock.
func (m *MemoryReactor) Now() time.Time { return m.clk.Now() }

// CallLater schedules on the reactor's clock.
func (m *MemoryReactor) CallLater(d time.Duration, f func()) clock.Call { return m.clk.CallLater(d, f) }

// ListenTCP records the request and returns a FakePort bound to addr (a port
// of 0 is replaced by a fresh fake port number).
func (m *MemoryReactor) ListenTCP(addr string, f transports.Factory, opts any) (transports.Port, error) {
	if m.ListenErr != nil {
		return nil, m.ListenErr
	}
	bound := parseAddr(addr)
	if ta, ok := bound.(*net.TCPAddr); ok && ta.Port == 0 {
		m.nextPort++
		bound = &net.TCPAddr{IP: ta.IP, Port: m.nextPort, Zone: ta.Zone}
	}
	p := &FakePort{m: m, addr: bound, factory: f}
	m.Listens = append(m.Listens, &ListenCall{Addr: addr, Factory: f, Options: opts, Port: p})
	return p, nil
}

// ConnectTCP records the request and starts a FakeConnector (the factory sees
// StartedConnecting inside this call); the attempt stays pending until the
// test calls Succeed or Fail.
func (m *MemoryReactor) ConnectTCP(addr string, f transports.ClientFactory, opts any) (transports.Connector, error) {
	if m.ConnectErr != nil {
		return nil, m.ConnectErr
	}
	c := &FakeConnector{m: m, dest: parseAddr(addr), factory: f}
	m.Connects = append(m.Connects, &ConnectCall{Addr: addr, Factory: f, Options: opts, Connector: c})
	if err := c.Connect(); err != nil {
		return nil, err
	}
	return c, nil
}

// LastListen is the most recent ListenTCP record, or nil.
func (m *MemoryReactor) LastListen() *ListenCall {
	if len(m.Listens) == 0 {
		return nil
	}
	return m.Listens[len(m.Listens)-1]
}

// LastConnect is the most recent ConnectTCP record, or nil.
func (m *MemoryReactor) LastConnect() *ConnectCall {
	if len(m.Connects) == 0 {
		return nil
	}
	return m.Connects[len(m.Connects)-1]
}

// hostAddr is a destination that is not an IP literal (a host name).
type hostAddr string

func (h hostAddr) Network() string { return "tcp" }
func (h hostAddr) String() string  { return string(h) }

func parseAddr(addr string) net.Addr {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		if ap, err := netip.ParseAddrPort("0.0.0.0:" + port); err == nil {
			return net.TCPAddrFromAddrPort(ap)
		}
	}
	return hostAddr(addr)
}

// FakePort is the Port a MemoryReactor hands out. Not goroutine-safe.
type FakePort struct {
	m       *MemoryReactor
	addr    net.Addr
	factory transports.Factory
	closed  bool
	accepts int
}

var _ transports.Port = (*FakePort)(nil)

// Addr is the bound address.
func (p *FakePort) Addr() net.Addr { return p.addr }

// Close stops the port; ErrClosed the second time.
func (p *FakePort) Close() error {
	if p.closed {
		return transports.ErrClosed
	}
	p.closed = true
	return nil
}

// Closed reports whether Close was called.
func (p *FakePort) Closed() bool { return p.closed }

// Factory is the factory given to ListenTCP.
func (p *FakePort) Factory() transports.Factory { return p.factory }

// Accept simulates an incoming connection from remote (DefaultRemoteAddr when
// nil): it asks the factory for a protocol and, unless it refuses (nil),
// connects it to a new StringTransport whose LocalAddr is the port's address.
// It returns ErrClosed on a closed port and (nil, nil, nil) when refused.
func (p *FakePort) Accept(remote net.Addr) (transports.Protocol, *StringTransport, error) {
	if p.closed {
		return nil, nil, transports.ErrClosed
	}
	if remote == nil {
		remote = DefaultRemoteAddr
	}
	proto := p.factory.BuildProtocol(remote)
	if proto == nil {
		return nil, nil, nil
	}
	p.accepts++
	tr := NewStringTransport(p.m.clk)
	tr.Local, tr.Remote = p.addr, remote
	Connect(proto, tr)
	return proto, tr, nil
}

// Accepted counts connections accepted through Accept.
func (p *FakePort) Accepted() int { return p.accepts }

// ConnectorState is where a FakeConnector stands.
type ConnectorState int

// Connector states.
const (
	Disconnected ConnectorState = iota
	Connecting
	Connected
)

// String names the state.
func (s ConnectorState) String() string {
	switch s {
	case Disconnected:
		return "disconnected"
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	}
	return "invalid"
}

// FakeConnector is the Connector a MemoryReactor hands out. Each Connect is an
// attempt the test resolves with Succeed or Fail. Not goroutine-safe.
type FakeConnector struct {
	m        *MemoryReactor
	dest     net.Addr
	factory  transports.ClientFactory
	state    ConnectorState
	attempts int
	tr       *StringTransport
	proto    transports.Protocol
}

var _ transports.Connector = (*FakeConnector)(nil)

// Connect starts an attempt: the factory sees StartedConnecting.
// ErrAlreadyConnecting unless disconnected.
func (c *FakeConnector) Connect() error {
	if c.state != Disconnected {
		return ErrAlreadyConnecting
	}
	c.state = Connecting
	c.attempts++
	c.factory.StartedConnecting(c)
	return nil
}

// StopConnecting aborts a pending attempt: the factory sees
// ClientConnectionFailed with ErrConnectStopped. ErrNotConnected when no
// attempt is pending.
func (c *FakeConnector) StopConnecting() error {
	if c.state != Connecting {
		return transports.ErrNotConnected
	}
	c.fail(transports.ErrConnectStopped)
	return nil
}

// Disconnect stops a pending attempt, or asks the established connection to
// close (its transport records LoseConnection; the test ends it with
// Transport().EndConnection).
func (c *FakeConnector) Disconnect() {
	switch c.state {
	case Connecting:
		c.fail(transports.ErrConnectStopped)
	case Connected:
		_ = c.tr.LoseConnection()
	}
}

// Destination is the address given to ConnectTCP.
func (c *FakeConnector) Destination() net.Addr { return c.dest }

// State is the connector's state.
func (c *FakeConnector) State() ConnectorState { return c.state }

// Attempts counts Connect calls that started an attempt.
func (c *FakeConnector) Attempts() int { return c.attempts }

// Factory is the factory given to ConnectTCP.
func (c *FakeConnector) Factory() transports.ClientFactory { return c.factory }

// Transport is the current connection's transport, or nil.
func (c *FakeConnector) Transport() *StringTransport { return c.tr }

// Succeed completes the pending attempt: the factory builds a protocol for
// the destination, which is connected to a new StringTransport (RemoteAddr is
// the destination). When the test later calls EndConnection on that
// transport, the factory sees ClientConnectionLost and the connector is
// disconnected again. A factory refusing (nil protocol) fails the attempt with
// ErrConnectionLost. ErrNotConnected when no attempt is pending.
func (c *FakeConnector) Succeed() (transports.Protocol, *StringTransport, error) {
	if c.state != Connecting {
		return nil, nil, transports.ErrNotConnected
	}
	proto := c.factory.BuildProtocol(c.dest)
	if proto == nil {
		c.fail(transports.Lost(errors.New("transporttest: factory refused the connection")))
		return nil, nil, nil
	}
	tr := NewStringTransport(c.m.clk)
	tr.Remote = c.dest
	tr.onEnd = func(reason error) {
		if c.tr != tr {
			return
		}
		c.tr, c.proto, c.state = nil, nil, Disconnected
		c.factory.ClientConnectionLost(c, reason)
	}
	c.tr, c.proto, c.state = tr, proto, Connected
	Connect(proto, tr)
	return proto, tr, nil
}

// Fail ends the pending attempt: the factory sees ClientConnectionFailed with
// reason (a refusal wrapping ECONNREFUSED is typical). ErrNotConnected when no
// attempt is pending.
func (c *FakeConnector) Fail(reason error) error {
	if c.state != Connecting {
		return transports.ErrNotConnected
	}
	c.fail(reason)
	return nil
}

func (c *FakeConnector) fail(reason error) {
	c.state = Disconnected
	c.factory.ClientConnectionFailed(c, reason)
}
