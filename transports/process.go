package transports

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"
)

// Errors of child processes. Compare with errors.Is.
var (
	// ErrProcessTerminated: the child did not exit with status 0 (it exited
	// with another code or was killed by a signal); ProcessStatus.Err
	// returns an error matching it (Twisted's ProcessTerminated).
	ErrProcessTerminated = errors.New("gyre: process terminated")
	// ErrProcessExited: a signal was asked for a child that has already
	// exited (Twisted's ProcessExitedAlready).
	ErrProcessExited = errors.New("gyre: process already exited")
	// ErrProcessDetached: gyre stopped watching a child whose end it does not
	// know (see ProcessStatus.Detached); ProcessStatus.Err matches it.
	ErrProcessDetached = errors.New("gyre: process detached")
	// ErrNoChildFD: the child descriptor is not one of its pipes, or not one
	// in the direction asked (Twisted's KeyError from writeToChild).
	ErrNoChildFD = errors.New("gyre: no such child pipe")
)

// ProcessStatus is how a child process ended (Twisted's ProcessDone /
// ProcessTerminated reasons, decoded from waitid's siginfo). Exactly one of
// these holds: Signal != 0 (killed by that signal), Detached (end unknown),
// or neither (it exited with Code).
type ProcessStatus struct {
	// Code is the exit code (0..255) when the child exited; 0 otherwise.
	Code int
	// Signal is the signal that killed the child; 0 if it exited.
	Signal syscall.Signal
	// CoreDumped: the signal also dumped core.
	CoreDumped bool
	// Detached: gyre does not know how the child ended and no longer
	// watches it — the loop stopped under a policy that leaves children
	// running, or other code in the program reaped the child itself (a
	// wait(-1) elsewhere).
	Detached bool
}

// Exited reports whether the child exited by itself (exit or return from
// main), with Code.
func (s ProcessStatus) Exited() bool { return s.Signal == 0 && !s.Detached }

// Signaled reports whether a signal (Signal) killed the child.
func (s ProcessStatus) Signaled() bool { return s.Signal != 0 }

// Success reports an exit with code 0 (Twisted's ProcessDone).
func (s ProcessStatus) Success() bool { return s.Exited() && s.Code == 0 }

// ExitCode is the status as a shell reports it: Code after an exit, 128 +
// the signal number after a kill, -1 when Detached.
func (s ProcessStatus) ExitCode() int {
	switch {
	case s.Detached:
		return -1
	case s.Signal != 0:
		return 128 + int(s.Signal)
	}
	return s.Code
}

// Err is nil after an exit with code 0; otherwise an error matching
// ErrProcessTerminated (a non-zero code or a signal) or ErrProcessDetached,
// whose text gives the status.
func (s ProcessStatus) Err() error {
	switch {
	case s.Detached:
		return ErrProcessDetached
	case s.Success():
		return nil
	}
	return fmt.Errorf("%w: %s", ErrProcessTerminated, s)
}

// String describes the status ("exit status 3", "signal: killed (core
// dumped)", "detached").
func (s ProcessStatus) String() string {
	switch {
	case s.Detached:
		return "detached"
	case s.Signal != 0:
		str := "signal: " + s.Signal.String()
		if s.CoreDumped {
			str += " (core dumped)"
		}
		return str
	}
	return "exit status " + strconv.Itoa(s.Code)
}

// ProcessProtocol handles one child process (Twisted's IProcessProtocol).
//
// The calls, all on the loop: ConnectionMade once, first (inside the spawn
// call); then, interleaved, OutReceived / ErrReceived / ChildDataReceived
// for bytes the child wrote, ChildConnectionLost once per child pipe, and
// ProcessExited once when the child has exited (its pipes may still be
// open: a grandchild may hold them); ProcessEnded once, last, when the
// child has exited and every pipe is closed. Nothing is called after
// ProcessEnded.
type ProcessProtocol interface {
	// ConnectionMade gives the protocol its transport, valid until
	// ProcessEnded returns.
	ConnectionMade(t ProcessTransport)
	// OutReceived delivers bytes the child wrote to its descriptor 1;
	// ErrReceived those written to descriptor 2. p is borrowed: valid only
	// until the call returns.
	OutReceived(p []byte)
	ErrReceived(p []byte)
	// ChildConnectionLost: the pipe at child descriptor fd is closed (we
	// closed it, or the child's side closed and everything was read or
	// written). reason matches ErrConnectionDone for an orderly end (end of
	// stream read; a stdin pipe flushed and closed), ErrConnectionLost
	// otherwise (the child closed a pipe we still had bytes for: EPIPE).
	ChildConnectionLost(fd int, reason error)
	// ProcessExited: the child has exited (or is Detached); pipes may still
	// be open.
	ProcessExited(status ProcessStatus)
	// ProcessEnded: the child has exited and every pipe is closed.
	ProcessEnded(status ProcessStatus)
}

