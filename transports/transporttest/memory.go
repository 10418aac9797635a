package transporttest

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports"
)

// ErrAlreadyConnecting is returned by FakeConnector.Connect while an attempt is
// in progress or a connection is up.
var ErrAlreadyConnecting = errors.New("transporttest: connector already connecting or connected")

// MemoryReactor is a transports.Reactor that records listen and connect
// requests instead of touching the network (Twisted's MemoryReactor). Code
// under test calls ListenTCP, ConnectTCP, ListenUNIX and ConnectUNIX; the
// test inspects Listens and Connects and drives the returned FakePort and
// FakeConnector: accept a connection, make a connect attempt succeed or fail,
// end a connection. Datagram sockets (ListenUDP, ListenUNIXDatagram,
// ConnectUNIXDatagram) are recorded in Datagrams, each with a
// FakeDatagramPort to deliver datagrams to and read writes from. The transports it makes report it as their Reactor.
//
// Options are recorded as given (for example a tcp.ListenOptions value) and not
// interpreted. Factories' StartFactory/StopFactory are not called.
//
// Only Call is goroutine-safe: it queues the function, and the test runs the
// queue with RunCalls or WaitCalls (the loop's next turn, made explicit).
// Everything else belongs to the test goroutine.
type MemoryReactor struct {
	// Listens and Connects record every successful call, in order.
	Listens  []*ListenCall
	Connects []*ConnectCall
	// Datagrams records every successful ListenUDP, ListenUNIXDatagram and
	// ConnectUNIXDatagram, in order.
	Datagrams []*DatagramCall
	// ListenErr and ConnectErr, when set, make the Listen and Connect methods
	// fail with them, recording nothing (Twisted's RaisingMemoryReactor).
	ListenErr, ConnectErr error

	clk      clock.Clock
	nextPort int

	mu     sync.Mutex
	calls  []func()
	queued chan struct{} // a token when calls became non-empty
	// CallErr, when set, makes Call fail with it without queueing (the loop
	// has stopped). Set it before any goroutine may call Call.
	CallErr error
}

// ListenCall is one recorded ListenTCP or ListenUNIX.
type ListenCall struct {
	// Network is "tcp" (ListenTCP) or "unix" (ListenUNIX).
	Network string
	Addr    string
	Factory transports.Factory
	Options any
	Port    *FakePort
}

// ConnectCall is one recorded ConnectTCP or ConnectUNIX.
type ConnectCall struct {
	// Network is "tcp" (ConnectTCP) or "unix" (ConnectUNIX).
	Network   string
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
	return &MemoryReactor{clk: clk, nextPort: 30000, queued: make(chan struct{}, 1)}
}

var _ transports.Reactor = (*MemoryReactor)(nil)

// Clock is the reactor's clock, given to every transport it makes.
func (m *MemoryReactor) Clock() clock.Clock { return m.clk }

// Now is the clock's time, so a *MemoryReactor is also a clock.Clock.
func (m *MemoryReactor) Now() time.Time { return m.clk.Now() }

// CallLater schedules on the reactor's clock.
func (m *MemoryReactor) CallLater(d time.Duration, f func()) clock.Call { return m.clk.CallLater(d, f) }

// Call queues f to run when the test next calls RunCalls or WaitCalls, in
// the order queued (a real loop runs it at its next turn). Goroutine-safe:
// code under test hands work to the reactor from other goroutines this way
// (transports.ConnectProtocol does when its context is cancelled). It returns
// CallErr, without queueing, when that is set.
func (m *MemoryReactor) Call(f func()) error {
	if m.CallErr != nil {
		return m.CallErr
	}
	m.mu.Lock()
	m.calls = append(m.calls, f)
	m.mu.Unlock()
	select {
	case m.queued <- struct{}{}:
	default:
	}
	return nil
}

// RunCalls runs the functions Call queued before RunCalls began (those they
// queue wait for the next RunCalls, as on a loop) and returns how many ran.
func (m *MemoryReactor) RunCalls() int {
	m.mu.Lock()
	calls := m.calls
	m.calls = nil
	m.mu.Unlock()
	for _, f := range calls {
		f()
	}
	return len(calls)
}

// Queued is the number of calls waiting for RunCalls. Goroutine-safe.
func (m *MemoryReactor) Queued() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.calls)
}

