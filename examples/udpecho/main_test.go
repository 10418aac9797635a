package main

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
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

// serveFor runs the example on kind until the test ends and returns its
// UDP address.
func serveFor(t *testing.T, kind reactor.BackendKind) netip.AddrPort {
	return netip.MustParseAddrPort(serveAt(t, kind, "127.0.0.1:0"))
}

// serveAt runs the example on kind at addr until the test ends and
// returns the address it listens on.
func serveAt(t *testing.T, kind reactor.BackendKind, addr string) string {
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, react.Config{Backend: kind}, addr, func(a string) { addrs <- a })
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
	return ""
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
	got, err = udpAddr(react.Flags{Addr: "127.0.0.1:5", Loops: react.PerCPU}) // the default
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:5", got)
	_, err = udpAddr(react.Flags{Addr: "127.0.0.1:5", Loops: 2})
	require.ErrorContains(t, err, "one loop")

	require.Equal(t, "unixgram:/x", mustUDPAddr(t, "unixgram:/x"))
}

func mustUDPAddr(t *testing.T, listen string) string {
	got, err := udpAddr(react.Flags{Listen: listen, Loops: 1})
	require.NoError(t, err, listen)
	return got
}

// UNIX datagram sockets, on a path and an abstract name: a bound client
// gets every datagram back (an empty one included); the socket file is
// removed when the server stops.
func TestEchoUnixgram(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		dir := t.TempDir()
		for _, srv := range []string{filepath.Join(dir, "echo.sock"), "@gyre-udpecho-" + filepath.Base(dir)} {
			sub, cancelSub := context.WithCancel(context.Background())
			done := make(chan error, 1)
			up := make(chan string, 1)
			go func() { done <- run(sub, react.Config{Backend: kind}, "unixgram:"+srv, func(a string) { up <- a }) }()
			require.Equal(t, srv, <-up)
			c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "cl.sock"), Net: "unixgram"})
			require.NoError(t, err)
			buf := make([]byte, 100)
			for _, m := range []string{"one", "", "three"} {
				_, err := c.WriteToUnix([]byte(m), &net.UnixAddr{Name: srv, Net: "unixgram"})
				require.NoError(t, err)
				require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
				n, err := c.Read(buf)
				require.NoError(t, err)
				require.Equal(t, m, string(buf[:n]))
			}
			require.NoError(t, c.Close())
			require.NoError(t, os.Remove(filepath.Join(dir, "cl.sock")))
			cancelSub()
			require.NoError(t, <-done)
			if srv[0] != '@' {
				_, err := os.Lstat(srv)
				require.True(t, os.IsNotExist(err), "socket file removed at exit")
			}
		}
	})
}

// A real peer: socat sends a line over a UNIX datagram socket bound to its
// own path and prints the echo.
func TestSocatUnixgram(t *testing.T) {
	path, err := exec.LookPath("socat")
	if err != nil {
		t.Skip("socat not installed (CI installs it: ci/peers.sh)")
	}
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		dir := t.TempDir()
		srv := serveAt(t, kind, "unixgram:"+filepath.Join(dir, "echo.sock"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, path, "-t2", "-", "UNIX-SENDTO:"+srv+",bind="+filepath.Join(dir, "me.sock"))
		cmd.Stdin = strings.NewReader("hello unixgram\n")
		out, err := cmd.Output()
		require.NoError(t, err)
		require.Equal(t, "hello unixgram\n", string(out))
	})
}
