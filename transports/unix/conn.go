package unix

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// MaxFDs is the most descriptors one WriteFDs passes (the kernel's
// SCM_MAX_FD).
const MaxFDs = 253

// ErrNoData is returned by WriteFDs for an empty p: on a stream socket
// descriptors travel attached to a byte of data, and Linux passes none with
// a send of zero bytes.
var ErrNoData = errors.New("gyre/unix: descriptors need at least one byte of data to travel with")

// ErrTooManyFDs is returned by WriteFDs for more than MaxFDs descriptors.
var ErrTooManyFDs = fmt.Errorf("gyre/unix: more than %d descriptors in one write", MaxFDs)

// FDReceiver is implemented by a protocol that receives descriptors passed
// over its UNIX connection (SCM_RIGHTS). A connection whose protocol
// implements it reads with single-shot recvmsg operations carrying a control
// buffer (about 1 KiB per connection) instead of one multishot recv: one
// submission per read instead of one per burst. Without it, descriptors a
// peer passes are closed by the kernel as their bytes are read.
type FDReceiver interface {
	// FDsReceived is called on the loop with the descriptors that arrived
	// with the next bytes DataReceived will see (they are delivered before
	// those bytes; while reading is paused, as they arrive, before the held
	// bytes). The descriptors are open, close-on-exec, and the protocol's
	// from now on: it must close them (or hand them on). fds is valid only
	// during the call. Descriptors arriving after LoseConnection, or while
	// the connection closes, are closed by the transport.
	FDsReceived(fds []int)
}

// Ucred is the identity of the peer process (SO_PEERCRED, socket(7)).
type Ucred struct {
	PID int // process id
	UID int // user id
	GID int // group id
}

// Conn is the transport of one UNIX stream connection: a stream.Conn (which
// does the reading, writing, flow control and closing with the same
// semantics as TCP: half-close with shutdown(SHUT_WR), pause, producers,
// lose vs abort; see its documentation) plus the peer's credentials and
// descriptor passing. Every method must be called on the connection's loop.
type Conn struct {
	stream.Conn

	cred   Ucred
	credOK bool

	recv    FDReceiver
	pending []fdMsg // WriteFDs not yet sent, in stream order
}

var _ transports.Transport = (*Conn)(nil)

// fdMsg is one WriteFDs: dup'ed descriptors to send with the byte at off.
type fdMsg struct {
	off int64
	fds []int
	ctl []byte // the SCM_RIGHTS message
}

// newConn wraps fd (connected, non-blocking, close-on-exec).
func newConn(loop *reactor.Loop, fd int, remote net.Addr, wm transports.Watermarks) *Conn {
	c := new(Conn)
	c.Init(loop, fd, stream.ConnConfig{
		Local: localAddr(fd), Remote: remote, Watermarks: wm,
		Control: (*ctlOps)(c),
	})
	return c
}

// PeerCred is the identity of the peer process: for an accepted connection,
// the process that connected, as of its connect(2); for a connected one, the
// process that called listen(2) (socket(7) SO_PEERCRED). Asked of the kernel
// once, then remembered. transports.ErrClosed once the connection is
// closing.
func (c *Conn) PeerCred() (Ucred, error) {
	if c.credOK {
		return c.cred, nil
	}
	fd := c.Fd()
	if fd < 0 {
		return Ucred{}, transports.ErrClosed
	}
	u, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return Ucred{}, os.NewSyscallError("getsockopt", err)
	}
	c.cred, c.credOK = Ucred{PID: int(u.Pid), UID: int(u.Uid), GID: int(u.Gid)}, true
	return c.cred, nil
}

// WriteFDs queues p like Write and passes fds with its first byte
// (SCM_RIGHTS), in order with every other write: the peer receives them
// just before p. The transport sends duplicates of fds (close-on-exec) and
// closes them once sent or once the connection ends unsent; the caller keeps
// its own descriptors and may close them as soon as WriteFDs returns.
//
// Errors: ErrNoData for an empty p, ErrTooManyFDs for more than MaxFDs,
// EBADF (wrapped) for a descriptor that is not open (nothing is queued
// then), transports.ErrClosed as for Write. A descriptor passed to a peer
// whose protocol does not receive descriptors is closed by its kernel.
func (c *Conn) WriteFDs(p []byte, fds []int) error {
	if len(fds) == 0 {
		return c.Write(p)
	}
	if len(p) == 0 {
		return ErrNoData
	}
	if len(fds) > MaxFDs {
		return ErrTooManyFDs
	}
	if c.Fd() < 0 || c.Disconnecting() {
		return transports.ErrClosed
	}
	dups := make([]int, 0, len(fds))
	for _, fd := range fds {
		d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			closeAll(dups)
			return os.NewSyscallError("fcntl", err)
		}
		dups = append(dups, d)
	}
	c.pending = append(c.pending, fdMsg{off: c.WriteOffset(), fds: dups, ctl: unix.UnixRights(dups...)})
	if err := c.Write(p); err != nil {
		c.pending = c.pending[:len(c.pending)-1]
		closeAll(dups)
		return err
	}
	return nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}

// ctlOps is the Conn's stream.ControlHandler, kept off its exported methods.
type ctlOps Conn

var _ stream.ControlHandler = (*ctlOps)(nil)

func (o *ctlOps) ControlStart(proto transports.Protocol) bool {
	o.recv, _ = proto.(FDReceiver)
	return o.recv != nil
}

func (o *ctlOps) ControlReceived(ctl []byte, drop, trunc bool) {
	c := (*Conn)(o)
	if trunc {
		c.Loop().ReportError(fmt.Errorf("gyre/unix: control messages truncated on %v: the kernel closed descriptors that did not fit", c.RemoteAddr()))
	}
	msgs, err := unix.ParseSocketControlMessage(ctl)
	if err != nil {
		c.Loop().ReportError(fmt.Errorf("gyre/unix: control messages from %v: %w", c.RemoteAddr(), err))
		return
	}
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, got...)
		}
	}
	if len(fds) == 0 {
		return
	}
	if drop || o.recv == nil {
		closeAll(fds)
		return
	}
	o.recv.FDsReceived(fds)
}

func (o *ctlOps) SendControl(off int64) ([]byte, int) {
	if len(o.pending) == 0 {
		return nil, 0
	}
	m := &o.pending[0]
	if m.off > off {
		return nil, int(m.off - off)
	}
	limit := 0
	if len(o.pending) > 1 {
		limit = int(o.pending[1].off - off)
	}
	return m.ctl, limit
}

func (o *ctlOps) ControlSent() {
	closeAll(o.pending[0].fds)
	o.pending[0] = fdMsg{}
	o.pending = o.pending[1:]
	if len(o.pending) == 0 {
		o.pending = nil
	}
}

func (o *ctlOps) ControlClosed() {
	for _, m := range o.pending {
		closeAll(m.fds)
	}
	o.pending = nil
	o.recv = nil
}
