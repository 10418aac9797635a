package unixgram_test

import (
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/unixgram"
)

// echoProto answers every datagram (no copy).
type echoProto struct{ rec }

func (e *echoProto) DatagramReceived(p []byte, from string) { _ = e.tr.Write(p, from) }

// BenchmarkEcho: UNIX datagram echo round trips through a gyre port, 64 B
// and 1,400 B; the client is a bound, connected blocking socket driven by
// raw system calls, so allocs/op is the port's: 0 (the sender's name
// string is reused while the sender stays the same).
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{64, 1400} {
		for _, kind := range []reactor.BackendKind{reactor.Uring, reactor.Epoll} {
			b.Run(kind.String()+"/"+strconv.Itoa(size), func(b *testing.B) {
				h := reactortest.Start(b, kind)
				e := &echoProto{}
				var p *unixgram.Port
				var err error
				srv := sockPath(b, "srv")
				h.Do(func() { p, err = unixgram.Listen(h.Loop, srv, e, unixgram.ListenOptions{}) })
				if err != nil {
					b.Fatal(err)
				}
				fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					b.Fatal(err)
				}
				defer unix.Close(fd)
				if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sockPath(b, "cl")}); err != nil {
					b.Fatal(err)
				}
				if err := unix.Connect(fd, &unix.SockaddrUnix{Name: srv}); err != nil {
					b.Fatal(err)
				}
				out, in := make([]byte, size), make([]byte, size+1)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := unix.Write(fd, out); err != nil {
						b.Fatal(err)
					}
					if k, err := unix.Read(fd, in); err != nil || k != size {
						b.Fatal(k, err)
					}
				}
				b.StopTimer()
				h.Do(func() { _ = p.StopListening(nil) })
				h.StopWait()
			})
		}
	}
}
