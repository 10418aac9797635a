package tcp_test

import (
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/tcp"
)

// BenchmarkEchoPingPong: one Go net client, a gyre echo server; one op is one
// message written and read back. Allocations are counted for the whole
// process (the client's net.Conn Read/Write allocate nothing), so allocs/op is
// the server's steady-state data path.
func BenchmarkEchoPingPong(b *testing.B) {
	for _, kind := range []reactor.BackendKind{reactor.Uring, reactor.Epoll} {
		for _, size := range []int{64, 4096, 65536} {
			b.Run(kind.String()+"/"+strconv.Itoa(size), func(b *testing.B) {
				h := reactortest.Start(b, kind)
				p, err := tcp.Listen(h.Loop, "127.0.0.1:0", echo.Factory{}, tcp.ListenOptions{})
				if err != nil {
					b.Fatal(err)
				}
				defer h.Do(func() { _ = p.Close() })
				c, err := net.Dial("tcp", p.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				msg := make([]byte, size)
				got := make([]byte, size)
				// Warm up: buffers, slots and queues reach their steady size.
				for i := 0; i < 100; i++ {
					_, _ = c.Write(msg)
					_, _ = io.ReadFull(c, got)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := c.Write(msg); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, got); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
