// Package unix is gyre's UNIX stream socket transport (Twisted's listenUNIX
// and connectUNIX): Listen returns a Port, Connect a Connector, and each
// connection is a *Conn — a stream.Conn with the peer's credentials
// (SO_PEERCRED) and descriptor passing (SCM_RIGHTS) added. Addresses are
// filesystem paths or Linux abstract names written "@name" (sun_path with a
// leading NUL, as in Go's net). The signatures mirror package tcp's.
// Importing the package registers the "unix" network (transports.Reactor's
// ListenUNIX and ConnectUNIX). The same code runs on both backends.
package unix

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// ListenOptions configure Listen. The zero value is a good default.
type ListenOptions struct {
	// Backlog of the listening socket; default 511 (the kernel caps it at
	// net.core.somaxconn).
	Backlog int
	// Mode, if not zero, is the permission bits of the socket file (e.g.
	// 0660; connecting needs write permission on it). The file never has
	// more bits than Mode, the umask is not applied to it, and no client can
	// connect before it has exactly Mode: the bits are set on the socket
	// before bind(2) (Linux creates the file with the socket's mode less the
	// umask), bits the umask removed are added back with chmod(2) after
	// bind, and listen(2) comes last (until then a connect is refused).
	// Zero leaves the kernel's default, 0777 less the umask. Ignored for an
	// abstract name, which has no file (and no permissions).
	Mode os.FileMode
	// RemoveStale removes a stale socket file at the path — a socket file
	// with no listener behind it (a connect to it is refused), left by a
	// process that died — and binds in its place. Without it Listen fails
	// with ErrStaleSocket. A live listener (EADDRINUSE) and a file that is
	// not a socket (ErrNotSocket) are never removed. Listen tells a live
	// listener from a stale file by connecting to it, with or without
	// RemoveStale, whenever the path is taken: a live listener sees one
	// connection (RemoteAddr "@") that ends at once.
	RemoveStale bool
	// Watermarks for producers on accepted connections.
	Watermarks transports.Watermarks
}

// ErrStaleSocket is returned (wrapped, together with syscall.EADDRINUSE)
// when the path is a socket file with no listener behind it and
// ListenOptions.RemoveStale is not set.
var ErrStaleSocket = errors.New("gyre/unix: stale socket file (no listener behind it)")

// ErrNotSocket is returned (wrapped, together with syscall.EADDRINUSE) when
// the path exists and is not a socket; Listen never removes it.
var ErrNotSocket = errors.New("gyre/unix: path exists and is not a socket")

// Port is a listening UNIX stream socket (transports.Port): a
// stream.Listener (the accept loop, see its documentation). Closing it
// removes the socket file Listen created, once, and only if the path still
// names that file (a file another listener bound there meanwhile is left
// alone); an adopted listener's file is never removed. Close must be called
// on the loop; Addr and Done are goroutine-safe.
type Port struct {
	*stream.Listener
}

var _ transports.Port = (*Port)(nil)

// Listen binds and listens on path (a filesystem path, or "@name" for a
// Linux abstract name) and accepts connections on loop, building a protocol
// for each with f. Binding happens before Listen returns, so errors are
// reported here, each in a *net.OpError: ErrBadAddress (empty, NUL byte,
// too long for sun_path), syscall.EADDRINUSE (a live listener, or an
// abstract name in use), ErrStaleSocket, ErrNotSocket, and the system
// call's errors (EACCES, ENOENT for a missing directory, …). Accepting
// starts on the loop's next turn. Goroutine-safe.
func Listen(loop *reactor.Loop, path string, f transports.Factory, opts ListenOptions) (*Port, error) {
	a, err := parseAddr(path)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "unix", Err: err}
	}
	fd, file, err := listenSocket(a, opts)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "unix", Addr: a.netAddr(), Err: err}
	}
	l, err := stream.Listen(loop, fd, f, listenerConfig(a.netAddr(), opts, file.remove))
	if err != nil {
		file.remove()
		return nil, &net.OpError{Op: "listen", Net: "unix", Addr: a.netAddr(), Err: err}
	}
	return &Port{Listener: l}, nil
}

