package tcp_test

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/internal/streamsuite"
	"github.com/gyre-io/gyre/transports/tcp"
)

// TestHostNameBindAddrAndDualStack: a client connects by host name (resolved
// off the loop) from a chosen local address to a dual-stack listener on "::";
// a v6-only listener refuses the same IPv4 client.
func TestHostNameBindAddrAndDualStack(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		echoF := transports.FactoryFunc(func(net.Addr) transports.Protocol { return &streamsuite.Recorder{Echo: true} })
		p, err := tcp.Listen(h.Loop, "[::]:0", echoF, tcp.ListenOptions{})
		if err != nil {
			t.Skipf("no IPv6: %v", err)
		}
		defer h.Do(func() { _ = p.Close() })
		port := p.Addr().(*net.TCPAddr).Port

		cf := streamsuite.NewClientFactory()
		var remote net.Addr
		var local net.Addr
		cf.OnMade = func(r *streamsuite.Recorder) {
			remote, local = r.T.RemoteAddr(), r.T.LocalAddr()
			_ = r.T.Write([]byte("named"))
		}
		cf.OnData = func(r *streamsuite.Recorder, _ []byte) {
			if r.Data.Len() >= 5 {
				_ = r.T.LoseConnection()
			}
		}
		bind := netip.MustParseAddrPort("127.0.0.1:0")
		_, err = tcp.Connect(h.Loop, net.JoinHostPort("localhost", itoa(port)), cf, tcp.ConnectOptions{BindAddr: bind})
		require.NoError(t, err)
		select {
		case err := <-cf.LostCh:
			require.ErrorIs(t, err, transports.ErrConnectionDone)
		case err := <-cf.Failed:
			t.Fatalf("connect by name failed: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("no connection")
		}
		h.Do(func() {
			require.Equal(t, "named", cf.Proto.Data.String())
			require.Equal(t, port, remote.(*net.TCPAddr).Port)
			require.True(t, local.(*net.TCPAddr).IP.IsLoopback())
		})

		// v6-only: IPv4 clients are refused.
		p6, err := tcp.Listen(h.Loop, "[::]:0", echoF, tcp.ListenOptions{V6Only: true})
		require.NoError(t, err)
		defer h.Do(func() { _ = p6.Close() })
		_, err = net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", itoa(p6.Addr().(*net.TCPAddr).Port)), 2*time.Second)
		require.Error(t, err)
		c, err := net.DialTimeout("tcp", net.JoinHostPort("::1", itoa(p6.Addr().(*net.TCPAddr).Port)), 2*time.Second)
		require.NoError(t, err)
		_, _ = c.Write([]byte("6"))
		b := make([]byte, 1)
		_, err = io.ReadFull(c, b)
		require.NoError(t, err)
		_ = c.Close()
	})
}

func itoa(n int) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(n)).String()[len("0.0.0.0:"):]
}
