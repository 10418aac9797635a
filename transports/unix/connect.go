package unix

import (
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// ConnectOptions configure Connect. The zero value is a good default.
type ConnectOptions struct {
	// Timeout for one attempt; default 30 s (Twisted's default). A UNIX
	// connect completes or fails at once, so it rarely matters.
	Timeout time.Duration
	// Watermarks for producers on the connection.
	Watermarks transports.Watermarks
}

// Connector is one outgoing UNIX connection's controller
// (transports.Connector): a stream.Connector (the state machine, see its
// documentation). Its methods run on the loop; Destination is
// goroutine-safe.
//
// A listener whose backlog is full refuses at once: the attempt fails with
// ClientConnectionFailed and a reason matching syscall.EAGAIN, on every
// backend (as Go's net.Dial("unix") returns EAGAIN); a path with no
// listener fails with ECONNREFUSED, a missing one with ENOENT.
type Connector struct {
	*stream.Connector
}

var _ transports.Connector = (*Connector)(nil)

// Connect starts connecting to path (a filesystem path, or "@name" for a
// Linux abstract name) on loop and returns the Connector. The factory sees
// StartedConnecting, then BuildProtocol on success or
// ClientConnectionFailed on failure, and ClientConnectionLost when an
// established connection ends. A bad path fails here with ErrBadAddress (in
// a *net.OpError). Goroutine-safe: the attempt itself starts on the loop's
// next turn.
func Connect(loop *reactor.Loop, path string, f transports.ClientFactory, opts ConnectOptions) (*Connector, error) {
	a, err := parseAddr(path)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "unix", Err: err}
	}
	cfg := stream.ConnectorConfig{
		Net:     "unix",
		Dest:    a.NetAddr("unix"),
		Timeout: opts.Timeout,
		Target:  target(a),
		Socket: func(*stream.Target) (int, error) {
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			return fd, os.NewSyscallError("socket", err)
		},
		NewConn: func(loop *reactor.Loop, fd int, t *stream.Target) (*stream.Conn, transports.Transport) {
			c := newConn(loop, fd, t.Addr, opts.Watermarks)
			return &c.Conn, c
		},
	}
	c := &Connector{stream.NewConnector(loop, f, cfg)}
	if err := c.Start(c); err != nil {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: cfg.Dest, Err: err}
	}
	return c, nil
}

// Transport is the established connection, or nil.
func (c *Connector) Transport() *Conn {
	t, _ := c.Connector.Transport().(*Conn)
	return t
}
