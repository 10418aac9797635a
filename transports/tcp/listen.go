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
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/transports"
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

// Port is a listening TCP socket (transports.Port). Close must be called on the
// loop; Addr is goroutine-safe.
type Port struct {
	loop    *reactor.Loop
	fd      int
	addr    *net.TCPAddr
	factory transports.Factory
	opts    ListenOptions
	track   int

	acceptOp backend.Op
	acceptOn bool
	backoff  time.Duration
	streak   int // accept failures in a row, reset by a success
	retry    transports.DelayedCall
	closed   bool
	fdClosed bool
	started  bool
	done     chan struct{}

	// submit is loop.Submit (tests count arms through it).
	submit func(*backend.Op, reactor.Handler) error
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
	p := &Port{loop: loop, fd: fd, factory: f, opts: opts, track: -1, done: make(chan struct{}), submit: loop.Submit}
	p.addr, _ = localAddr(fd).(*net.TCPAddr)
	if err := loop.Call(p.start); err != nil {
		_ = unix.Close(fd)
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: p.addr, Err: err}
	}
	return p, nil
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
	if err := unix.Bind(fd, toSockaddr(ap)); err != nil {
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

// Addr implements transports.Port. Goroutine-safe.
func (p *Port) Addr() net.Addr { return p.addr }

func (p *Port) start() {
	if p.closed {
		return
	}
	p.started = true
	p.track = p.loop.Track(p)
	if fs, ok := p.factory.(transports.FactoryStarter); ok {
		fs.StartFactory()
	}
	p.arm()
}

func (p *Port) arm() {
	if p.closed || p.acceptOn {
		return
	}
	p.acceptOp = backend.Op{Kind: backend.KindAccept, Fd: int32(p.fd), Multishot: true}
	if err := p.submit(&p.acceptOp, p); err != nil {
		p.loop.ReportError(fmt.Errorf("gyre/tcp: arming accept on %v: %w", p.addr, err))
		p.scheduleRetry()
		return
	}
	p.acceptOn = true
}

func (p *Port) scheduleRetry() {
	if p.backoff == 0 {
		p.backoff = 5 * time.Millisecond
	} else if p.backoff < time.Second {
		p.backoff *= 2
	}
	p.retry = p.loop.CallLater(p.backoff, p.arm)
}

// acceptRetryNow is how many failed accepts in a row are retried at once
// before the port backs off like for EMFILE.
const acceptRetryNow = 8

// Complete implements reactor.Handler.
func (p *Port) Complete(op *backend.Op, c *backend.Completion) {
	if !c.More() {
		p.acceptOn = false
	}
	if c.Res >= 0 {
		p.backoff, p.streak = 0, 0
		p.accepted(int(c.Res))
		if !p.acceptOn && !p.closed {
			p.arm()
		}
		p.maybeFinishClose()
		return
	}
	if p.closed || p.acceptOn {
		// Close ended the accept (ECANCELED, or EINVAL after its shutdown),
		// or a multishot accept goes on after a per-connection error.
		p.maybeFinishClose()
		return
	}
	err := c.Err()
	p.streak++
	switch err {
	case syscall.EINVAL:
		// The socket is not listening any more (shut down from outside the
		// port): accepting again would fail the same way at once.
		p.loop.ReportError(fmt.Errorf("gyre/tcp: port %v closed: %w", p.addr, p.opErr(err)))
		_ = p.Close()
		return
	case syscall.ECONNABORTED, syscall.EPROTO, syscall.EPERM, syscall.EINTR, syscall.EAGAIN, syscall.ECANCELED:
		// One connection failed (aborted in the queue, a protocol error,
		// refused by a firewall rule) or a transient interruption: the next
		// one may succeed, so retry at once — a bounded number of times in a
		// row, then back off like below, never spin.
		if p.streak <= acceptRetryNow {
			p.arm()
			return
		}
	}
	// EMFILE, ENFILE, ENOBUFS, ENOMEM, the unexpected, and too many
	// per-connection failures in a row: report, back off and re-arm.
	p.loop.ReportError(p.opErr(err))
	p.scheduleRetry()
}

func (p *Port) opErr(err error) error {
	return &net.OpError{Op: "accept", Net: "tcp", Addr: p.addr, Err: os.NewSyscallError("accept", err)}
}

func (p *Port) accepted(fd int) {
	if p.closed {
		_ = unix.Close(fd)
		return
	}
	if !p.opts.Nagle {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	if p.opts.KeepAlive > 0 {
		_ = setKeepAlive(fd, true, p.opts.KeepAlive)
	}
	remote := remoteAddr(fd)
	c := newConn(p.loop, fd, stream.ConnConfig{Local: localAddr(fd), Remote: remote, Watermarks: p.opts.Watermarks})
	var proto transports.Protocol
	func() {
		defer func() {
			if err := reactor.Recovered(recover()); err != nil {
				p.loop.ReportError(err)
				proto = nil
			}
		}()
		proto = p.factory.BuildProtocol(remote)
	}()
	if proto == nil {
		_ = unix.Close(fd)
		return
	}
	c.start(proto)
}

// Close implements transports.Port (Twisted's stopListening): once Close has
// returned, no connection is accepted or built any more (a connection the
// kernel completed meanwhile is closed unseen) and the address can be bound
// again. Connections already accepted are not affected. The descriptor is
// closed, and StopFactory called, when the accept operation has reached its
// final completion — on a later loop turn if one was in flight; Done is
// closed then. Loop goroutine only; ErrClosed the second time.
func (p *Port) Close() error {
	if p.closed {
		return transports.ErrClosed
	}
	p.closed = true
	p.retry.Cancel()
	// shutdown(2) on a listening socket ends its pending accepts and releases
	// the address for a new SO_REUSEADDR bind at once.
	_ = unix.Shutdown(p.fd, unix.SHUT_RDWR)
	if p.acceptOn {
		p.loop.Cancel(p.acceptOp.Token)
	}
	p.maybeFinishClose()
	return nil
}

// Shutdown implements reactor.Resource: the port closes at the first stage
// (the second finds it closed).
func (p *Port) Shutdown(error) { _ = p.Close() }

// Done is closed once the port has fully stopped after Close (or the loop's
// shutdown): its accept operation has finished, its descriptor is closed and
// its factory stopped (Twisted's Deferred from stopListening). Goroutine-safe.
func (p *Port) Done() <-chan struct{} { return p.done }

func (p *Port) maybeFinishClose() {
	if !p.closed || p.acceptOn || p.fdClosed {
		return
	}
	p.fdClosed = true
	_ = unix.Close(p.fd)
	p.loop.Untrack(p.track)
	defer close(p.done)
	if p.started {
		if fs, ok := p.factory.(transports.FactoryStarter); ok {
			fs.StopFactory()
		}
	}
}
