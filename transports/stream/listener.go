package stream

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/transports"
)

// ListenerConfig is what a Listener needs of its address family (Twisted's
// tcp.Port is reused by unix.Port the same way).
type ListenerConfig struct {
	// Net names the family in errors ("tcp", "unix"): the Net of the
	// *net.OpError values the Listener reports.
	Net string
	// Addr is the bound address (Listener.Addr, and errors).
	Addr net.Addr
	// NewConn wraps an accepted descriptor (open, non-blocking,
	// close-on-exec) in a connection: it applies the family's per-socket
	// setup (tcp: TCP_NODELAY, keep-alive), fills the ConnConfig (addresses,
	// watermarks) and returns the stream Conn together with the transport
	// the protocol is to see (self, e.g. a *tcp.Conn embedding c; nil: c).
	// The Listener then asks the factory for a protocol for
	// c.RemoteAddr() and starts c, or closes the descriptor if the factory
	// refuses. Required. Called on the loop.
	NewConn func(loop *reactor.Loop, fd int) (c *Conn, self transports.Transport)
	// Closing, if set, runs once inside Close (or the loop's Shutdown),
	// before it returns: a UNIX listener removes its socket file here, so
	// the path can be bound again as soon as Close has returned.
	Closing func()
	// Closed, if set, runs once on the loop after the listening descriptor
	// was closed, before Done is closed.
	Closed func()
}

// acceptRetryNow is how many failed accepts in a row are retried at once
// before a Listener backs off like for EMFILE.
const acceptRetryNow = 8

// The back-off after an accept error: from acceptBackoffMin, doubled up to
// about a second.
const acceptBackoffMin = 5 * time.Millisecond

// Listener is the accept loop of a listening stream socket, for any address
// family (Twisted's tcp.Port): one multishot accept in flight, each accepted
// descriptor wrapped by ListenerConfig.NewConn and given a protocol from the
// factory (nil refuses: the descriptor is closed), a FactoryStarter started
// when accepting starts and stopped once the listener has stopped. It
// implements transports.Port and reactor.Resource.
//
// Accept errors: EINVAL (the socket was shut down from outside) closes the
// listener; per-connection errors (ECONNABORTED, EPROTO, EPERM) and
// transient ones (EINTR, EAGAIN, ECANCELED) are retried at once, at most 8
// times in a row; anything else (EMFILE, ENFILE, ENOBUFS, ENOMEM, …), and
// too many per-connection errors in a row, is reported to the loop and
// retried after a back-off (5 ms doubling to about 1 s; a success resets
// it). A panic in BuildProtocol is reported and refuses that connection.
//
// Close must be called on the loop; Addr and Done are goroutine-safe.
type Listener struct {
	own     Owner
	loop    *reactor.Loop
	cfg     ListenerConfig
	factory transports.Factory
	track   int

	backoff time.Duration
	streak  int // accept failures in a row, reset by a success
	retry   transports.DelayedCall
	closed  bool
	started bool
	shared  bool // adopted: not shut down at Close (see adopted)
	done    chan struct{}
}

var (
	_ transports.Port  = (*Listener)(nil)
	_ reactor.Resource = (*Listener)(nil)
)

const slotAccept = 0

// Listen takes over fd, a bound and listening, non-blocking stream socket,
// and starts accepting on it on the loop's next turn, building a protocol
// for each connection with f. Goroutine-safe. If the loop refuses
// (reactor.ErrStopped), fd is closed and the error returned.
func Listen(loop *reactor.Loop, fd int, f transports.Factory, cfg ListenerConfig) (*Listener, error) {
	l := newListener(loop, loop, fd, f, cfg)
	if err := loop.Call(l.start); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return l, nil
}

// newListener builds a Listener whose Owner submits through ownLoop (the
// loop itself, or a test's counting double).
func newListener(loop *reactor.Loop, ownLoop Loop, fd int, f transports.Factory, cfg ListenerConfig) *Listener {
	l := &Listener{loop: loop, cfg: cfg, factory: f, track: -1, done: make(chan struct{})}
	_, l.shared = adopted.Load(fd)
	l.own.Init(ownLoop, fd, listenerOps{l}, l.fdClosed)
	return l
}

// listenerOps is the Listener's OpHandler, kept off its exported methods.
type listenerOps struct{ l *Listener }

func (o listenerOps) OpComplete(_ int, c *backend.Completion) { o.l.complete(c) }

// Addr implements transports.Port. Goroutine-safe.
func (l *Listener) Addr() net.Addr { return l.cfg.Addr }

func (l *Listener) start() {
	if l.closed {
		return
	}
	l.started = true
	l.track = l.loop.Track(l)
	if fs, ok := l.factory.(transports.FactoryStarter); ok {
		fs.StartFactory()
	}
	l.arm()
}

