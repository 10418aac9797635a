package unix_test

import (
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	gunix "github.com/gyre-io/gyre/transports/unix"
)

// pingPong writes msg and reads it back b.N times over c (a Go net client):
// one op is one round trip. Allocations are counted for the whole process;
// the client's Read/Write allocate nothing, so for gyre allocs/op is the
// server's steady-state data path.
func pingPong(b *testing.B, c net.Conn, size int) {
	msg := make([]byte, size)
	got := make([]byte, size)
	for i := 0; i < 100; i++ { // warm up: buffers and queues reach their size
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
}

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
				pingPong(b, c, size)
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
			pingPong(b, c, size)
			_ = c.Close()
			_ = ln.Close()
			<-done
		})
	}
}
