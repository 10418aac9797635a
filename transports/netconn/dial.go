package netconn

import (
	"context"
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
// longer matters. Errors are *net.OpError (Op "dial") wrapping the cause:
// refused (errors.Is(err, syscall.ECONNREFUSED)), ctx.Err(), reactor.ErrStopped
// once the loop has stopped, net.UnknownNetworkError. Goroutine-safe; never
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
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		p, err := net.LookupPort(network, portStr)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		ips, err := resolve(ctx, network, host)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		for _, ip := range ips {
			targets = append(targets, net.JoinHostPort(ip.String(), strconv.Itoa(p)))
		}
	case "unix":
		gnet, targets = "unix", []string{address}
		opts = unix.ConnectOptions{Watermarks: cfg.Watermarks}
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
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
	return nil, &net.OpError{Op: "dial", Net: network, Err: first}
}

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