func (l *Listener) arm() {
	if l.closed || l.own.InFlight(slotAccept) {
		return
	}
	if err := l.own.Submit(slotAccept, backend.Op{Kind: backend.KindAccept, Multishot: true}); err != nil {
		l.loop.ReportError(fmt.Errorf("gyre/stream: arming accept on %s %v: %w", l.cfg.Net, l.cfg.Addr, err))
		l.scheduleRetry()
		return
	}
}

func (l *Listener) scheduleRetry() {
	if l.backoff == 0 {
		l.backoff = acceptBackoffMin
	} else if l.backoff < time.Second {
		l.backoff *= 2
	}
	l.retry = l.loop.CallLater(l.backoff, l.arm)
}

func (l *Listener) complete(c *backend.Completion) {
	if c.Res >= 0 {
		l.backoff, l.streak = 0, 0
		l.accepted(int(c.Res))
		if !l.closed {
			l.arm()
		}
		return
	}
	if l.closed || l.own.InFlight(slotAccept) {
		// Close ended the accept (ECANCELED, or EINVAL after its shutdown),
		// or a multishot accept goes on after a per-connection error.
		return
	}
	err := c.Err()
	l.streak++
	switch err {
	case syscall.EINVAL:
		// The socket is not listening any more (shut down from outside the
		// listener): accepting again would fail the same way at once.
		l.loop.ReportError(fmt.Errorf("gyre/stream: listener %s %v closed: %w", l.cfg.Net, l.cfg.Addr, l.opErr(err)))
		_ = l.Close()
		return
	case syscall.ECONNABORTED, syscall.EPROTO, syscall.EPERM, syscall.EINTR, syscall.EAGAIN, syscall.ECANCELED:
		// One connection failed (aborted in the queue, a protocol error,
		// refused by a firewall rule) or a transient interruption: the next
		// one may succeed, so retry at once — a bounded number of times in a
		// row, then back off like below, never spin.
		if l.streak <= acceptRetryNow {
			l.arm()
			return
		}
	}
	// EMFILE, ENFILE, ENOBUFS, ENOMEM, the unexpected, and too many
	// per-connection failures in a row: report, back off and re-arm.
	l.loop.ReportError(l.opErr(err))
	l.scheduleRetry()
}

func (l *Listener) opErr(err error) error {
	return &net.OpError{Op: "accept", Net: l.cfg.Net, Addr: l.cfg.Addr, Err: os.NewSyscallError("accept", err)}
}

func (l *Listener) accepted(fd int) {
	if l.closed {
		_ = unix.Close(fd)
		return
	}
	c, self := l.cfg.NewConn(l.loop, fd)
	proto := buildProtocol(l.loop, l.factory, c.RemoteAddr())
	if proto == nil {
		_ = unix.Close(fd) // nothing was started on it
		return
	}
	c.Start(proto, self)
}

// Close implements transports.Port (Twisted's stopListening): once Close has
// returned, no connection is accepted or built any more (a connection the
// kernel completed meanwhile is closed unseen) and the address can be bound
// again. Connections already accepted are not affected. The descriptor is
// closed, and StopFactory called, once the accept operation has reached its
// final completion — on a later loop turn; Done is closed then. Loop
// goroutine only; transports.ErrClosed the second time.
func (l *Listener) Close() error {
	if l.closed {
		return transports.ErrClosed
	}
	l.closed = true
	l.retry.Cancel()
	// shutdown(2) on a listening socket ends its pending accepts and releases
	// the address for a new SO_REUSEADDR bind at once. Not on an adopted
	// socket: its open file description is shared (AdoptStreamPort), and
	// cancelling the accept (own.Close) is enough.
	if fd := l.own.Fd(); fd >= 0 && !l.shared {
		_ = unix.Shutdown(fd, unix.SHUT_RDWR)
	}
	if l.cfg.Closing != nil {
		l.cfg.Closing()
	}
	l.own.Close()
	return nil
}

// Shutdown implements reactor.Resource: the listener closes at the first
// stage (the second finds it closed).
func (l *Listener) Shutdown(error) { _ = l.Close() }

// Done is closed once the listener has fully stopped after Close (or the
// loop's shutdown): its accept operation has finished, its descriptor is
// closed and its factory stopped (Twisted's Deferred from stopListening).
// Goroutine-safe.
func (l *Listener) Done() <-chan struct{} { return l.done }

// fdClosed runs once the Owner closed the descriptor.
func (l *Listener) fdClosed() {
	l.loop.Untrack(l.track)
	defer close(l.done)
	if l.cfg.Closed != nil {
		l.cfg.Closed()
	}
	if l.started {
		if fs, ok := l.factory.(transports.FactoryStarter); ok {
			fs.StopFactory()
		}
	}
}

// buildProtocol asks f for a protocol for addr; a panic is reported to the
// loop and refuses the connection (nil).
func buildProtocol(loop *reactor.Loop, f transports.Factory, addr net.Addr) (proto transports.Protocol) {
	defer func() {
		if err := reactor.Recovered(recover()); err != nil {
			loop.ReportError(err)
			proto = nil
		}
	}()
	return f.BuildProtocol(addr)
}
