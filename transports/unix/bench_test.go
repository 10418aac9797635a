package unix_test

import (
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/internal/streamsuite"
	gunix "github.com/gyre-io/gyre/transports/unix"
)

// BenchmarkUnixEchoPingPong: a gyre echo server on a UNIX socket, per
// backend, against Go's net echo server on a UNIX socket ("gonet"), with the
// same Go net client.
func BenchmarkUnixEchoPingPong(b *testing.B) {
	for _, size := range []int{64, 4096, 65536} {
		for _, kind := range []reactor.BackendKind{reactor.Uring, reactor.Epoll} {
			b.Run(kind.String()+"/"+strconv.Itoa(size), func(b *testing.B) {
				h := reactortest.Start(b, kind)
				path := sockPath(b)
				p, err := gunix.Listen(h.Loop, path, echo.Factory{}, gunix.ListenOptions{})
				if err != nil {
					b.Fatal(err)
				}
				defer h.Do(func() { _ = p.Close() })
				c, err := net.Dial("unix", path)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				streamsuite.PingPong(b, c, size, nil)
			})
		}
		b.Run("gonet/"+strconv.Itoa(size), func(b *testing.B) {
			path := sockPath(b)
			ln, err := net.Listen("unix", path)
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				s, err := ln.Accept()
				if err != nil {
					return
				}
				defer s.Close()
				_, _ = io.Copy(s, s)
			}()
			c, err := net.Dial("unix", path)
			if err != nil {
				b.Fatal(err)
			}
			streamsuite.PingPong(b, c, size, nil)
			_ = c.Close()
			_ = ln.Close()
			<-done
		})
	}
}
