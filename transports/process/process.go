// Package process runs child processes on a gyre loop (Twisted's
// reactor.spawnProcess, IProcessTransport and process.Process): the child's
// pipes are stream connections (stream.Conn: queued writes with producers
// and watermarks, reads into a per-pipe buffer, pause and resume), and its
// exit is seen through a pidfd the loop polls — no goroutine per child, no
// SIGCHLD handler, and reaping with waitid(P_PIDFD) never touches children
// other code started.
//
// Spawn starts a child and gives a transports.ProcessProtocol a *Process
// (a transports.ProcessTransport). The protocol sees the bytes of each pipe
// from the child, the end of each pipe, ProcessExited when the child has
// exited and ProcessEnded when, in addition, every pipe is closed (a
// grandchild may keep a pipe open after the child exited).
//
// At loop Stop a running child is handled per its StopPolicy (by default
// SIGTERM, then SIGKILL at the loop's drain timeout), and reaped.
//
// A panic in a protocol callback is reported to the loop (Config.OnError):
// in OutReceived, ErrReceived or ChildDataReceived it aborts that pipe (as
// a connection is aborted); in ConnectionMade, ChildConnectionLost or
// ProcessExited it aborts every pipe and kills the child. The remaining
// calls of the contract still come.
//
// Loop goroutine only: every function and method must be called on the
// process's loop.
package process

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// pollOp watches the pidfd: it reports POLLIN once the child has exited
// (Linux 5.3). Single-shot: one completion per child. io_uring's
// IORING_OP_WAITID (Linux 6.7) could reap in the same op, saving one
// waitid call per child, but would need a backend op kind of its own and
// an epoll emulation (which would be this poll plus waitid anyway); the
// poll works on both backends and on older kernels.
var pollOp = backend.Op{Kind: backend.KindPoll, Events: unix.POLLIN}

// Process is a running child and its pipes: the transports.ProcessTransport
// Spawn hands to the protocol. It is also a reactor.Resource of its loop
// (see StopPolicy). Loop goroutine only.
type Process struct {
	own   stream.Owner // the pidfd and its poll op (slot 0)
	loop  *reactor.Loop
	proto transports.ProcessProtocol
	data  transports.ChildDataReceiver
	pid   int
	stop  StopPolicy
	pipes []*pipe
	open  int // pipes whose ConnectionLost has not come yet
	track int
	grace clock.Call

	status      transports.ProcessStatus
	exited      bool // reaped (or detached): ProcessExited called
	pidfdClosed bool
	ended       bool
	detaching   bool // StopPolicy.Leave at shutdown: the poll is being cancelled
	stopping    bool // the first shutdown stage ran
	paused      bool
}

var (
	_ transports.ProcessTransport = (*Process)(nil)
	_ reactor.Resource            = (*Process)(nil)
)

// pipe is one child pipe: a stream.Conn on our end, and the child
// descriptor number it is.
type pipe struct {
	stream.Conn
	p       *Process
	fd      int
	toChild bool
	lost    bool
}

// pipeProto is a pipe seen as the protocol of its own Conn: it forwards to
// the process protocol with the child descriptor number.
type pipeProto pipe

func (pp *pipeProto) ConnectionMade(transports.Transport) {}

func (pp *pipeProto) DataReceived(b []byte) {
	p := pp.p
	switch pp.fd {
	case 1:
		p.proto.OutReceived(b)
	case 2:
		p.proto.ErrReceived(b)
	default:
		p.data.ChildDataReceived(pp.fd, b)
	}
}

func (pp *pipeProto) ConnectionLost(reason error) { pp.p.pipeLost((*pipe)(pp), reason) }

// pidOps is the OpHandler of the pidfd's Owner.
type pidOps Process

