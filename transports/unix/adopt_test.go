package unix_test

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
	"github.com/gyre-io/gyre/transports/tcp"
	gunix "github.com/gyre-io/gyre/transports/unix"
)

func echoRoundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Write([]byte("adopted"))
	require.NoError(t, err)
	got := make([]byte, 7)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, "adopted", string(got))
}

// fileFD is a duplicate of a net listener's or connection's descriptor.
func fileFD(t *testing.T, x interface{ File() (*os.File, error) }) *os.File {
	t.Helper()
	f, err := x.File()
	require.NoError(t, err)
	return f
}

// A listening TCP or UNIX socket made by Go's net is adopted; the caller
// closes its copy at once; the port serves, its type follows the family,
// and closing it leaves a UNIX socket file alone.
func TestAdoptStreamPort(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		base := reactortest.FDCount()
		path := sockPath(t)
		for _, network := range []string{"tcp", "unix"} {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = path
			}
			ln, err := net.Listen(network, addr)
			require.NoError(t, err)
			if ul, ok := ln.(*net.UnixListener); ok {
				ul.SetUnlinkOnClose(false)
			}
			f := fileFD(t, ln.(interface{ File() (*os.File, error) }))
			addr = ln.Addr().String()
			require.NoError(t, ln.Close())
			port, err := stream.AdoptStreamPort(h.Loop, int(f.Fd()), echo.Factory{})
			require.NoError(t, err)
			require.NoError(t, f.Close()) // the caller's copy
			require.Equal(t, addr, port.Addr().String())
			switch network {
			case "tcp":
				require.IsType(t, &tcp.Port{}, port)
			case "unix":
				require.IsType(t, &gunix.Port{}, port)
			}
			c, err := net.Dial(network, addr)
			require.NoError(t, err)
			echoRoundTrip(t, c)
			require.NoError(t, c.Close())
			h.Do(func() { require.NoError(t, port.Close()) })
			<-port.(interface{ Done() <-chan struct{} }).Done()
		}
		require.True(t, exists(path), "an adopted listener's socket file is not removed")
		require.True(t, reactortest.WaitUntil(5*time.Second, func() bool { return reactortest.FDCount() <= base }),
			"fds %d, baseline %d", reactortest.FDCount(), base)
	})
}

// A connected TCP or UNIX socket is adopted: the factory builds a protocol
// for the peer's address and is not started; the caller's copy is closed at
// once.
func TestAdoptStreamConnection(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		base := reactortest.FDCount()
		for _, network := range []string{"tcp", "unix"} {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = sockPath(t)
			}
			ln, err := net.Listen(network, addr)
			require.NoError(t, err)
			client, err := net.Dial(network, ln.Addr().String())
			require.NoError(t, err)
			srv, err := ln.Accept()
			require.NoError(t, err)
			require.NoError(t, ln.Close())
			f := fileFD(t, srv.(interface{ File() (*os.File, error) }))
			require.NoError(t, srv.Close())
			var peer net.Addr
			var built []*recorder
			fac := &startCounter{Factory: transports.FactoryFunc(func(a net.Addr) transports.Protocol {
				peer = a
				r := &recorder{echo: true}
				built = append(built, r)
				return r
			})}
			require.NoError(t, stream.AdoptStreamConnection(h.Loop, int(f.Fd()), fac))
			require.NoError(t, f.Close())
			echoRoundTrip(t, client)
			require.NoError(t, client.Close())
			require.True(t, h.Eventually(5*time.Second, func() bool { return len(built) == 1 && built[0].lost == 1 }))
			h.Do(func() {
				require.Equal(t, client.LocalAddr().String(), peer.String())
				require.Zero(t, fac.starts)
				switch network {
				case "tcp":
					require.IsType(t, &tcp.Conn{}, built[0].t)
				case "unix":
					require.IsType(t, &gunix.Conn{}, built[0].t)
				}
			})
		}
		require.True(t, reactortest.WaitUntil(5*time.Second, func() bool { return reactortest.FDCount() <= base }),
			"fds %d, baseline %d", reactortest.FDCount(), base)
	})
}

type startCounter struct {
	transports.Factory
	starts int
}

func (s *startCounter) StartFactory() { s.starts++ }
func (s *startCounter) StopFactory()  { s.starts++ }

func TestAdoptErrors(t *testing.T) {
	h := reactortest.Start(t, reactor.Auto)
	base := reactortest.FDCount()
	// A datagram socket.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	_, err = stream.AdoptStreamPort(h.Loop, fd, echo.Factory{})
	require.ErrorIs(t, err, stream.ErrUnsupportedSocketType)
	require.ErrorIs(t, stream.AdoptStreamConnection(h.Loop, fd, echo.Factory{}), stream.ErrUnsupportedSocketType)
	require.NoError(t, unix.Close(fd))
	// A stream socket that is not listening, for a port; a listening one
	// for a connection.
	fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	_, err = stream.AdoptStreamPort(h.Loop, fd, echo.Factory{})
	require.ErrorIs(t, err, stream.ErrNotListening)
	require.NoError(t, unix.Bind(fd, &unix.SockaddrUnix{Name: sockPath(t)}))
	require.NoError(t, unix.Listen(fd, 1))
	require.ErrorIs(t, stream.AdoptStreamConnection(h.Loop, fd, echo.Factory{}), stream.ErrListening)
	require.NoError(t, unix.Close(fd))
	// A stream socket of a family no network handles (AF_VSOCK, where the
	// kernel has it).
	if fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err == nil {
		_, err = stream.AdoptStreamPort(h.Loop, fd, echo.Factory{})
		if !errors.Is(err, stream.ErrNotListening) { // unbound vsock: getsockname may answer
			require.ErrorIs(t, err, stream.ErrUnsupportedFamily)
		}
		require.ErrorIs(t, stream.AdoptStreamConnection(h.Loop, fd, echo.Factory{}), stream.ErrUnsupportedFamily)
		require.NoError(t, unix.Close(fd))
	} else {
		t.Logf("no AF_VSOCK here (%v): the unsupported-family case is not checked", err)
	}
	// A pipe is no socket at all.
	r, w, err := os.Pipe()
	require.NoError(t, err)
	_, err = stream.AdoptStreamPort(h.Loop, int(r.Fd()), echo.Factory{})
	require.ErrorIs(t, err, syscall.ENOTSOCK)
	require.NoError(t, r.Close())
	require.NoError(t, w.Close())
	require.Equal(t, base, reactortest.FDCount())
}
