package hostile_test

import (
	"bufio"
	"bytes"
	ctls "crypto/tls"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/protocols/echo"
	gyrehttp "github.com/gyre-io/gyre/protocols/http"
	"github.com/gyre-io/gyre/protocols/policies"
	"github.com/gyre-io/gyre/protocols/resp"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	gyretls "github.com/gyre-io/gyre/transports/tls"
	"github.com/gyre-io/gyre/transports/tls/tlstest"
)

// buffered is what stream transports report as their write queue's size.
type buffered interface{ Buffered() int }

// TestPipelineWithoutReading: against every shipped server — echo, RESP,
// HTTP and the TLS echo — four clients write requests as fast as the server
// takes them and never read a reply (RESP: GET of a 4 KiB value, HTTP: GET
// of a 4 KiB body, so the replies are ~200 times the requests). Each client
// stops when a write makes no progress for a second (the server stopped
// reading: the kernel's buffers are full both ways) or after 64 MiB.
// Then the server's write queues (Buffered of each TCP transport, under
// the TLS layer for TLS) hold at most 1 MiB per connection (the watermark
// is 64 KiB; the bound is generous), each client was stalled (it did not
// reach 64 MiB), and resident memory grew by at most 64 MiB (256 MiB under
// -race, whose shadow memory is not returned; the queues are the precise
// measure). Without the
// protocols pausing their reading the queues grow by what the clients send
// (times the amplification), so the test fails.
func TestPipelineWithoutReading(t *testing.T) {
	pki, err := tlstest.New(t.TempDir(), "localhost")
	require.NoError(t, err)
	value := strings.Repeat("v", 4096)
	servers := []struct {
		name  string
		wrap  func(transports.Factory) transports.Factory
		inner func() transports.Factory
		setup []byte // sent (and its reply read) before the flood
		req   []byte
		tls   bool
	}{
		{name: "echo", inner: func() transports.Factory { return echo.Factory{} },
			req: bytes.Repeat([]byte("pipelined echo bytes, never read back "), 1024)},
		{name: "resp", inner: func() transports.Factory {
			return resp.NewFactory(resp.NewStore(), resp.Options{})
		},
			setup: []byte("SET k " + value + "\r\n"), req: bytes.Repeat([]byte("GET k\r\n"), 64)},
		{name: "http", inner: func() transports.Factory {
			return gyrehttp.NewFactory(gyrehttp.HandlerFunc(func(w gyrehttp.ResponseWriter, r *gyrehttp.Request) {
				_, _ = w.Write([]byte(value))
			}), gyrehttp.Options{})
		}, req: bytes.Repeat([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 64)},
		{name: "tls-echo", inner: func() transports.Factory {
			return gyretls.WrapFactory(echo.Factory{}, pki.ServerConfig(), gyretls.RoleServer, gyretls.Options{})
		}, req: bytes.Repeat([]byte("pipelined TLS echo bytes, never read "), 1024), tls: true},
	}
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, sv := range servers {
			t.Run(sv.name, func(t *testing.T) {
				h := reactortest.Start(t, kind)
				rec := &policies.WrappingFactory{Wrapped: sv.inner()}
				p, err := tcp.Listen(h.Loop, "127.0.0.1:0", rec, tcp.ListenOptions{})
				require.NoError(t, err)
				defer h.Do(func() { _ = p.Close() })
				rss0 := rss(t)

				const clients = 4
				const maxSend = 64 << 20
				sent := make([]int, clients)
				var wg sync.WaitGroup
				errs := make(chan error, clients)
				conns := make([]net.Conn, clients)
				raws := make([]net.Conn, clients)
				for i := range conns {
					c, err := net.Dial("tcp", p.Addr().String())
					require.NoError(t, err)
					defer c.Close()
					raws[i] = c
					if sv.tls {
						tc := ctls.Client(c, pki.ClientConfig("localhost"))
						require.NoError(t, tc.Handshake())
						c = tc
					}
					conns[i] = c
					if sv.setup != nil {
						_, err := c.Write(sv.setup)
						require.NoError(t, err)
						line, err := bufio.NewReader(c).ReadString('\n')
						require.NoError(t, err)
						require.Equal(t, "+OK\r\n", line)
					}
				}
				for i, c := range conns {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for sent[i] < maxSend {
							_ = c.SetWriteDeadline(time.Now().Add(time.Second))
							n, err := c.Write(sv.req)
							sent[i] += n
							if errors.Is(err, os.ErrDeadlineExceeded) {
								return // stalled: the server stopped reading
							}
							if err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					require.NoError(t, err)
				}

				var queued []int
				h.Do(func() {
					for _, w := range rec.Protocols() {
						queued = append(queued, w.Transport().(buffered).Buffered())
					}
				})
				rss1 := rss(t)
				s := h.Stats()
				t.Logf("%s/%s: sent %v; server read %d, queued %v bytes; RSS %+d KiB", kind, sv.name, sent, s.BytesIn, queued, (rss1-rss0)/1024)
				require.Len(t, queued, clients)
				for i := range clients {
					require.Less(t, sent[i], maxSend, "client %d never stalled", i)
					require.LessOrEqual(t, queued[i], 1<<20, "connection %d's write queue", i)
				}
				rssBound := int64(64 << 20)
				if raceEnabled {
					rssBound *= 4 // shadow memory (crypto/tls allocates per record)
				}
				require.Less(t, rss1-rss0, rssBound, "RSS grew from %d to %d", rss0, rss1)

				// Close the sockets under any TLS layer: a crypto/tls Close
				// would first try to send close_notify into the full buffers.
				for _, c := range raws {
					_ = c.Close()
				}
				require.True(t, reactortest.WaitUntil(10*time.Second, func() bool { return h.Stats().ConnsOpen == 0 }), "%+v", h.Stats())
				require.Zero(t, h.Stats().Panics)
			})
		}
	})
}