// OpComplete: the pidfd poll completed (the child exited), or was
// cancelled (detaching at shutdown).
func (o *pidOps) OpComplete(_ int, c *backend.Completion) {
	p := (*Process)(o)
	if p.exited {
		return
	}
	if c.Res < 0 {
		if err := c.Err(); err != syscall.ECANCELED && err != syscall.EINTR {
			p.loop.ReportError(fmt.Errorf("gyre/process: pid %d: poll on pidfd: %w", p.pid, err))
		}
	}
	st, done, err := reap(p.own.Fd())
	switch {
	case err != nil:
		// ECHILD: other code reaped our child (a wait(-1) somewhere).
		p.loop.ReportError(fmt.Errorf("gyre/process: pid %d: %w", p.pid, os.NewSyscallError("waitid", err)))
		st, done = transports.ProcessStatus{Detached: true}, true
	case !done && !p.detaching && !p.own.Closing():
		if err := p.own.Submit(0, pollOp); err == nil {
			return // spurious wake-up: keep watching
		}
		st, done = transports.ProcessStatus{Detached: true}, true
	case !done:
		st, done = transports.ProcessStatus{Detached: true}, true
	}
	p.onExit(st)
}

// onExit: the child has exited (or is detached): ProcessExited, close the
// pidfd, and end if the pipes are closed too.
func (p *Process) onExit(st transports.ProcessStatus) {
	p.exited = true
	p.status = st
	p.pid = 0
	p.grace.Cancel()
	p.own.Close()
	p.call(func() { p.proto.ProcessExited(st) })
	p.maybeEnd()
}

func (p *Process) pidfdGone() {
	p.pidfdClosed = true
	p.maybeEnd()
}

func (p *Process) pipeLost(pp *pipe, reason error) {
	if pp.lost {
		return
	}
	pp.lost = true
	p.open--
	p.call(func() { p.proto.ChildConnectionLost(pp.fd, reason) })
	p.maybeEnd()
}

// maybeEnd calls ProcessEnded once the child is reaped, its pidfd closed
// and every pipe closed: every descriptor of the child is released by then.
func (p *Process) maybeEnd() {
	if p.ended || !p.exited || !p.pidfdClosed || p.open > 0 {
		return
	}
	p.ended = true
	p.loop.Untrack(p.track)
	proto := p.proto
	p.call(func() { proto.ProcessEnded(p.status) })
	p.data = nil
}

// call runs a protocol callback. A panic is reported to the loop and
// aborts this child: its pipes are aborted and it is killed (as a
// connection whose protocol panics is aborted).
func (p *Process) call(f func()) {
	defer func() {
		if err := reactor.Recovered(recover()); err != nil {
			p.loop.ReportError(err)
			p.abort()
		}
	}()
	f()
}

func (p *Process) abort() {
	for _, pp := range p.pipes {
		if !pp.lost {
			_ = pp.Abort()
		}
	}
	_ = p.Kill()
}

// Pid implements transports.ProcessTransport.
func (p *Process) Pid() int { return p.pid }

// Status is the child's status once ProcessExited has been called (the zero
// value before).
func (p *Process) Status() transports.ProcessStatus { return p.status }

func (p *Process) pipe(fd int, toChild bool) *pipe {
	for _, pp := range p.pipes {
		if pp.fd == fd && pp.toChild == toChild {
			return pp
		}
	}
	return nil
}

// Write implements transports.ProcessTransport: p is copied into the stdin
// pipe's queue.
func (p *Process) Write(b []byte) error { return p.WriteToChild(0, b) }

// WriteToChild implements transports.ProcessTransport.
func (p *Process) WriteToChild(fd int, b []byte) error {
	pp := p.pipe(fd, true)
	if pp == nil {
		return transports.ErrNoChildFD
	}
	return pp.Write(b)
}

// WriteOwnedToChild queues b for child descriptor fd without copying it,
// as stream.Conn.WriteOwned: b belongs to the pipe until done (may be nil)
// is called on the loop, with nil once written or the pipe's end reason.
func (p *Process) WriteOwnedToChild(fd int, b []byte, done func(error)) error {
	pp := p.pipe(fd, true)
	if pp == nil {
		return transports.ErrNoChildFD
	}
	return pp.WriteOwned(b, done)
}

