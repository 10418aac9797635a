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
//
// The gonet row is not a like-for-like comparison: its server and client
// goroutines share this process's scheduler and often one thread (netpoll
// hands one to the other without a kernel wake-up), so it measures 2–3×
// faster than gyre, whose loop is its own locked thread (two cross-thread
// wake-ups per round trip). Across processes the order reverses: on
// 2026-11-30 `examples/echo -addr unix:PATH` against a Go net `io.Copy` echo
// (server and a Go net client pinned to different CPUs) used 7.2–7.6 µs
// (io_uring) and 6.4–8.4 µs (epoll) of server CPU per 64 B round trip vs
// 10.6–14.6 µs, and 22–30 µs vs 45–94 µs at 64 KiB. Use this benchmark to
// compare gyre with itself (sizes, backends, allocations).
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
