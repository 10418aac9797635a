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
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/internal/unixpath"
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
var ErrStaleSocket = unixpath.ErrStaleSocket

// ErrNotSocket is returned (wrapped, together with syscall.EADDRINUSE) when
// the path exists and is not a socket; Listen never removes it.
var ErrNotSocket = unixpath.ErrNotSocket

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
		return nil, &net.OpError{Op: "listen", Net: "unix", Addr: a.NetAddr("unix"), Err: err}
	}
	l, err := stream.Listen(loop, fd, f, listenerConfig(a.NetAddr("unix"), opts, file.Remove))
	if err != nil {
		file.Remove()
		return nil, &net.OpError{Op: "listen", Net: "unix", Addr: a.NetAddr("unix"), Err: err}
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

// listenSocket returns a bound, listening socket for a and, for a path,
// the file it created (mode, stale file and removal: unixpath.Bind).
func listenSocket(a unixpath.Addr, opts ListenOptions) (int, *unixpath.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, os.NewSyscallError("socket", err)
	}
	// Until listen(2) a connect is refused: nobody connects before the
	// file has its exact mode.
	file, err := unixpath.Bind(fd, a, unix.SOCK_STREAM, opts.Mode, opts.RemoveStale)
	if err != nil {
		_ = unix.Close(fd)
		return -1, nil, err
	}
	backlog := opts.Backlog
	if backlog <= 0 {
		backlog = 511
	}
	if err := unix.Listen(fd, backlog); err != nil {
		file.Remove()
		_ = unix.Close(fd)
		return -1, nil, os.NewSyscallError("listen", err)
	}
	return fd, file, nil
}
