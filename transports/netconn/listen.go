package netconn

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	"github.com/gyre-io/gyre/transports/unix"
)

// port is what the adapter needs of tcp.Port and unix.Port.
type port interface {
	Addr() net.Addr
	Close() error
	Done() <-chan struct{}
}

// errPortGone: the listening port was shut down under the Listener (the
// loop stopped). It matches net.ErrClosed, so net/http's Serve ends as after
// a Close.
var errPortGone = fmt.Errorf("%w (the loop shut the listening port down)", net.ErrClosed)

// Listener is a net.Listener backed by a gyre listening port (tcp.Listen or
// unix.Listen) on a loop; Listen returns it. Connections are accepted by the
// loop as they arrive and wait in a queue of Config.Backlog for Accept;
// when the queue is full, a new connection is closed at once (the peer sees
// its connection end), where Go's net would leave it in the kernel's
// backlog. Goroutine-safe.
type Listener struct {
	loop    *reactor.Loop
	network string
	cfg     Config
	port    port

	ready     chan *Conn
	closed    chan struct{}
	isClosed  atomic.Bool
	closeOnce sync.Once
}

// Listen is Config{}.Listen.
func Listen(loop *reactor.Loop, network, address string) (net.Listener, error) {
	return Config{}.Listen(loop, network, address)
}

// Listen listens on address on loop (net.Listen's networks and address
// forms: "tcp", "tcp4", "tcp6" with "host:port" — empty host: every address,
// port 0: a free one, host names resolved here; "unix" with a path, or
// "@name" for a Linux abstract socket). tcp4 and tcp6 bind only addresses of
// their family ("tcp6" with an empty host listens on [::] IPv6 only). The
// result is a *Listener. Errors are *net.OpError (Op "listen") wrapping the
// cause (errors.Is(err, syscall.EADDRINUSE) for an address in use;
// net.UnknownNetworkError for another network). Goroutine-safe.
func (cfg Config) Listen(loop *reactor.Loop, network, address string) (net.Listener, error) {
	cfg = cfg.withDefaults()
	l := &Listener{loop: loop, network: network, cfg: cfg, ready: make(chan *Conn, cfg.Backlog), closed: make(chan struct{})}
	f := transports.FactoryFunc(l.build)
	var err error
	switch network {
	case "tcp", "tcp4", "tcp6":
		var addr string
		var v6only bool
		addr, v6only, err = listenAddr(network, address)
		if err == nil {
			var p *tcp.Port
			p, err = tcp.Listen(loop, addr, f, tcp.ListenOptions{V6Only: v6only, Watermarks: cfg.Watermarks})
			if err == nil {
				l.port = p
			}
		}
	case "unix":
		var p *unix.Port
		p, err = unix.Listen(loop, address, f, unix.ListenOptions{Watermarks: cfg.Watermarks})
		if err == nil {
			l.port = p
		}
	default:
		err = net.UnknownNetworkError(network)
	}
	if err != nil {
		return nil, opError("listen", network, address, err)
	}
	return l, nil
}

// listenAddr makes tcp.Listen's "host:port" for a Go network and address:
// the host resolved to one address of the network's family.
func listenAddr(network, address string) (addr string, v6only bool, err error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return "", false, err
	}
	portNum, err := net.LookupPort(network, portStr)
	if err != nil {
		return "", false, err
	}
	ps := strconv.Itoa(portNum)
	if host == "" {
		switch network {
		case "tcp4":
			return net.JoinHostPort("0.0.0.0", ps), false, nil
		case "tcp6":
			return net.JoinHostPort("::", ps), true, nil
		}
		return net.JoinHostPort("", ps), false, nil
	}
	ips, err := resolve(context.Background(), network, host)
	if err != nil {
		return "", false, err
	}
	ip := ips[0]
	return net.JoinHostPort(ip.String(), ps), network == "tcp6" && ip.IsUnspecified(), nil
}

// resolve returns the addresses of host for network's family ("tcp4": IPv4,
// "tcp6": IPv6, else both), IPv4 first for "tcp".
func resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if (network == "tcp4" && !ip.Is4()) || (network == "tcp6" && !ip.Is6()) {
			return nil, &net.AddrError{Err: "address of the wrong family for " + network, Addr: host}
		}
		return []netip.Addr{ip}, nil
	}
	fam := "ip"
	switch network {
	case "tcp4":
		fam = "ip4"
	case "tcp6":
		fam = "ip6"
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, fam, host)
	if err != nil {
		return nil, err
	}
	out := ips[:0]
	for _, ip := range ips { // IPv4 first, as gyre's tcp.Connect prefers it
		if ip = ip.Unmap(); ip.Is4() {
			out = append(out, ip)
		}
	}
	for _, ip := range ips {
		if ip.Is6() && !ip.Is4In6() {
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		return nil, &net.AddrError{Err: "no suitable address", Addr: host}
	}
	return out, nil
}

// build runs on the loop for each accepted connection.
func (l *Listener) build(net.Addr) transports.Protocol {
	if l.isClosed.Load() {
		return nil
	}
	c := newConn(l.loop, l.network, l.cfg.ReadBuffer)
	c.ln = l
	return c.protocol()
}

// deliver runs on the loop once the connection is made: it joins the
// accept queue, or is closed when the queue is full or the Listener closed.
func (l *Listener) deliver(c *Conn) {
	if !l.isClosed.Load() {
		select {
		case l.ready <- c:
			return
		default:
		}
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	_ = c.t.LoseConnection()
}

// Accept waits for a connection and returns it (a *Conn). After Close it
// returns a *net.OpError matching net.ErrClosed, as it does once the loop has
// stopped (the listening port is then shut down). Goroutine-safe.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, l.opErr("accept", net.ErrClosed)
	default:
	}
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.closed:
		return nil, l.opErr("accept", net.ErrClosed)
	case <-l.port.Done():
		select {
		case c := <-l.ready:
			return c, nil
		default:
		}
		return nil, l.opErr("accept", errPortGone)
	}
}

func (l *Listener) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: l.network, Addr: l.port.Addr(), Err: err}
}

// Close stops listening: blocked and later Accepts return net.ErrClosed, the
// connections accepted by the loop but not yet by Accept are closed, and
// once Close returns the address can be bound again. Connections already
// returned by Accept are not touched. A second Close returns net.ErrClosed.
// Goroutine-safe; it waits for the loop to close the port (never call it on
// the loop's goroutine).
func (l *Listener) Close() error {
	first := false
	l.closeOnce.Do(func() {
		first = true
		l.isClosed.Store(true)
		close(l.closed)
	})
	if !first {
		return l.opErr("close", net.ErrClosed)
	}
	done := make(chan struct{})
	if err := l.loop.Call(func() {
		_ = l.port.Close() // ErrClosed when the loop's shutdown closed it first
		for {
			select {
			case c := <-l.ready:
				c.mu.Lock()
				c.closed = true
				c.mu.Unlock()
				if !c.gone {
					_ = c.t.LoseConnection()
				}
			default:
				close(done)
				return
			}
		}
	}); err != nil {
		return nil // the loop has stopped: its shutdown closed the port
	}
	select {
	case <-done:
	case <-l.loop.Done():
	}
	return nil
}

// Addr is the bound address: a *net.TCPAddr (with the real port when 0 was
// asked) or a *net.UnixAddr. Goroutine-safe.
func (l *Listener) Addr() net.Addr { return l.port.Addr() }
