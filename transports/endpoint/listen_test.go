package endpoint

import (
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
	"github.com/gyre-io/gyre/transports/tls/tlstest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(systemdChild())
	}
	goleak.VerifyTestMain(m)
}

// hello writes "hello" when connected and reports what comes back.
type hello struct {
	t    transports.Transport
	got  []byte
	done chan string
}

func (h *hello) ConnectionMade(t transports.Transport) { h.t = t; _ = t.Write([]byte("hello")) }
func (h *hello) DataReceived(p []byte) {
	h.got = append(h.got, p...)
	if len(h.got) == 5 {
		h.done <- string(h.got)
		_ = h.t.LoseConnection()
	}
}
func (h *hello) ConnectionLost(error) {}

// failed reports a failed connect attempt.
type helloFactory struct {
	transports.ClientFactoryFunc
	failed chan error
}

func (f helloFactory) ClientConnectionFailed(_ transports.Connector, err error) { f.failed <- err }

// roundTrip connects to desc through Connect on h and checks the echo.
func roundTrip(t *testing.T, h *reactortest.Loop, desc string) {
	t.Helper()
	done, failed := make(chan string, 1), make(chan error, 1)
	f := helloFactory{transports.ClientFactoryFunc(func(net.Addr) transports.Protocol { return &hello{done: done} }), failed}
	_, err := Connect(h.Loop, desc, f)
	require.NoError(t, err, desc)
	select {
	case got := <-done:
		require.Equal(t, "hello", got, desc)
	case err := <-failed:
		t.Fatalf("%s: connect failed: %v", desc, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no echo", desc)
	}
}

// netEcho dials with Go's net (or crypto/tls when cfg is set) and checks the echo.
func netEcho(t *testing.T, network, addr string, cfg *tls.Config) {
	t.Helper()
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 5 * time.Second}
	if cfg != nil {
		c, err = tls.DialWithDialer(d, network, addr, cfg)
	} else {
		c, err = d.Dial(network, addr)
	}
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))
}

func listen(t *testing.T, h *reactortest.Loop, desc string) transports.Port {
	t.Helper()
	p, err := Listen(h.Loop, desc, echo.Factory{})
	require.NoError(t, err, desc)
	t.Cleanup(func() { h.Do(func() { _ = p.Close() }) })
	return p
}