// listenerConfig is the stream.ListenerConfig of a UNIX listener; closing
// (may be nil) runs once inside Close: the socket file is removed there, so
// Close keeps transports.Port's promise that the path can be bound again
// once it has returned. (An abstract name is released only with the
// descriptor: once Done is closed.)
func listenerConfig(addr net.Addr, opts ListenOptions, closing func()) stream.ListenerConfig {
	return stream.ListenerConfig{
		Net:  "unix",
		Addr: addr,
		NewConn: func(loop *reactor.Loop, fd int) (*stream.Conn, transports.Transport) {
			c := newConn(loop, fd, remoteAddr(fd), opts.Watermarks)
			return &c.Conn, c
		},
		Closing: closing,
	}
}

// socketFile is the file a listener created: removed on close only while
// the path still names it (same device and inode).
type socketFile struct {
	path     string
	dev, ino uint64
}

func (s *socketFile) remove() {
	if s == nil {
		return
	}
	var st unix.Stat_t
	if unix.Lstat(s.path, &st) == nil && st.Dev == s.dev && st.Ino == s.ino && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		_ = unix.Unlink(s.path)
	}
}

// listenSocket returns a bound, listening socket for a and, for a path,
// the file it created.
func listenSocket(a address, opts ListenOptions) (int, *socketFile, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, os.NewSyscallError("socket", err)
	}
	fail := func(err error) (int, *socketFile, error) {
		_ = unix.Close(fd)
		return -1, nil, err
	}
	mode := uint32(opts.Mode.Perm())
	if mode != 0 && !a.abstract {
		// The file bind creates gets the socket inode's mode less the umask.
		if err := unix.Fchmod(fd, mode); err != nil {
			return fail(os.NewSyscallError("fchmod", err))
		}
	}
	if err := bind(fd, a, opts.RemoveStale); err != nil {
		return fail(err)
	}
	var file *socketFile
	if !a.abstract {
		var st unix.Stat_t
		if err := unix.Lstat(a.name, &st); err != nil {
			return fail(os.NewSyscallError("lstat", err))
		}
		file = &socketFile{path: a.name, dev: st.Dev, ino: st.Ino}
		if mode != 0 && st.Mode&0o777 != mode {
			// The umask removed bits; nobody can connect before listen.
			if err := unix.Fchmodat(unix.AT_FDCWD, a.name, mode, 0); err != nil {
				file.remove()
				return fail(os.NewSyscallError("chmod", err))
			}
		}
	}
	backlog := opts.Backlog
	if backlog <= 0 {
		backlog = 511
	}
	if err := unix.Listen(fd, backlog); err != nil {
		file.remove()
		return fail(os.NewSyscallError("listen", err))
	}
	return fd, file, nil
}

// bind binds fd to a. On EADDRINUSE at a path it tells a live listener
// (EADDRINUSE) from a stale socket file (ErrStaleSocket, or removed and
// bound again with removeStale) and from a file that is not a socket
// (ErrNotSocket).
func bind(fd int, a address, removeStale bool) error {
	err := unix.Bind(fd, a.sockaddr())
	if err == nil {
		return nil
	}
	if err != unix.EADDRINUSE || a.abstract {
		return os.NewSyscallError("bind", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(a.name, &st); err != nil {
		if err == unix.ENOENT { // removed meanwhile: try once more
			return os.NewSyscallError("bind", unix.Bind(fd, a.sockaddr()))
		}
		return os.NewSyscallError("lstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%w: %s (%w)", ErrNotSocket, a.name, syscall.EADDRINUSE)
	}
	if !stale(a) {
		return os.NewSyscallError("bind", syscall.EADDRINUSE)
	}
	if !removeStale {
		return fmt.Errorf("%w: %s (%w)", ErrStaleSocket, a.name, syscall.EADDRINUSE)
	}
	if err := unix.Unlink(a.name); err != nil && err != unix.ENOENT {
		return os.NewSyscallError("unlink", err)
	}
	return os.NewSyscallError("bind", unix.Bind(fd, a.sockaddr()))
}

// stale reports whether a connect to a is refused (no listener behind the
// socket file). A connect that succeeds reaches a live listener, which
// sees one connection that closes at once.
func stale(a address) bool {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Connect(fd, a.sockaddr()) == unix.ECONNREFUSED
}
