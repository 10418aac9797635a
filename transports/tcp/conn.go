package tcp

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// Conn is the TCP transport of one connection: a stream.Conn (which does the
// reading, writing, flow control and closing, see its documentation) with
// TCP's socket options added. It implements transports.TCPTransport. Every
// method must be called on the connection's loop (from a Protocol callback or
// a function passed to the loop's Call).
type Conn struct {
	stream.Conn
}

var _ transports.TCPTransport = (*Conn)(nil)

func newConn(loop *reactor.Loop, fd int, cfg stream.ConnConfig) *Conn {
	c := new(Conn)
	c.Init(loop, fd, cfg)
	return c
}

// SetNoDelay implements transports.TCPTransport.
func (c *Conn) SetNoDelay(on bool) error {
	fd := c.Fd()
	if fd < 0 {
		return transports.ErrClosed
	}
	v := 0
	if on {
		v = 1
	}
	return os.NewSyscallError("setsockopt", unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, v))
}

// SetKeepAlive implements transports.TCPTransport.
func (c *Conn) SetKeepAlive(on bool, idle time.Duration) error {
	fd := c.Fd()
	if fd < 0 {
		return transports.ErrClosed
	}
	return setKeepAlive(fd, on, idle)
}

func setKeepAlive(fd int, on bool, idle time.Duration) error {
	v := 0
	if on {
		v = 1
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, v); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	if on && idle > 0 {
		secs := int((idle + time.Second - 1) / time.Second)
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}
