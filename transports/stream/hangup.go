package stream

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/transports"
)

// hangupOp is the watch ConnConfig.WatchHangup keeps in the recv slot of a
// ReadNone Conn: a poll for POLLERR (POLLHUP is always reported too). The
// write end of a pipe reports POLLERR once its read end is closed (Linux
// pipe_poll), so a Conn writing a child's stdin learns that the child
// closed it — or exited — even while it has nothing to write (Twisted's
// ProcessWriter, which reads its write pipe for the same reason). With
// nothing queued that is a clean end (ErrConnectionDone: the reader stopped
// and nothing was lost); with bytes queued it is EPIPE (ErrConnectionLost).
var hangupOp = backend.Op{Kind: backend.KindPoll, Events: unix.POLLERR}

// hangupDone handles the completion of the hangup watch.
func (c *Conn) hangupDone(comp *backend.Completion) {
	switch {
	case comp.Res > 0 && c.q.Buffered() == 0:
		// The reader is gone and nothing was accepted for it: nothing is
		// lost, a clean end.
		c.teardown(transports.ErrConnectionDone, false)
	case comp.Res > 0:
		// The reader is gone: what is queued can never be delivered, as a
		// write would find out with EPIPE.
		c.teardown(transports.Lost(os.NewSyscallError("write", syscall.EPIPE)), false)
	case comp.Res == 0 || comp.Err() == syscall.ECANCELED || comp.Err() == syscall.EINTR:
		if !c.paused {
			c.armRecv() // a Resume raced with the cancel of a Pause
		}
	default:
		c.teardown(transports.Lost(os.NewSyscallError("poll", comp.Err())), false)
	}
}
