package unix_test

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
	gunix "github.com/gyre-io/gyre/transports/unix"
)

func TestEchoPathAndAbstract(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, name := range []string{"path", "abstract"} {
			t.Run(name, func(t *testing.T) {
				h := reactortest.Start(t, kind)
				path := sockPath(t)
				if name == "abstract" {
					path = abstractName(t)
				}
				p, b := listen(t, h, path, gunix.ListenOptions{}, func() *recorder { return &recorder{echo: true} })
				require.Equal(t, path, p.Addr().String())
				require.Equal(t, "unix", p.Addr().Network())
				c := dial(t, path)
				msg := make([]byte, 256<<10)
				_, _ = rand.Read(msg)
				go func() { _, _ = c.Write(msg) }()
				got := make([]byte, len(msg))
				_, err := io.ReadFull(c, got)
				require.NoError(t, err)
				require.Equal(t, msg, got)
				require.NoError(t, c.Close())
				require.True(t, h.Eventually(5*time.Second, func() bool {
					rs := b.list()
					return len(rs) == 1 && rs[0].lost == 1
				}))
				h.Do(func() { require.ErrorIs(t, b.list()[0].reason, transports.ErrConnectionDone) })
				if name == "path" {
					require.True(t, exists(path))
				}
			})
		}
	})
}

// A gyre client (Connect) and a gyre server on the same loop, path and
// abstract; the Reactor interface (ListenUNIX/ConnectUNIX) reaches them.
func TestConnectEchoViaReactor(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, path := range []string{sockPath(t), abstractName(t)} {
			h := reactortest.Start(t, kind)
			r := stream.Reactor(h.Loop)
			var srv []*recorder
			port, err := r.ListenUNIX(path, transports.FactoryFunc(func(net.Addr) transports.Protocol {
				p := &recorder{echo: true}
				srv = append(srv, p)
				return p
			}), nil)
			require.NoError(t, err)
			cli := &recorder{onMade: func(r *recorder) { _ = r.t.Write([]byte("ping")) }}
			cf := &clientFactory{proto: cli}
			conn, err := r.ConnectUNIX(path, cf, &gunix.ConnectOptions{Timeout: 5 * time.Second})
			require.NoError(t, err)
			require.Equal(t, path, conn.Destination().String())
			require.True(t, h.Eventually(5*time.Second, func() bool { return cli.data.String() == "ping" }))
			h.Do(func() {
				uc, ok := cli.t.(*gunix.Conn)
				require.True(t, ok)
				require.Equal(t, path, uc.RemoteAddr().String())
				require.Same(t, uc, conn.(*gunix.Connector).Transport())
				conn.Disconnect()
			})
			require.True(t, h.Eventually(5*time.Second, func() bool { return cf.lost == 1 && len(srv) == 1 && srv[0].lost == 1 }))
			h.Do(func() { _ = port.Close() })
			<-port.(*gunix.Port).Done()
			h.StopWait()
		}
	})
}

// clientFactory hands out one protocol and records the outcome.
type clientFactory struct {
	proto   transports.Protocol
	failed  error
	lost    int
	started int
}

func (f *clientFactory) BuildProtocol(net.Addr) transports.Protocol { return f.proto }
func (f *clientFactory) StartedConnecting(transports.Connector)    { f.started++ }
func (f *clientFactory) ClientConnectionFailed(_ transports.Connector, err error) {
	f.failed = err
}
func (f *clientFactory) ClientConnectionLost(transports.Connector, error) { f.lost++ }

func TestBadAddress(t *testing.T) {
	h := reactortest.Start(t, reactor.Auto)
	long := "/tmp/" + strings.Repeat("x", 200)
	for _, path := range []string{"", "@", long, "@" + strings.Repeat("y", 107), "a\x00b"} {
		_, err := gunix.Listen(h.Loop, path, transports.FactoryFunc(nil), gunix.ListenOptions{})
		require.ErrorIs(t, err, gunix.ErrBadAddress, "listen %q", path)
		_, err = gunix.Connect(h.Loop, path, &clientFactory{}, gunix.ConnectOptions{})
		require.ErrorIs(t, err, gunix.ErrBadAddress, "connect %q", path)
	}
	// The longest names that fit work.
	dir := t.TempDir()
	p := dir + "/" + strings.Repeat("z", 107-len(dir)-1)
	require.Len(t, p, 107)
	port, err := gunix.Listen(h.Loop, p, transports.FactoryFunc(nil), gunix.ListenOptions{})
	require.NoError(t, err)
	dial(t, p)
	h.Do(func() { _ = port.Close() })
	a := "@" + strings.Repeat("q", 106)
	port, err = gunix.Listen(h.Loop, a, transports.FactoryFunc(nil), gunix.ListenOptions{})
	require.NoError(t, err)
	dial(t, a)
	h.Do(func() { _ = port.Close() })
}

