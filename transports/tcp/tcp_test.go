package tcp_test

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/internal/streamsuite"
	"github.com/gyre-io/gyre/transports/tcp"
)

// tcpKind runs the stream scenario suite over TCP on IPv4 loopback.
var tcpKind = streamsuite.Kind{
	Name:    "tcp",
	Network: "tcp",
	Listen: func(loop *reactor.Loop, addr string, f transports.Factory, wm transports.Watermarks) (streamsuite.Port, error) {
		p, err := tcp.Listen(loop, addr, f, tcp.ListenOptions{Watermarks: wm})
		if err != nil {
			return nil, err
		}
		return p, nil
	},
	Connect: func(loop *reactor.Loop, addr string, f transports.ClientFactory, timeout time.Duration) (transports.Connector, error) {
		c, err := tcp.Connect(loop, addr, f, tcp.ConnectOptions{Timeout: timeout})
		if err != nil {
			return nil, err
		}
		return c, nil
	},
	Weak: streamsuite.WeakProbe[tcp.Conn],
	Caps: streamsuite.Caps{ResetWithoutUnread: true, EOFBeforeUnreadReset: true, ConnStateInfo: true, ConnectWaitsOnFullBacklog: true, ShutdownListener: true},
}

// TestSuite is the stream transports' scenario suite (chunking, large
// writes, slow readers, pause, half-close, lose/abort, resets, descriptor
// reuse, Stop, EMFILE, cycles, cancel races) over TCP, on both backends.
func TestSuite(t *testing.T) { streamsuite.Run(t, tcpKind) }

func TestAddressInUse(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol { return &streamsuite.Recorder{} })
		p, err := tcp.Listen(h.Loop, "127.0.0.1:0", f, tcp.ListenOptions{})
		require.NoError(t, err)
		_, err = tcp.Listen(h.Loop, p.Addr().String(), f, tcp.ListenOptions{})
		require.ErrorIs(t, err, syscall.EADDRINUSE)
		_, err = tcp.Listen(h.Loop, "nonsense", f, tcp.ListenOptions{})
		require.ErrorIs(t, err, tcp.ErrBadAddress)
		h.Do(func() { _ = p.Close() })
	})
}

func TestIPv6Loopback(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		f := transports.FactoryFunc(func(net.Addr) transports.Protocol { return &streamsuite.Recorder{Echo: true} })
		p, err := tcp.Listen(h.Loop, "[::1]:0", f, tcp.ListenOptions{})
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		c, err := net.Dial("tcp", p.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		_, _ = c.Write([]byte("v6"))
		buf := make([]byte, 2)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, "v6", string(buf))
		h.Do(func() { _ = p.Close() })
	})
}
