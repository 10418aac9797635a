package netconn

import (
	"context"
	"errors"
	"net"
	"strconv"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
	"github.com/gyre-io/gyre/transports/tcp"
	"github.com/gyre-io/gyre/transports/unix"
)

// Dial is Config{}.Dial.
func Dial(ctx context.Context, loop *reactor.Loop, network, address string) (net.Conn, error) {
	return Config{}.Dial(ctx, loop, network, address)
}

// Dial connects to address on loop and returns the connection (a *Conn)
// once it is established (net.Dialer.DialContext's networks and address
// forms: "tcp", "tcp4", "tcp6" with "host:port", "unix" with a path or
// "@name"). A host name is resolved for "tcp4" and "tcp6" here, with ctx,
// and its addresses tried in turn; for "tcp" gyre's tcp.Connect resolves it
// (IPv4 preferred). ctx bounds the attempt (its cancellation stops it, and
// gyre's 30 s connect timeout applies too); once Dial has returned, ctx no
// longer matters. Errors are *net.OpError (Op "dial") naming the network
// and address as net's do ("dial tcp 127.0.0.1:80: connect: connection
// refused", "dial tcp 127.0.0.1:80: context deadline exceeded") and
// wrapping the cause: refused (errors.Is(err, syscall.ECONNREFUSED)),
// ctx.Err() (context.DeadlineExceeded: Timeout() is true),
// reactor.ErrStopped once the loop has stopped, net.UnknownNetworkError. Goroutine-safe; never
// call it on the loop's goroutine.
func (cfg Config) Dial(ctx context.Context, loop *reactor.Loop, network, address string) (net.Conn, error) {
	cfg = cfg.withDefaults()
	var targets []string
	var gnet string
	var opts any
	switch network {
	case "tcp":
		gnet, targets = "tcp", []string{address}
		opts = tcp.ConnectOptions{Watermarks: cfg.Watermarks}
	case "tcp4", "tcp6":
		gnet = "tcp"
		opts = tcp.ConnectOptions{Watermarks: cfg.Watermarks}
		host, portStr, err := net.SplitHostPort(address)
		if err != nil {
			return nil, opError("dial", network, address, err)
		}
		p, err := net.LookupPort(network, portStr)
		if err != nil {
			return nil, opError("dial", network, address, err)
		}
		ips, err := resolve(ctx, network, host)
		if err != nil {
			return nil, opError("dial", network, address, err)
		}
		for _, ip := range ips {
			targets = append(targets, net.JoinHostPort(ip.String(), strconv.Itoa(p)))
		}
	case "unix":
		gnet, targets = "unix", []string{address}
		opts = unix.ConnectOptions{Watermarks: cfg.Watermarks}
	default:
		return nil, opError("dial", network, "", net.UnknownNetworkError(network))
	}
	var first error
	for _, a := range targets {
		c, err := cfg.dialOne(ctx, loop, network, gnet, a, opts)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, opError("dial", network, address, first)
}

// opError is the *net.OpError of a failed dial or listen, shaped as the
// standard library's ("dial tcp 127.0.0.1:80: connect: connection
// refused"): an error of gyre's transports that is already a *net.OpError
// (it carries the address and the system call) is returned as it is, with
// Net the caller's network ("tcp4" rather than "tcp"); any other cause
// (ctx.Err(), reactor.ErrStopped, a resolution error) is wrapped with the
// address asked for, so every message names it.
func opError(op, network, address string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == op {
		e := *oe
		e.Net = network
		return &e
	}
	e := &net.OpError{Op: op, Net: network, Err: err}
	if address != "" {
		e.Addr = addrString{network, address}
	}
	return e
}

// addrString is an address as the caller gave it, for an error message.
type addrString struct{ net, addr string }

func (a addrString) Network() string { return a.net }
func (a addrString) String() string  { return a.addr }

// dialOne makes one attempt through transports.ConnectProtocol on the loop.
func (cfg Config) dialOne(ctx context.Context, loop *reactor.Loop, network, gnet, addr string, opts any) (*Conn, error) {
	c := newConn(loop, network, cfg.ReadBuffer)
	res := make(chan error, 1)
	err := loop.Call(func() {
		_, err := transports.ConnectProtocol(ctx, stream.Reactor(loop), gnet, addr, c.protocol(), opts, func(_ transports.Transport, err error) {
			res <- err
		})
		if err != nil {
			res <- err
		}
	})
	if err != nil {
		return nil, err
	}
	select {
	case err = <-res:
	case <-loop.Done():
		return nil, reactor.ErrStopped
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}
