package unix

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/transports/stream"
)

// ErrBadAddress is returned (wrapped in a *net.OpError) for a path that
// cannot name a UNIX socket: empty, containing a NUL byte, or too long for
// sun_path: at most 107 bytes, the '@' of an abstract name included (a
// filesystem path needs its terminating NUL; x/sys/unix allows abstract
// names one byte shorter than the kernel would).
var ErrBadAddress = errors.New("gyre/unix: bad address")

// maxPath is the most bytes of a name as given (sun_path's 108 less one).
const maxPath = len(unix.RawSockaddrUnix{}.Path) - 1

// address is a parsed UNIX socket address.
type address struct {
	name     string // as given: a path, or "@name"
	abstract bool   // Linux abstract namespace: sun_path starts with NUL
}

// parseAddr checks path: a filesystem path, or "@name" for the Linux
// abstract name "\x00name" (Go's net and x/sys/unix use the same
// convention).
func parseAddr(path string) (address, error) {
	a := address{name: path, abstract: strings.HasPrefix(path, "@")}
	n := len(path)
	switch {
	case n == 0 || path == "@":
		return a, fmt.Errorf("%w: empty path %q", ErrBadAddress, path)
	case strings.IndexByte(path, 0) >= 0:
		return a, fmt.Errorf("%w: NUL byte in %q", ErrBadAddress, path)
	case n > maxPath:
		return a, fmt.Errorf("%w: %d bytes is longer than sun_path allows (%d): %q", ErrBadAddress, n, maxPath, path)
	}
	return a, nil
}

// netAddr is a as a *net.UnixAddr.
func (a address) netAddr() *net.UnixAddr { return &net.UnixAddr{Name: a.name, Net: "unix"} }

// sockaddr is a for bind(2).
func (a address) sockaddr() unix.Sockaddr { return &unix.SockaddrUnix{Name: a.name} }

// target fills t with a for connect(2): an abstract name has a leading NUL
// and no terminating one; a path is NUL-terminated.
func (a address) target() stream.Target {
	t := stream.Target{Addr: a.netAddr()}
	sa := (*unix.RawSockaddrUnix)(unsafe.Pointer(&t.Raw))
	sa.Family = unix.AF_UNIX
	for i := 0; i < len(a.name); i++ {
		sa.Path[i] = int8(a.name[i])
	}
	n := len(a.name)
	if a.abstract {
		sa.Path[0] = 0
	} else {
		n++ // the NUL
	}
	t.Len = uint32(unsafe.Offsetof(sa.Path)) + uint32(n)
	return t
}

// sockName turns a socket address from getsockname/getpeername into a
// *net.UnixAddr (an abstract name as "@name"; an unnamed socket as "").
func sockName(sa unix.Sockaddr) *net.UnixAddr {
	if u, ok := sa.(*unix.SockaddrUnix); ok {
		return &net.UnixAddr{Name: u.Name, Net: "unix"}
	}
	return &net.UnixAddr{Net: "unix"}
}

func localAddr(fd int) net.Addr {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return &net.UnixAddr{Net: "unix"}
	}
	return sockName(sa)
}

func remoteAddr(fd int) net.Addr {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return &net.UnixAddr{Net: "unix"}
	}
	return sockName(sa)
}
