package transports_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/protocols/http"
	"github.com/gyre-io/gyre/protocols/resp"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	gyretls "github.com/gyre-io/gyre/transports/tls"
	"github.com/gyre-io/gyre/transports/tls/tlstest"
	"github.com/gyre-io/gyre/transports/udp"
	"github.com/gyre-io/gyre/transports/unix"
	"github.com/gyre-io/gyre/transports/unixgram"
)

// dgramEcho sends every datagram back to its sender.
type dgramEcho[A transports.DatagramAddr] struct {
	t transports.DatagramTransportOf[A]
}

func (e *dgramEcho[A]) StartProtocol(t transports.DatagramTransportOf[A]) { e.t = t }
func (e *dgramEcho[A]) DatagramReceived(p []byte, from A)                 { _ = e.t.Write(p, from) }
func (e *dgramEcho[A]) ConnectionRefused()                                {}
func (e *dgramEcho[A]) StopProtocol()                                     {}

// steadyCase starts a server on loop and returns a client round trip (one
// request, its whole reply) and a clean-up.
type steadyCase struct {
	name  string
	start func(t *testing.T, loop *reactor.Loop) (trip func() error, done func())
	// stdlib is what the standard library allocates per round trip on
	// this path, outside gyre's code (counted from a memory profile).
	stdlib float64
}

// streamTrip is a request/reply exchange over c: write req, read exactly
// len(reply) bytes and check them (a Go net client allocates nothing here).
func streamTrip(c net.Conn, req, reply []byte) func() error {
	buf := make([]byte, len(reply))
	return func() error {
		if _, err := c.Write(req); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != string(reply) {
			return io.ErrUnexpectedEOF
		}
		return nil
	}
}

func dialTrip(t *testing.T, network, addr string, req, reply []byte) (func() error, func()) {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Second)))
	return streamTrip(c, req, reply), func() { _ = c.Close() }
}

func steadyCases() []steadyCase {
	msg := []byte(strings.Repeat("x", 64))
	return []steadyCase{
		{"tcp echo", func(t *testing.T, l *reactor.Loop) (func() error, func()) {
			p, err := tcp.Listen(l, "127.0.0.1:0", echo.Factory{}, tcp.ListenOptions{})
			require.NoError(t, err)
			return dialTrip(t, "tcp", p.Addr().String(), msg, msg)
		}, 0},
		{"tcp echo 64 KiB (forwarded without a copy)", func(t *testing.T, l *reactor.Loop) (func() error, func()) {
			big := make([]byte, 64<<10)
			for i := range big {
				big[i] = byte(i % 251)
			}
			p, err := tcp.Listen(l, "127.0.0.1:0", echo.Factory{}, tcp.ListenOptions{})
			require.NoError(t, err)
			return dialTrip(t, "tcp", p.Addr().String(), big, big)
		}, 0},
		{"unix echo", func(t *testing.T, l *reactor.Loop) (func() error, func()) {
			path := filepath.Join(t.TempDir(), "e.sock")
			_, err := unix.Listen(l, path, echo.Factory{}, unix.ListenOptions{})
			require.NoError(t, err)
			return dialTrip(t, "unix", path, msg, msg)
		}, 0},
		{"tls echo", func(t *testing.T, l *reactor.Loop) (func() error, func()) {
			pki, err := tlstest.New(t.TempDir(), "localhost")
			require.NoError(t, err)
			p, err := gyretls.Listen(l, "127.0.0.1:0", echo.Factory{}, pki.ServerConfig(), gyretls.ListenOptions{})
			require.NoError(t, err)
			c, err := tls.Dial("tcp", p.Addr().String(), pki.ClientConfig("localhost"))
			require.NoError(t, err)
			require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Second)))
			return streamTrip(c, msg, msg), func() { _ = c.Close() }
		}, 2}, // crypto/tls's Conn.readFromUntil: one 24 B atLeastReader per record read, in the server (transports/tls drives a crypto/tls.Conn) and in the Go client
		{"tcp resp PING pipelined 16", func(t *testing.T, l *reactor.Loop) (func() error, func()) {
			p, err := tcp.Listen(l, "127.0.0.1:0", resp.NewFactory(resp.NewStore(), resp.Options{}), tcp.ListenOptions{})
			require.NoError(t, err)
			return dialTrip(t, "tcp", p.Addr().String(),
				[]byte(strings.Repeat("*1\r\n$4\r\nPING\r\n", 16)), []byte(strings.Repeat("+PONG\r\n", 16)))
		}, 0},
		{"tcp resp SET+GET", func(t *testing.T, l *reactor.Loop) (func() error, func()) {
			p, err := tcp.Listen(l, "127.0.0.1:0", resp.NewFactory(resp.NewStore(), resp.Options{}), tcp.ListenOptions{})
			require.NoError(t, err)
			return dialTrip(t, "tcp", p.Addr().String(),
				[]byte("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"),
				[]byte("+OK\r\n$5\r\nvalue\r\n"))
		}, 0},
		{"tcp http keep-alive GET", func(t *testing.T, l *reactor.Loop) (func() error, func()) {
			body := []byte("Hello, World!")
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = w.Write(body)
			})
			p, err := tcp.Listen(l, "127.0.0.1:0", http.NewFactory(h, http.Options{}), tcp.ListenOptions{})
			require.NoError(t, err)
			c, err := net.DialTimeout("tcp", p.Addr().String(), 5*time.Second)
			require.NoError(t, err)
			require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Second)))
			req := []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReaderSize(c, 4096)
			// The reply's length (it carries a Date header) is learnt once.
			_, err = c.Write(req)
			require.NoError(t, err)
			n := readHTTPReply(t, br)
			buf := make([]byte, n)
			return func() error {
				if _, err := c.Write(req); err != nil {
					return err
				}
				_, err := io.ReadFull(br, buf)
				return err
			}, func() { _ = c.Close() }
		}, 0},
		{"udp echo", func(t *testing.T, l *reactor.Loop) (func() error, func()) {
			p, err := udp.Listen(l, "127.0.0.1:0", &dgramEcho[netip.AddrPort]{}, udp.ListenOptions{})
			require.NoError(t, err)
			return dialTrip(t, "udp", p.LocalAddr().String(), msg, msg)
		}, 0},
		{"unixgram echo", func(t *testing.T, l *reactor.Loop) (func() error, func()) {
			dir := t.TempDir()
			path := filepath.Join(dir, "s")
			_, err := unixgram.Listen(l, path, &dgramEcho[string]{}, unixgram.ListenOptions{})
			require.NoError(t, err)
			c, err := net.DialUnix("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "c"), Net: "unixgram"}, &net.UnixAddr{Name: path, Net: "unixgram"})
			require.NoError(t, err)
			require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Second)))
			return streamTrip(c, msg, msg), func() { _ = c.Close() }
		}, 0},
	}
}