// WaitCalls waits until Call has queued something or timeout passes, then
// runs the queue (RunCalls) and returns how many ran: 0 means nothing came in
// time. Use it when code under test calls Call from another goroutine.
func (m *MemoryReactor) WaitCalls(timeout time.Duration) int {
	if n := m.RunCalls(); n > 0 {
		return n
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-m.queued:
			if n := m.RunCalls(); n > 0 {
				return n
			}
			// a stale token: the call it announced already ran
		case <-t.C:
			return m.RunCalls()
		}
	}
}

// ListenTCP records the request and returns a FakePort bound to addr (a port
// of 0 is replaced by a fresh fake port number).
func (m *MemoryReactor) ListenTCP(addr string, f transports.Factory, opts any) (transports.Port, error) {
	return m.listen("tcp", addr, f, opts)
}

// ListenUNIX records the request and returns a FakePort bound to path (a
// *net.UnixAddr).
func (m *MemoryReactor) ListenUNIX(path string, f transports.Factory, opts any) (transports.Port, error) {
	return m.listen("unix", path, f, opts)
}

func (m *MemoryReactor) listen(network, addr string, f transports.Factory, opts any) (transports.Port, error) {
	if m.ListenErr != nil {
		return nil, m.ListenErr
	}
	bound := parseAddr(network, addr)
	if ta, ok := bound.(*net.TCPAddr); ok && ta.Port == 0 {
		m.nextPort++
		bound = &net.TCPAddr{IP: ta.IP, Port: m.nextPort, Zone: ta.Zone}
	}
	p := &FakePort{m: m, addr: bound, factory: f}
	m.Listens = append(m.Listens, &ListenCall{Network: network, Addr: addr, Factory: f, Options: opts, Port: p})
	return p, nil
}

// ConnectTCP records the request and starts a FakeConnector (the factory sees
// StartedConnecting inside this call); the attempt stays pending until the
// test calls Succeed or Fail.
func (m *MemoryReactor) ConnectTCP(addr string, f transports.ClientFactory, opts any) (transports.Connector, error) {
	return m.connect("tcp", addr, f, opts)
}

// ConnectUNIX is ConnectTCP for a UNIX socket path (the destination is a
// *net.UnixAddr).
func (m *MemoryReactor) ConnectUNIX(path string, f transports.ClientFactory, opts any) (transports.Connector, error) {
	return m.connect("unix", path, f, opts)
}

func (m *MemoryReactor) connect(network, addr string, f transports.ClientFactory, opts any) (transports.Connector, error) {
	if m.ConnectErr != nil {
		return nil, m.ConnectErr
	}
	c := &FakeConnector{m: m, dest: parseAddr(network, addr), factory: f}
	m.Connects = append(m.Connects, &ConnectCall{Network: network, Addr: addr, Factory: f, Options: opts, Connector: c})
	if err := c.Connect(); err != nil {
		return nil, err
	}
	return c, nil
}

// LastListen is the most recent Listen record, or nil.
func (m *MemoryReactor) LastListen() *ListenCall {
	if len(m.Listens) == 0 {
		return nil
	}
	return m.Listens[len(m.Listens)-1]
}

// LastConnect is the most recent Connect record, or nil.
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

func parseAddr(network, addr string) net.Addr {
	if network == "unix" {
		return &net.UnixAddr{Name: addr, Net: "unix"}
	}
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
	done    chan struct{} // made on first use; closed by Close
}

var _ transports.Port = (*FakePort)(nil)

// Done implements transports.Port: closed as soon as Close was called (a
// memory port has no accept in flight).
func (p *FakePort) Done() <-chan struct{} {
	if p.done == nil {
		p.done = make(chan struct{})
		if p.closed {
			close(p.done)
		}
	}
	return p.done
}

// Addr is the bound address.
func (p *FakePort) Addr() net.Addr { return p.addr }

// Close stops the port; ErrClosed the second time.
func (p *FakePort) Close() error {
	if p.closed {
		return transports.ErrClosed
	}
	p.closed = true
	if p.done != nil {
		close(p.done)
	}
	return nil
}

// Closed reports whether Close was called.
func (p *FakePort) Closed() bool { return p.closed }

// Factory is the factory given to ListenTCP or ListenUNIX.
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
	tr.reactor = p.m
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

// Destination is the address given to ConnectTCP or ConnectUNIX.
func (c *FakeConnector) Destination() net.Addr { return c.dest }

// State is the connector's state.
func (c *FakeConnector) State() ConnectorState { return c.state }

// Attempts counts Connect calls that started an attempt.
func (c *FakeConnector) Attempts() int { return c.attempts }

// Factory is the factory given to ConnectTCP or ConnectUNIX.
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
	tr.reactor = c.m
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