// Mode is exact whatever the umask, and set before anyone can connect.
func TestMode(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		old := unix.Umask(0o027)
		defer unix.Umask(old)
		for _, mode := range []os.FileMode{0o660, 0o600, 0o666, 0o700} {
			path := sockPath(t)
			listen(t, h, path, gunix.ListenOptions{Mode: mode}, func() *recorder { return &recorder{} })
			st, err := os.Lstat(path)
			require.NoError(t, err)
			require.Equal(t, os.ModeSocket, st.Mode().Type())
			require.Equal(t, mode, st.Mode().Perm(), "mode %o", mode)
		}
		// No Mode: the kernel's default, 0777 less the umask.
		path := sockPath(t)
		listen(t, h, path, gunix.ListenOptions{}, func() *recorder { return &recorder{} })
		st, err := os.Lstat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o750), st.Mode().Perm())
	})
}

// staleFile leaves a socket file with no listener behind it at path.
func staleFile(t *testing.T, path string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	require.NoError(t, unix.Bind(fd, &unix.SockaddrUnix{Name: path}))
	require.NoError(t, unix.Listen(fd, 1))
	require.NoError(t, unix.Close(fd))
	require.True(t, exists(path))
}

func TestStaleSocket(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		path := sockPath(t)
		staleFile(t, path)
		_, err := gunix.Listen(h.Loop, path, transports.FactoryFunc(nil), gunix.ListenOptions{})
		require.ErrorIs(t, err, gunix.ErrStaleSocket)
		require.ErrorIs(t, err, syscall.EADDRINUSE)
		require.True(t, exists(path), "the stale file is left alone without RemoveStale")

		listen(t, h, path, gunix.ListenOptions{RemoveStale: true}, func() *recorder { return &recorder{echo: true} })
		c := dial(t, path)
		_, err = c.Write([]byte("x"))
		require.NoError(t, err)
		_, err = io.ReadFull(c, make([]byte, 1))
		require.NoError(t, err)
	})
}

// A live listener is never taken for stale, also with RemoveStale; an
// abstract name in use is EADDRINUSE.
func TestAddressInUse(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		for _, path := range []string{sockPath(t), abstractName(t)} {
			listen(t, h, path, gunix.ListenOptions{}, func() *recorder { return &recorder{echo: true} })
			_, err := gunix.Listen(h.Loop, path, transports.FactoryFunc(nil), gunix.ListenOptions{RemoveStale: true})
			require.ErrorIs(t, err, syscall.EADDRINUSE)
			require.NotErrorIs(t, err, gunix.ErrStaleSocket)
			c := dial(t, path) // the first listener still serves
			_, _ = c.Write([]byte("y"))
			_, err = io.ReadFull(c, make([]byte, 1))
			require.NoError(t, err)
		}
	})
}

func TestNotSocketNeverRemoved(t *testing.T) {
	h := reactortest.Start(t, reactor.Auto)
	path := sockPath(t)
	require.NoError(t, os.WriteFile(path, []byte("keep me"), 0o600))
	for _, rm := range []bool{false, true} {
		_, err := gunix.Listen(h.Loop, path, transports.FactoryFunc(nil), gunix.ListenOptions{RemoveStale: rm})
		require.ErrorIs(t, err, gunix.ErrNotSocket)
		require.ErrorIs(t, err, syscall.EADDRINUSE)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, "keep me", string(b))
	}
}

// Close removes the file it created, once; a file that replaced it is left
// alone.
func TestUnlinkOnClose(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		path := sockPath(t)
		p, err := gunix.Listen(h.Loop, path, transports.FactoryFunc(nil), gunix.ListenOptions{})
		require.NoError(t, err)
		require.True(t, exists(path))
		h.Do(func() { require.NoError(t, p.Close()) })
		<-p.Done()
		require.False(t, exists(path))
		// Once: a second Close does nothing to a new file at the path.
		require.NoError(t, os.WriteFile(path, nil, 0o600))
		h.Do(func() { require.ErrorIs(t, p.Close(), transports.ErrClosed) })
		require.True(t, exists(path))
		require.NoError(t, os.Remove(path))

		// Replaced: another listener bound the path meanwhile.
		p, err = gunix.Listen(h.Loop, path, transports.FactoryFunc(nil), gunix.ListenOptions{})
		require.NoError(t, err)
		require.NoError(t, os.Remove(path))
		other, err := net.Listen("unix", path)
		require.NoError(t, err)
		other.(*net.UnixListener).SetUnlinkOnClose(false)
		defer other.Close()
		h.Do(func() { require.NoError(t, p.Close()) })
		<-p.Done()
		require.True(t, exists(path), "the other listener's file stays")
		dial(t, path)
	})
}

