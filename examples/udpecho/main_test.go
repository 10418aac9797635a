package main

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gyre-io/gyre/react"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/endpoint"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serveFor runs the example on kind until the test ends and returns its address.
func serveFor(t *testing.T, kind reactor.BackendKind) netip.AddrPort {
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan netip.AddrPort, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, react.Config{Backend: kind}, "127.0.0.1:0", func(a netip.AddrPort) { addrs <- a })
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-errc, "clean stop")
	})
	select {
	case a := <-addrs:
		return a
	case err := <-errc:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not listening")
	}
	return netip.AddrPort{}
}

func TestEcho(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		a := serveFor(t, kind)
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(a))
		require.NoError(t, err)
		defer c.Close()
		buf := make([]byte, 100)
		for _, m := range []string{"one", "", "three"} {
			_, err := c.Write([]byte(m))
			require.NoError(t, err)
			require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
			n, err := c.Read(buf)
			require.NoError(t, err)
			require.Equal(t, m, string(buf[:n]))
		}
	})
}

// A real peer: socat sends a line over UDP and prints the echo.
func TestSocatUDP(t *testing.T) {
	path, err := exec.LookPath("socat")
	if err != nil {
		t.Skip("socat not installed (CI installs it: ci/peers.sh)")
	}
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		a := serveFor(t, kind)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// -t2: after stdin ends socat waits up to 2 s for the echo.
		cmd := exec.CommandContext(ctx, path, "-t2", "-", "UDP:"+a.String())
		cmd.Stdin = strings.NewReader("hello gyre\n")
		out, err := cmd.Output()
		require.NoError(t, err)
		require.Equal(t, "hello gyre\n", string(out))
	})
}

func TestUDPAddr(t *testing.T) {
	for in, want := range map[string]string{
		"udp:7001:interface=127.0.0.1": "127.0.0.1:7001",
		"UDP:port=0":                   ":0",
		`udp:9:interface=\:\:1`:        "[::1]:9",
	} {
		got, err := udpAddr(react.Flags{Listen: in, Loops: 1})
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"tcp:7001", "udp:", "udp:1:2:3", "udp:1:backlog=3", `udp:1\`} {
		_, err := udpAddr(react.Flags{Listen: in, Loops: 1})
		require.ErrorIs(t, err, endpoint.ErrBadDescription, in)
	}
	got, err := udpAddr(react.Flags{Addr: "127.0.0.1:5", Loops: 1})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:5", got)
}