// ChildDataReceiver is implemented by a ProcessProtocol that reads child
// descriptors other than 1 and 2 (extra pipes in the child-descriptor map).
// Spawning with such a pipe requires it.
type ChildDataReceiver interface {
	// ChildDataReceived delivers bytes the child wrote to descriptor fd
	// (never 1 or 2: those go to OutReceived and ErrReceived). p is borrowed.
	ChildDataReceived(fd int, p []byte)
}

// ProcessTransport controls one child process and its pipes (Twisted's
// IProcessTransport). Loop goroutine only, like Transport.
type ProcessTransport interface {
	// Pid is the child's process id; 0 once it has been reaped (the number
	// may then belong to another process).
	Pid() int
	// Write queues p for the child's stdin (descriptor 0); p is copied.
	// ErrNoChildFD if descriptor 0 is not a pipe to the child, ErrClosed
	// once it is closed or closing.
	Write(p []byte) error
	// WriteToChild is Write for child descriptor fd.
	WriteToChild(fd int, p []byte) error
	// CloseStdin flushes what was queued for descriptor 0, then closes the
	// pipe: the child reads end of file (Twisted's closeStdin).
	CloseStdin() error
	// CloseChildFD closes the pipe at child descriptor fd: a pipe to the
	// child after flushing, a pipe from the child at once (the child's
	// further writes fail with EPIPE). ErrNoChildFD if fd is not a pipe.
	CloseChildFD(fd int) error
	// LoseConnection closes every pipe as CloseChildFD does (Twisted's
	// loseConnection); the child keeps running.
	LoseConnection() error
	// Signal sends sig to the child through its pidfd (no pid-reuse race).
	// ErrProcessExited once the child has exited.
	Signal(sig syscall.Signal) error
	// Kill is Signal(SIGKILL).
	Kill() error
	// PauseReading stops delivering bytes from every pipe from the child
	// until ResumeReading; the child blocks once its pipes are full.
	PauseReading()
	ResumeReading()
	// RegisterProducer attaches a producer feeding stdin, with the same
	// flow control as Transport.RegisterProducer (watermarks on the stdin
	// queue). ErrNoChildFD without a stdin pipe.
	RegisterProducer(p Producer, streaming bool) error
	UnregisterProducer()
	// Clock is the loop as a time source.
	Clock() Clock
	// A process transport is a push producer (PauseProducing pauses
	// reading, ResumeProducing resumes it, StopProducing is LoseConnection),
	// so its output can feed another transport with flow control.
	PushProducer
}

// ProcessProtocolBase is a ProcessProtocol that does nothing but keep its
// transport (Twisted's ProcessProtocol base class): embed it and override
// the methods you need.
type ProcessProtocolBase struct {
	// Transport is set by ConnectionMade.
	Transport ProcessTransport
}

var _ ProcessProtocol = (*ProcessProtocolBase)(nil)

// ConnectionMade keeps t in Transport.
func (b *ProcessProtocolBase) ConnectionMade(t ProcessTransport) { b.Transport = t }

// OutReceived discards p.
func (b *ProcessProtocolBase) OutReceived(p []byte) {}

// ErrReceived discards p.
func (b *ProcessProtocolBase) ErrReceived(p []byte) {}

// ChildConnectionLost does nothing.
func (b *ProcessProtocolBase) ChildConnectionLost(fd int, reason error) {}

// ProcessExited does nothing.
func (b *ProcessProtocolBase) ProcessExited(status ProcessStatus) {}

// ProcessEnded does nothing.
func (b *ProcessProtocolBase) ProcessEnded(status ProcessStatus) {}