// Buffered is the number of bytes queued for child descriptor fd and not
// yet written into its pipe (0 for a descriptor that is not a pipe to the
// child).
func (p *Process) Buffered(fd int) int {
	if pp := p.pipe(fd, true); pp != nil {
		return pp.Buffered()
	}
	return 0
}

// CloseStdin implements transports.ProcessTransport.
func (p *Process) CloseStdin() error { return p.CloseChildFD(0) }

// CloseChildFD implements transports.ProcessTransport. Closing a pipe that
// is already closed or closing is a no-op.
func (p *Process) CloseChildFD(fd int) error {
	for _, pp := range p.pipes {
		if pp.fd == fd {
			if !pp.lost {
				_ = pp.LoseConnection()
			}
			return nil
		}
	}
	return transports.ErrNoChildFD
}

// LoseConnection implements transports.ProcessTransport.
func (p *Process) LoseConnection() error {
	for _, pp := range p.pipes {
		if !pp.lost {
			_ = pp.LoseConnection()
		}
	}
	return nil
}

// Signal implements transports.ProcessTransport (pidfd_send_signal, Linux
// 5.1). Signal 0 only checks that the child has not exited.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.exited || p.own.Closing() {
		return transports.ErrProcessExited
	}
	err := unix.PidfdSendSignal(p.own.Fd(), sig, nil, 0)
	switch err {
	case nil:
		return nil
	case unix.ESRCH:
		return transports.ErrProcessExited // a zombie, not reaped yet
	}
	return os.NewSyscallError("pidfd_send_signal", err)
}

// Kill implements transports.ProcessTransport.
func (p *Process) Kill() error { return p.Signal(unix.SIGKILL) }

// PauseReading implements transports.ProcessTransport.
func (p *Process) PauseReading() {
	p.paused = true
	for _, pp := range p.pipes {
		if !pp.toChild {
			pp.PauseReading()
		}
	}
}

// ResumeReading implements transports.ProcessTransport.
func (p *Process) ResumeReading() {
	p.paused = false
	for _, pp := range p.pipes {
		if !pp.toChild {
			pp.ResumeReading()
		}
	}
}

// RegisterProducer implements transports.ProcessTransport (on stdin).
func (p *Process) RegisterProducer(pr transports.Producer, streaming bool) error {
	pp := p.pipe(0, true)
	if pp == nil {
		return transports.ErrNoChildFD
	}
	return pp.RegisterProducer(pr, streaming)
}

// UnregisterProducer implements transports.ProcessTransport.
func (p *Process) UnregisterProducer() {
	if pp := p.pipe(0, true); pp != nil {
		pp.UnregisterProducer()
	}
}

// Clock implements transports.ProcessTransport.
func (p *Process) Clock() transports.Clock { return p.loop }

// Loop is the process's loop.
func (p *Process) Loop() *reactor.Loop { return p.loop }

// PauseProducing implements transports.PushProducer: PauseReading.
func (p *Process) PauseProducing() { p.PauseReading() }

// ResumeProducing implements transports.PushProducer: ResumeReading.
func (p *Process) ResumeProducing() { p.ResumeReading() }

// StopProducing implements transports.Producer: LoseConnection.
func (p *Process) StopProducing() { _ = p.LoseConnection() }

// Shutdown implements reactor.Resource per the StopPolicy (the pipes are
// resources of their own and close with the loop's other connections).
func (p *Process) Shutdown(reason error) {
	if p.exited {
		return
	}
	if errors.Is(reason, reactor.ErrDrainTimeout) {
		if !p.stop.Leave {
			_ = p.Kill()
		}
		return
	}
	if p.stopping {
		return
	}
	p.stopping = true
	if p.stop.Leave {
		p.detaching = true
		p.own.Close() // cancels the poll; OpComplete reports Detached
		return
	}
	sig := p.stop.Signal
	if sig == 0 {
		sig = unix.SIGTERM
	}
	if sig > 0 {
		_ = p.Signal(sig)
	}
	if p.stop.Grace > 0 {
		p.grace = p.loop.CallLater(p.stop.Grace, func() {
			_ = p.Kill()
		})
	}
}
