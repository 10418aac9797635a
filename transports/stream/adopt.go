package stream

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
)

// Adopter is implemented by a Network that can wrap stream sockets created
// elsewhere (AdoptStreamPort, AdoptStreamConnection). Each method takes
// ownership of fd: an open, non-blocking, close-on-exec socket of the
// network's family.
type Adopter interface {
	// AdoptListener starts accepting on fd, a bound, listening socket, as
	// the network's Listen would (Listen of this package).
	AdoptListener(loop *reactor.Loop, fd int, f transports.Factory) (transports.Port, error)
	// AdoptedConn wraps fd, a connected socket, as an accepted connection
	// of the network (ListenerConfig.NewConn). Called on the loop.
	AdoptedConn(loop *reactor.Loop, fd int) (c *Conn, self transports.Transport)
}

var (
	// ErrUnsupportedFamily is returned for a socket whose address family
	// no stream network handles (Twisted's UnsupportedAddressFamily):
	// AF_INET and AF_INET6 are "tcp", AF_UNIX is "unix".
	ErrUnsupportedFamily = errors.New("gyre/stream: unsupported address family")
	// ErrUnsupportedSocketType is returned for a descriptor that is not a
	// stream socket (Twisted's UnsupportedSocketType).
	ErrUnsupportedSocketType = errors.New("gyre/stream: not a stream socket")
	// ErrNotListening is returned by AdoptStreamPort for a socket that is
	// not listening.
	ErrNotListening = errors.New("gyre/stream: socket is not listening")
	// ErrListening is returned by AdoptStreamConnection for a listening
	// socket.
	ErrListening = errors.New("gyre/stream: socket is listening, not connected")
)

// adoptee checks fd (a stream socket, listening or not as wantListening
// says) and returns its network's Adopter and a duplicate of fd
// (close-on-exec, non-blocking).
func adoptee(fd int, wantListening bool) (Adopter, int, error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err == unix.ENOTSOCK {
		return nil, -1, fmt.Errorf("%w: descriptor %d is not a socket: %w", ErrUnsupportedSocketType, fd, os.NewSyscallError("getsockopt", err))
	}
	if err != nil {
		return nil, -1, os.NewSyscallError("getsockopt", err)
	}
	if typ != unix.SOCK_STREAM {
		return nil, -1, fmt.Errorf("%w: descriptor %d has socket type %d", ErrUnsupportedSocketType, fd, typ)
	}
	acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return nil, -1, os.NewSyscallError("getsockopt", err)
	}
	switch {
	case wantListening && acc == 0:
		return nil, -1, fmt.Errorf("%w: descriptor %d", ErrNotListening, fd)
	case !wantListening && acc != 0:
		return nil, -1, fmt.Errorf("%w: descriptor %d", ErrListening, fd)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return nil, -1, os.NewSyscallError("getsockname", err)
	}
	var name string
	switch sa.(type) {
	case *unix.SockaddrInet4, *unix.SockaddrInet6:
		name = "tcp"
	case *unix.SockaddrUnix:
		name = "unix"
	default:
		return nil, -1, fmt.Errorf("%w: descriptor %d (%T)", ErrUnsupportedFamily, fd, sa)
	}
	n, err := LookupNetwork(name)
	if err != nil {
		return nil, -1, err
	}
	a, ok := n.(Adopter)
	if !ok {
		return nil, -1, fmt.Errorf("%w: network %q cannot adopt descriptors", ErrUnsupportedFamily, name)
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, -1, os.NewSyscallError("fcntl", err)
	}
	if err := unix.SetNonblock(dup, true); err != nil {
		_ = unix.Close(dup)
		return nil, -1, os.NewSyscallError("fcntl", err)
	}
	return a, dup, nil
}

// AdoptStreamPort starts accepting, on loop, on fd: a listening stream
// socket created elsewhere — inherited from systemd or a supervisor (socket
// activation), or made with another library (Twisted's adoptStreamPort).
// The family is found with getsockname: AF_INET/AF_INET6 go to the "tcp"
// network, AF_UNIX to "unix" (its package must be linked in). Each
// connection gets a protocol from f, as with the network's Listen.
//
// fd is duplicated (F_DUPFD_CLOEXEC, as Twisted and Go's net.FileListener
// do): the port owns and closes its duplicate; the caller keeps fd and may
// close it at once. The duplicate shares the open file description, so
// O_NONBLOCK, which the port sets, is set on fd too. A UNIX socket file is
// not removed when the port closes (it was not created by it), and Close
// does not shut the socket down (shutdown(2) would stop it for every
// holder): other holders keep accepting on it.
//
// Errors: ErrUnsupportedSocketType, ErrNotListening, ErrUnsupportedFamily,
// transports.ErrUnsupportedNetwork, and the system calls' errors.
// Goroutine-safe.
func AdoptStreamPort(loop *reactor.Loop, fd int, f transports.Factory) (transports.Port, error) {
	a, dup, err := adoptee(fd, true)
	if err != nil {
		return nil, err
	}
	adopted.Store(dup, struct{}{})
	defer adopted.Delete(dup)
	return a.AdoptListener(loop, dup, f)
}

// adopted holds the duplicates AdoptStreamPort is handing to a network's
// AdoptListener, so that the Listener made on one (newListener) knows its
// open file description is shared with whoever passed the socket — systemd
// keeps it to pass again to the service's next instance, several loops may
// adopt the same inherited socket — and its Close must not shutdown(2) it,
// which would stop the socket for every holder.
var adopted sync.Map // fd (int) → struct{}

// AdoptStreamConnection makes fd, a connected stream socket created
// elsewhere, a connection on loop (Twisted's adoptStreamConnection): on the
// loop's next turn f builds its protocol (BuildProtocol with the peer's
// address; nil closes the connection), which then sees ConnectionMade and
// everything a connection accepted by the network's Listen sees. As in
// Twisted, f is not started or stopped (FactoryStarter).
//
// fd is duplicated as for AdoptStreamPort: the caller keeps fd and may
// close it at once. The same errors, with ErrListening for a listening
// socket, and the loop's (reactor.ErrStopped). Goroutine-safe.
func AdoptStreamConnection(loop *reactor.Loop, fd int, f transports.Factory) error {
	a, dup, err := adoptee(fd, false)
	if err != nil {
		return err
	}
	err = loop.Call(func() {
		c, self := a.AdoptedConn(loop, dup)
		proto := buildProtocol(loop, f, c.RemoteAddr())
		if proto == nil {
			_ = unix.Close(dup) // nothing was started on it
			return
		}
		c.Start(proto, self)
	})
	if err != nil {
		_ = unix.Close(dup)
	}
	return err
}
