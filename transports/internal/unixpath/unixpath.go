// Package unixpath is the address handling shared by gyre's UNIX socket
// transports (transports/unix for streams, transports/unixgram for
// datagrams): parsing a path or "@abstract" name, building the kernel's
// sockaddr_un, decoding one, and binding with the socket file handled the
// same way for every socket type — an exact mode set before anyone can use
// the file, a stale file told from a live socket, and removal of our own
// file only (same device and inode).
package unixpath

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrBadAddress: a path that cannot name a UNIX socket: empty, containing a
// NUL byte, or too long for sun_path: at most 107 bytes, the '@' of an
// abstract name included (a filesystem path needs its terminating NUL;
// x/sys/unix allows abstract names one byte shorter than the kernel would).
var ErrBadAddress = errors.New("gyre/unix: bad address")

// ErrStaleSocket: the path is a socket file with no socket behind it and
// stale files are not to be removed (returned wrapped, together with
// syscall.EADDRINUSE).
var ErrStaleSocket = errors.New("gyre/unix: stale socket file (no listener behind it)")

// ErrNotSocket: the path exists and is not a socket; it is never removed
// (returned wrapped, together with syscall.EADDRINUSE).
var ErrNotSocket = errors.New("gyre/unix: path exists and is not a socket")

// MaxPath is the most bytes of a name as given (sun_path's 108 less one).
const MaxPath = len(unix.RawSockaddrUnix{}.Path) - 1

// Addr is a parsed UNIX socket address.
type Addr struct {
	Name     string // as given: a path, or "@name"
	Abstract bool   // Linux abstract namespace: sun_path starts with NUL
}

// Parse checks path: a filesystem path, or "@name" for the Linux abstract
// name "\x00name" (Go's net and x/sys/unix use the same convention).
// Errors wrap ErrBadAddress.
func Parse(path string) (Addr, error) {
	a := Addr{Name: path, Abstract: strings.HasPrefix(path, "@")}
	n := len(path)
	switch {
	case n == 0 || path == "@":
		return a, fmt.Errorf("%w: empty path %q", ErrBadAddress, path)
	case strings.IndexByte(path, 0) >= 0:
		return a, fmt.Errorf("%w: NUL byte in %q", ErrBadAddress, path)
	case n > MaxPath:
		return a, fmt.Errorf("%w: %d bytes is longer than sun_path allows (%d): %q", ErrBadAddress, n, MaxPath, path)
	}
	return a, nil
}

// NetAddr is a as a *net.UnixAddr of network net ("unix", "unixgram").
func (a Addr) NetAddr(network string) *net.UnixAddr {
	return &net.UnixAddr{Name: a.Name, Net: network}
}

// Sockaddr is a for unix.Bind and unix.Connect.
func (a Addr) Sockaddr() unix.Sockaddr { return &unix.SockaddrUnix{Name: a.Name} }

// Raw fills raw with a as the kernel takes it (connect, sendmsg) and returns
// its length: an abstract name has a leading NUL and no terminating one; a
// path is NUL-terminated. It allocates nothing.
func (a Addr) Raw(raw *unix.RawSockaddrAny) uint32 { return RawName(a.Name, raw) }

// RawName is Addr.Raw for a name already checked by Parse.
func RawName(name string, raw *unix.RawSockaddrAny) uint32 {
	sa := (*unix.RawSockaddrUnix)(unsafe.Pointer(raw))
	*sa = unix.RawSockaddrUnix{Family: unix.AF_UNIX}
	for i := 0; i < len(name); i++ {
		sa.Path[i] = int8(name[i])
	}
	n := len(name)
	if n > 0 && name[0] == '@' {
		sa.Path[0] = 0
	} else {
		n++ // the NUL
	}
	return uint32(unsafe.Offsetof(sa.Path)) + uint32(n)
}

// Decode returns the name in raw, a sockaddr_un of len(raw) bytes as the
// kernel wrote it (recvmsg, getsockname): a path up to its NUL, an abstract
// name as "@name", an unnamed socket as "". The bytes are returned as a view
// of raw; convert them to a string to keep them.
func Decode(raw []byte) []byte {
	off := int(unsafe.Offsetof(unix.RawSockaddrUnix{}.Path))
	if len(raw) <= off || *(*uint16)(unsafe.Pointer(&raw[0])) != unix.AF_UNIX {
		return nil
	}
	p := raw[off:]
	if p[0] == 0 { // abstract: every byte up to the length counts
		p[0] = '@' // raw is the receive scratch/provided buffer: ours to mark
		return p
	}
	for i, c := range p {
		if c == 0 {
			return p[:i]
		}
	}
	return p
}

