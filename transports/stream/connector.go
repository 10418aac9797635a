package stream

import (
	"context"
	"errors"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/transports"
)

// ErrRefused is the failure reason (ClientConnectionFailed) when the client
// factory's BuildProtocol returned nil.
var ErrRefused = errors.New("gyre/stream: factory refused the connection")

// DefaultConnectTimeout is the attempt timeout when ConnectorConfig leaves it
// zero (Twisted's default).
const DefaultConnectTimeout = 30 * time.Second

// Target is one resolved destination of a connection attempt.
type Target struct {
	// Addr is the destination as the family sees it (*net.TCPAddr,
	// *net.UnixAddr): it names the attempt in errors.
	Addr net.Addr
	// Raw and Len are the socket address given to connect(2).
	Raw unix.RawSockaddrAny
	Len uint32
}

// ConnectorConfig is what a Connector needs of its address family (Twisted's
// base.BaseConnector subclassed by tcp.Connector and unix.Connector).
type ConnectorConfig struct {
	// Net names the family in errors ("tcp", "unix"): the Net of the
	// *net.OpError failure reasons.
	Net string
	// Dest is the destination as given (Connector.Destination).
	Dest net.Addr
	// Timeout bounds one attempt, resolution included; default
	// DefaultConnectTimeout. When it passes the factory sees
	// ClientConnectionFailed with transports.ErrConnectTimeout.
	Timeout time.Duration
	// Target is the destination of every attempt when Resolve is nil.
	Target Target
	// Resolve, if set, finds each attempt's destination off the loop: it
	// runs on its own goroutine (it may block, e.g. on DNS), bounded by ctx
	// (the attempt's timeout; cancelled when the attempt is stopped). Its
	// error fails the attempt.
	Resolve func(ctx context.Context) (Target, error)
	// Socket opens the socket for t (non-blocking, close-on-exec), bound to
	// a local address if the family's options ask; required. Its error
	// (wrap it with os.NewSyscallError) fails the attempt.
	Socket func(t *Target) (fd int, err error)
	// NewConn wraps the connected descriptor, as ListenerConfig.NewConn does
	// (socket options, addresses, watermarks); required. t is the attempt's
	// destination (a fallback for the remote address).
	NewConn func(loop *reactor.Loop, fd int, t *Target) (c *Conn, self transports.Transport)
}

type connState uint8

const (
	stateIdle connState = iota
	stateResolving
	stateConnecting
	stateConnected
)

// Connector is one outgoing stream connection's controller for any address
// family (Twisted's IConnector as base.BaseConnector implements it), a
// transports.Connector and a reactor.Resource. State machine: idle →
// (resolving →) connecting → connected → idle; Connect restarts it from idle,
// also from inside ClientConnectionFailed or ClientConnectionLost
// (ReconnectingClientFactory relies on it).
//
// Per attempt the factory sees StartedConnecting (it may call
// StopConnecting), then BuildProtocol on success — a nil protocol closes the
// socket and fails the attempt with ErrRefused — or ClientConnectionFailed
// (resolution, socket, bind or connect errors, the timeout, StopConnecting);
// once connected, ClientConnectionLost after the protocol's ConnectionLost.
// A FactoryStarter is started by the first Connect and stopped when the
// connector ends idle without having been restarted from the callback.
// When the loop stops, an attempt in progress is stopped and Connect
// returns reactor.ErrStopped; an established connection is shut down as
// every Conn is.
//
// Methods run on the loop; Destination is goroutine-safe.
type Connector struct {
	own     Owner
	loop    *reactor.Loop
	cfg     ConnectorConfig
	factory transports.ClientFactory
	self    transports.Connector
	track   int

	state     connState
	attempt   uint64
	target    Target
	targetOK  bool
	timer     transports.DelayedCall
	cancelRes context.CancelFunc
	failWith  error
	conn      *Conn
	connSelf  transports.Transport
	shutdown  bool
	factoryOn bool
}

var (
	_ transports.Connector = (*Connector)(nil)
	_ reactor.Resource     = (*Connector)(nil)
)

const slotConnect = 0

// NewConnector returns an idle Connector; Start begins the first attempt.
func NewConnector(loop *reactor.Loop, f transports.ClientFactory, cfg ConnectorConfig) *Connector {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultConnectTimeout
	}
	c := &Connector{loop: loop, cfg: cfg, factory: f, track: -1}
	c.self = c
	return c
}

// Start schedules Connect on the loop's next turn. self is the connector
// the factory's callbacks receive (the family's wrapper, e.g. a
// *tcp.Connector; nil: c). Goroutine-safe; call it once. Its error is the
// loop's (reactor.ErrStopped).
func (c *Connector) Start(self transports.Connector) error {
	if self != nil {
		c.self = self
	}
	return c.loop.Call(func() { _ = c.Connect() })
}

// Destination implements transports.Connector.
func (c *Connector) Destination() net.Addr { return c.cfg.Dest }

