package unix

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/transports/internal/unixpath"
	"github.com/gyre-io/gyre/transports/stream"
)

// ErrBadAddress is returned (wrapped in a *net.OpError) for a path that
// cannot name a UNIX socket: empty, containing a NUL byte, or too long for
// sun_path: at most 107 bytes, the '@' of an abstract name included (a
// filesystem path needs its terminating NUL; x/sys/unix allows abstract
// names one byte shorter than the kernel would).
var ErrBadAddress = unixpath.ErrBadAddress

// parseAddr checks path: a filesystem path, or "@name" for the Linux
// abstract name "\x00name" (Go's net and x/sys/unix use the same
// convention).
func parseAddr(path string) (unixpath.Addr, error) { return unixpath.Parse(path) }

// target fills t with a for connect(2).
func target(a unixpath.Addr) stream.Target {
	t := stream.Target{Addr: a.NetAddr("unix")}
	t.Len = a.Raw((*unix.RawSockaddrAny)(unsafe.Pointer(&t.Raw)))
	return t
}

func localAddr(fd int) net.Addr  { return unixpath.Local(fd, "unix") }
func remoteAddr(fd int) net.Addr { return unixpath.Remote(fd, "unix") }