// Every server kind listens and serves Go's net and this package's Connect,
// on both backends; every client kind connects.
func TestListenConnect(t *testing.T) {
	pki, err := tlstest.New(t.TempDir(), "localhost")
	require.NoError(t, err)
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		base := reactortest.FDCount()
		h := reactortest.Start(t, kind)

		t.Run("tcp", func(t *testing.T) {
			p := listen(t, h, "tcp:0:interface=127.0.0.1:backlog=16")
			port := strconv.Itoa(p.Addr().(*net.TCPAddr).Port)
			netEcho(t, "tcp", p.Addr().String(), nil)
			roundTrip(t, h, "tcp:host=127.0.0.1:port="+port+":timeout=5:bindAddress=127.0.0.1")
			roundTrip(t, h, "tcp:127.0.0.1:"+port)
		})
		t.Run("tcp6", func(t *testing.T) {
			if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
				t.Skip("no IPv6 loopback:", err)
			} else {
				l.Close()
			}
			p := listen(t, h, `tcp6:0:interface=\:\:1`)
			port := strconv.Itoa(p.Addr().(*net.TCPAddr).Port)
			netEcho(t, "tcp6", p.Addr().String(), nil)
			roundTrip(t, h, `tcp:host=\:\:1:port=`+port)
		})
		t.Run("unix", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a:b.sock") // a colon, quoted
			p := listen(t, h, "unix:"+Quote(path)+":mode=600")
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			netEcho(t, "unix", path, nil)
			roundTrip(t, h, "unix:path="+Quote(path)+":timeout=5")
			h.Do(func() { require.NoError(t, p.Close()) })
			_, err = os.Stat(path)
			require.ErrorIs(t, err, os.ErrNotExist, "socket file removed at Close")
		})
		t.Run("unix-stale", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "stale.sock")
			fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
			require.NoError(t, err)
			require.NoError(t, syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}))
			require.NoError(t, syscall.Close(fd)) // a socket file with no listener
			_, err = Listen(h.Loop, "unix:"+path+":removeStale=0", echo.Factory{})
			require.ErrorIs(t, err, syscall.EADDRINUSE)
			listen(t, h, "unix:"+path) // removeStale defaults to on
			netEcho(t, "unix", path, nil)
		})
		t.Run("unix-abstract", func(t *testing.T) {
			name := "@gyre-endpoint-test-" + strconv.Itoa(os.Getpid()) + "-" + kind.String()
			listen(t, h, "unix:"+name)
			netEcho(t, "unix", name, nil)
			roundTrip(t, h, "unix:"+name)
		})
		for _, typ := range []string{"ssl", "tls"} {
			t.Run(typ, func(t *testing.T) {
				p := listen(t, h, typ+":0:interface=127.0.0.1:privateKey="+Quote(pki.KeyFile)+":certKey="+Quote(pki.CertFile))
				port := strconv.Itoa(p.Addr().(*net.TCPAddr).Port)
				netEcho(t, "tcp", p.Addr().String(), pki.ClientConfig("localhost"))
				roundTrip(t, h, typ+":host=127.0.0.1:port="+port+":hostname=localhost:trustRoots="+Quote(pki.CAFile))
				roundTrip(t, h, typ+":127.0.0.1:"+port+":caCertsDir="+Quote(filepath.Dir(pki.CAFile)))
				// Without the CA, verification fails: the connection is
				// made, then lost in the handshake (no echo).
				done, failed := make(chan string, 1), make(chan error, 1)
				f := helloFactory{transports.ClientFactoryFunc(func(net.Addr) transports.Protocol { return &hello{done: done} }), failed}
				_, err := Connect(h.Loop, typ+":127.0.0.1:"+port+":hostname=localhost", f)
				require.NoError(t, err)
				select {
				case <-done:
					t.Fatal("echo through an unverified certificate")
				case <-time.After(300 * time.Millisecond):
				}
			})
		}
		t.Run("errors", func(t *testing.T) {
			_, err := Listen(h.Loop, "tcp:bogus", echo.Factory{})
			require.ErrorIs(t, err, ErrBadDescription)
			_, err = Connect(h.Loop, "tcp:127.0.0.1", helloFactory{})
			require.ErrorIs(t, err, ErrBadDescription)
			p := listen(t, h, "tcp:0:interface=127.0.0.1")
			_, err = Listen(h.Loop, "tcp:"+strconv.Itoa(p.Addr().(*net.TCPAddr).Port)+":interface=127.0.0.1", echo.Factory{})
			require.ErrorIs(t, err, syscall.EADDRINUSE)
			require.ErrorContains(t, err, "listen tcp:")
			_, err = Connect(h.Loop, "unix:@gyre-nobody-"+strconv.Itoa(os.Getpid()), helloFactory{failed: make(chan error, 1)})
			require.NoError(t, err) // fails later, through ClientConnectionFailed
		})
		h.StopWait()
		require.True(t, reactortest.WaitUntil(5*time.Second, func() bool { return reactortest.FDCount() == base }), "descriptors leaked")
	})
}

// Closing a port made on an adopted socket leaves the socket working for
// its other holders (systemd keeps it for the next instance; several loops
// may adopt it): the port does not shutdown(2) the shared socket.
func TestAdoptedSocketSurvivesClose(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		for _, network := range []string{"tcp", "unix"} {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "s.sock")
			}
			l, err := net.Listen(network, addr)
			require.NoError(t, err)
			f, err := l.(interface{ File() (*os.File, error) }).File()
			require.NoError(t, err)
			for round := 0; round < 2; round++ { // a second instance adopts it again
				p, err := stream.AdoptStreamPort(h.Loop, int(f.Fd()), echo.Factory{})
				require.NoError(t, err)
				netEcho(t, network, l.Addr().String(), nil)
				h.Do(func() { require.NoError(t, p.Close()) })
				<-p.(interface{ Done() <-chan struct{} }).Done()
			}
			// The original holder still accepts.
			c, err := net.DialTimeout(network, l.Addr().String(), 5*time.Second)
			require.NoError(t, err, network)
			a, err := l.Accept()
			require.NoError(t, err, network)
			require.NoError(t, a.Close())
			require.NoError(t, c.Close())
			require.NoError(t, f.Close())
			require.NoError(t, l.Close())
		}
	})
}