// readHTTPReply reads one HTTP/1.1 reply with a Content-Length and returns
// its size in bytes.
func readHTTPReply(t *testing.T, br *bufio.Reader) int {
	n, length := 0, -1
	for {
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		n += len(line)
		if v, ok := strings.CutPrefix(strings.ToLower(line), "content-length: "); ok {
			length = 0
			for _, d := range strings.TrimSpace(v) {
				length = length*10 + int(d-'0')
			}
		}
		if line == "\r\n" {
			break
		}
	}
	require.GreaterOrEqual(t, length, 0, "no Content-Length")
	_, err := br.Discard(length)
	require.NoError(t, err)
	return n + length
}

// The steady-state data path allocates nothing: after a warm-up, many round
// trips through each transport and protocol, on each backend, make no heap
// allocation in the whole process (server loop and Go net client alike; the
// client allocates nothing per message). Counted with runtime.MemStats, so
// a regression anywhere on the path — backend, loop, transport, protocol —
// fails here.
func TestSteadyStateAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("round trips over loopback")
	}
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, c := range steadyCases() {
			t.Run(c.name, func(t *testing.T) {
				l, err := reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true})
				require.NoError(t, err)
				ran := make(chan error, 1)
				go func() { ran <- l.Run(context.Background()) }()
				defer func() {
					l.Stop()
					require.NoError(t, <-ran)
				}()
				trip, done := c.start(t, l)
				defer done()
				for range 500 { // warm-up: buffers, queues and caches reach their size
					require.NoError(t, trip())
				}
				const n = 2000
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for range n {
					if err := trip(); err != nil {
						t.Fatal(err)
					}
				}
				runtime.ReadMemStats(&after)
				perTrip := float64(after.Mallocs-before.Mallocs) / n
				t.Logf("%s %s: %.4f allocations per round trip", kind, c.name, perTrip)
				// Not zero: the Go runtime and the test framework allocate a
				// little on their own over the run (timers, GC workers).
				if raceEnabled && c.stdlib > 0 {
					t.Skip("-race: sync.Pool drops items at random; the standard library's share is not steady")
				}
				require.Less(t, perTrip, c.stdlib+0.02, "allocations on the steady-state path")
			})
		}
	})
}