// Connect implements transports.Connector: (re)starts an attempt; nothing if
// one is in progress or connected. reactor.ErrStopped once the loop is
// stopping. Loop only.
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
	c.targetOK = false
	c.factory.StartedConnecting(c.self)
	if c.state != stateIdle { // StartedConnecting may have called Connect
		return nil
	}
	if c.cfg.Resolve == nil {
		c.state = stateConnecting
		c.dial(c.cfg.Target)
		return nil
	}
	c.state = stateResolving
	attempt := c.attempt
	resolve := c.cfg.Resolve
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	c.cancelRes = cancel
	go func() {
		defer cancel()
		t, err := resolve(ctx)
		_ = c.loop.Call(func() { c.resolved(attempt, t, err) })
	}()
	return nil
}

func (c *Connector) resolved(attempt uint64, t Target, err error) {
	if attempt != c.attempt || c.state != stateResolving {
		return
	}
	c.cancelRes = nil
	if err != nil {
		c.fail(&net.OpError{Op: "dial", Net: c.cfg.Net, Addr: c.cfg.Dest, Err: err})
		return
	}
	c.state = stateConnecting
	c.dial(t)
}

func (c *Connector) dial(t Target) {
	c.target, c.targetOK = t, true
	fd, err := c.cfg.Socket(&c.target)
	if err != nil {
		c.failLater(c.opErr(err))
		return
	}
	c.own.Init(c.loop, fd, connectorOps{c}, nil)
	if err := c.own.Submit(slotConnect, backend.Op{Kind: backend.KindConnect, Addr: &c.target.Raw, AddrLen: c.target.Len}); err != nil {
		_, _ = c.own.Release()
		_ = unix.Close(fd)
		c.failLater(c.opErr(err))
		return
	}
	c.timer = c.loop.CallLater(c.cfg.Timeout, c.timedOut)
}

func (c *Connector) opErr(err error) error {
	dest := c.cfg.Dest
	if c.targetOK && c.target.Addr != nil {
		dest = c.target.Addr
	}
	return &net.OpError{Op: "dial", Net: c.cfg.Net, Addr: dest, Err: err}
}

func (c *Connector) timedOut() {
	if c.own.InFlight(slotConnect) && c.failWith == nil {
		c.failWith = c.opErr(transports.ErrConnectTimeout)
		c.own.Cancel(slotConnect)
	}
}

// connectorOps is the Connector's OpHandler, kept off its exported methods.
type connectorOps struct{ c *Connector }

func (o connectorOps) OpComplete(_ int, comp *backend.Completion) { o.c.connected(comp) }

func (c *Connector) connected(comp *backend.Completion) {
	c.timer.Cancel()
	fd, _ := c.own.Release() // nothing is in flight: the connect was final
	if c.failWith != nil || comp.Res < 0 {
		_ = unix.Close(fd)
		err := c.failWith
		if err == nil {
			err = c.opErr(os.NewSyscallError("connect", comp.Err()))
		}
		c.fail(err)
		return
	}
	conn, self := c.cfg.NewConn(c.loop, fd, &c.target)
	proto := buildProtocol(c.loop, c.factory, conn.RemoteAddr())
	if proto == nil {
		_ = unix.Close(fd) // nothing was started on it
		c.fail(c.opErr(ErrRefused))
		return
	}
	c.state = stateConnected
	c.conn, c.connSelf = conn, self
	if self == nil {
		c.connSelf = conn
	}
	conn.onLost = c.connLost
	conn.Start(proto, self)
}

func (c *Connector) connLost(conn *Conn, reason error) {
	if c.conn != conn {
		return
	}
	c.conn, c.connSelf = nil, nil
	c.state = stateIdle
	c.factory.ClientConnectionLost(c.self, reason)
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
	c.factory.ClientConnectionFailed(c.self, err)
	c.maybeStop()
}

// maybeStop stops the factory when the connector ends for good (the factory
// did not reconnect from its callback).
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

// StopConnecting implements transports.Connector: an attempt in progress
// ends with ClientConnectionFailed (a reason matching
// transports.ErrConnectStopped) — at once while resolving, after the
// connect's cancellation otherwise. transports.ErrNotConnected when no
// attempt is in progress. Loop only.
func (c *Connector) StopConnecting() error {
	switch c.state {
	case stateResolving:
		c.attempt++ // the resolver's answer is now stale
		if c.cancelRes != nil {
			c.cancelRes()
			c.cancelRes = nil
		}
		c.fail(c.opErr(transports.ErrConnectStopped))
		return nil
	case stateConnecting:
		if c.failWith == nil {
			c.failWith = c.opErr(transports.ErrConnectStopped)
		}
		c.own.Cancel(slotConnect)
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

// Transport is the established connection as the protocol sees it, or nil.
func (c *Connector) Transport() transports.Transport { return c.connSelf }

// Shutdown implements reactor.Resource: an attempt in progress is stopped
// and Connect refuses from now on (the established connection is a
// resource of its own).
func (c *Connector) Shutdown(error) {
	c.shutdown = true
	if c.state == stateResolving || c.state == stateConnecting {
		_ = c.StopConnecting()
	}
}