func TestPeerCred(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		path := sockPath(t)
		var srvCred, cliCred gunix.Ucred
		var srvErr, cliErr error
		listen(t, h, path, gunix.ListenOptions{}, func() *recorder {
			return &recorder{onMade: func(r *recorder) { srvCred, srvErr = r.t.(*gunix.Conn).PeerCred() }}
		})
		cli := &recorder{onMade: func(r *recorder) { cliCred, cliErr = r.t.(*gunix.Conn).PeerCred() }}
		cf := &clientFactory{proto: cli}
		_, err := gunix.Connect(h.Loop, path, cf, gunix.ConnectOptions{})
		require.NoError(t, err)
		require.True(t, h.Eventually(5*time.Second, func() bool { return cli.made == 1 && srvCred.PID != 0 }))
		want := gunix.Ucred{PID: os.Getpid(), UID: os.Getuid(), GID: os.Getgid()}
		h.Do(func() {
			require.NoError(t, srvErr)
			require.NoError(t, cliErr)
			require.Equal(t, want, srvCred)
			require.Equal(t, want, cliCred)
			c := cli.t.(*gunix.Conn)
			_ = c.Abort()
			_, err := c.PeerCred() // remembered
			require.NoError(t, err)
		})
	})
}

// A connect to a listener whose backlog is full fails at once with EAGAIN
// on both backends.
func TestConnectFullBacklog(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		path := sockPath(t)
		lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(lfd)
		require.NoError(t, unix.Bind(lfd, &unix.SockaddrUnix{Name: path}))
		require.NoError(t, unix.Listen(lfd, 0))
		var fill []int
		defer func() {
			for _, fd := range fill {
				_ = unix.Close(fd)
			}
		}()
		for i := 0; i < 64; i++ {
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			require.NoError(t, err)
			fill = append(fill, fd)
			if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
				require.ErrorIs(t, err, unix.EAGAIN)
				break
			}
		}
		cf := &clientFactory{proto: &recorder{}}
		done := make(chan struct{})
		var failed error
		cf2 := &notifyFactory{clientFactory: cf, failedCh: done}
		_, err = gunix.Connect(h.Loop, path, cf2, gunix.ConnectOptions{Timeout: 10 * time.Second})
		require.NoError(t, err)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("connect to a full backlog did not fail at once")
		}
		h.Do(func() { failed = cf.failed })
		require.ErrorIs(t, failed, syscall.EAGAIN)
		var op *net.OpError
		require.True(t, errors.As(failed, &op))
		require.Equal(t, "unix", op.Net)
		// Go's net says the same.
		_, gerr := net.Dial("unix", path)
		require.ErrorIs(t, gerr, syscall.EAGAIN)
	})
}

type notifyFactory struct {
	*clientFactory
	failedCh chan struct{}
}

func (f *notifyFactory) ClientConnectionFailed(c transports.Connector, err error) {
	f.clientFactory.ClientConnectionFailed(c, err)
	close(f.failedCh)
}

func TestConnectRefusedAndMissing(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		path := sockPath(t)
		staleFile(t, path)
		for _, c := range []struct {
			path string
			want error
		}{{path, syscall.ECONNREFUSED}, {path + ".missing", syscall.ENOENT}, {abstractName(t), syscall.ECONNREFUSED}} {
			done := make(chan struct{})
			cf := &clientFactory{proto: &recorder{}}
			_, err := gunix.Connect(h.Loop, c.path, &notifyFactory{clientFactory: cf, failedCh: done}, gunix.ConnectOptions{})
			require.NoError(t, err)
			<-done
			h.Do(func() { require.ErrorIs(t, cf.failed, c.want, c.path) })
		}
	})
}

// Half-close: the gyre client's CloseWrite gives the server end of stream
// while the client still reads the answer.
func TestHalfClose(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		path := sockPath(t)
		ln, err := net.Listen("unix", path)
		require.NoError(t, err)
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			b, _ := io.ReadAll(c) // until the client's end of stream
			_, _ = c.Write(append([]byte("got "), b...))
		}()
		cli := &recorder{onMade: func(r *recorder) {
			_ = r.t.Write([]byte("half"))
			_ = r.t.CloseWrite()
		}}
		cf := &clientFactory{proto: cli}
		_, err = gunix.Connect(h.Loop, path, cf, gunix.ConnectOptions{})
		require.NoError(t, err)
		require.True(t, h.Eventually(5*time.Second, func() bool { return cli.lost == 1 }))
		h.Do(func() {
			require.Equal(t, "got half", cli.data.String())
			require.ErrorIs(t, cli.reason, transports.ErrConnectionDone)
		})
	})
}