// SockName turns a socket address from getsockname/getpeername into a
// *net.UnixAddr of network (an abstract name as "@name"; an unnamed socket
// as "").
func SockName(sa unix.Sockaddr, network string) *net.UnixAddr {
	if u, ok := sa.(*unix.SockaddrUnix); ok {
		return &net.UnixAddr{Name: u.Name, Net: network}
	}
	return &net.UnixAddr{Net: network}
}

// Local is fd's bound address (getsockname).
func Local(fd int, network string) *net.UnixAddr {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return &net.UnixAddr{Net: network}
	}
	return SockName(sa, network)
}

// Remote is fd's peer address (getpeername).
func Remote(fd int, network string) *net.UnixAddr {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return &net.UnixAddr{Net: network}
	}
	return SockName(sa, network)
}

// File is the socket file a bind created: Remove removes it only while the
// path still names it (same device and inode) and it is a socket.
type File struct {
	path     string
	dev, ino uint64
}

// Remove unlinks the file if the path still names it; nil-safe, and a
// second call finds nothing to remove. Not goroutine-safe.
func (f *File) Remove() {
	if f == nil || f.path == "" {
		return
	}
	var st unix.Stat_t
	if unix.Lstat(f.path, &st) == nil && st.Dev == f.dev && st.Ino == f.ino && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		_ = unix.Unlink(f.path)
	}
	f.path = ""
}

// Bind binds fd (an AF_UNIX socket of type sotype, SOCK_STREAM or
// SOCK_DGRAM) to a and returns, for a path, the file it created.
//
// mode, if not zero, is the exact permission of the file: set on the socket
// before bind(2) (Linux creates the file with the socket inode's mode less
// the umask, so it never has more bits than mode) and bits the umask
// removed are added back with chmod(2) after bind. Ignored for an abstract
// name. On EADDRINUSE at a path Bind tells a live socket (EADDRINUSE) from a
// stale socket file (ErrStaleSocket, or removed and bound again with
// removeStale) and from a file that is not a socket (ErrNotSocket, never
// removed). Errors are *os.SyscallError or wrap the sentinels above.
func Bind(fd int, a Addr, sotype int, mode os.FileMode, removeStale bool) (*File, error) {
	m := uint32(mode.Perm())
	if m != 0 && !a.Abstract {
		if err := unix.Fchmod(fd, m); err != nil {
			return nil, os.NewSyscallError("fchmod", err)
		}
	}
	if err := bind(fd, a, sotype, removeStale); err != nil {
		return nil, err
	}
	if a.Abstract {
		return nil, nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(a.Name, &st); err != nil {
		return nil, os.NewSyscallError("lstat", err)
	}
	f := &File{path: a.Name, dev: st.Dev, ino: st.Ino}
	if m != 0 && st.Mode&0o777 != m {
		if err := unix.Fchmodat(unix.AT_FDCWD, a.Name, m, 0); err != nil {
			f.Remove()
			return nil, os.NewSyscallError("chmod", err)
		}
	}
	return f, nil
}

func bind(fd int, a Addr, sotype int, removeStale bool) error {
	err := unix.Bind(fd, a.Sockaddr())
	if err == nil {
		return nil
	}
	if err != unix.EADDRINUSE || a.Abstract {
		return os.NewSyscallError("bind", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(a.Name, &st); err != nil {
		if err == unix.ENOENT { // removed meanwhile: try once more
			return os.NewSyscallError("bind", unix.Bind(fd, a.Sockaddr()))
		}
		return os.NewSyscallError("lstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%w: %s (%w)", ErrNotSocket, a.Name, syscall.EADDRINUSE)
	}
	if !stale(a, sotype) {
		return os.NewSyscallError("bind", syscall.EADDRINUSE)
	}
	if !removeStale {
		return fmt.Errorf("%w: %s (%w)", ErrStaleSocket, a.Name, syscall.EADDRINUSE)
	}
	if err := unix.Unlink(a.Name); err != nil && err != unix.ENOENT {
		return os.NewSyscallError("unlink", err)
	}
	return os.NewSyscallError("bind", unix.Bind(fd, a.Sockaddr()))
}

// stale reports whether a connect to a, from a socket of the same type, is
// refused: no socket behind the file. (A stream connect that succeeds
// reaches a live listener, which sees one connection that closes at once;
// a datagram connect only sets our peer.)
func stale(a Addr, sotype int) bool {
	fd, err := unix.Socket(unix.AF_UNIX, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Connect(fd, a.Sockaddr()) == unix.ECONNREFUSED
}
