package tcp_test

import (
	"net"
	"strconv"
	"testing"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/internal/streamsuite"
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
				pingPong(b, h, echo.Factory{}, size, nil)
			})
		}
	}
}

// pingPong listens with f on h's loop and times b.N round trips of size
// bytes from one Go net client (streamsuite.PingPong). around, if set, is
// called on the loop just before and just after the timed part (before ==
// true, then false).
func pingPong(b *testing.B, h *reactortest.Loop, f transports.Factory, size int, around func(before bool)) {
	p, err := tcp.Listen(h.Loop, "127.0.0.1:0", f, tcp.ListenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Do(func() { _ = p.Close() })
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var onLoop func(bool)
	if around != nil {
		onLoop = func(before bool) { h.Do(func() { around(before) }) }
	}
	streamsuite.PingPong(b, c, size, onLoop)
}

// forwardEcho echoes by forwarding each received buffer without a copy
// (KeepReceived + WriteOwned), copying with Write only what cannot be kept
// or is smaller than min; copied counts the bytes Write copied. Loop only.
type forwardEcho struct {
	t      *tcp.Conn
	min    int
	copied int64
}

func (e *forwardEcho) ConnectionMade(t transports.Transport) { e.t = t.(*tcp.Conn) }
func (e *forwardEcho) ConnectionLost(error)                  {}
func (e *forwardEcho) DataReceived(p []byte) {
	if len(p) >= e.min {
		if release, ok := e.t.KeepReceived(); ok {
			if e.t.WriteOwned(p, release) == nil {
				return
			}
			release(nil)
		}
	}
	e.copied += int64(len(p))
	_ = e.t.Write(p)
}

// BenchmarkEchoForward: BenchmarkEchoPingPong's load against an echo that
// forwards the received buffers (forward) or copies them (copy); copiedB/op
// is the bytes the server copied into its write queue per message (0 when
// every buffer was forwarded), allocs/op the whole process's.
func BenchmarkEchoForward(b *testing.B) {
	for _, kind := range []reactor.BackendKind{reactor.Uring, reactor.Epoll} {
		for _, size := range []int{64, 4096, 65536} {
			for _, mode := range []string{"copy", "forward"} {
				b.Run(kind.String()+"/"+strconv.Itoa(size)+"/"+mode, func(b *testing.B) {
					h := reactortest.Start(b, kind)
					e := &forwardEcho{min: 1 << 30}
					if mode == "forward" {
						e.min = 0
					}
					f := transports.FactoryFunc(func(net.Addr) transports.Protocol { return e })
					var before, after int64
					pingPong(b, h, f, size, func(first bool) {
						if first {
							before = e.copied
						} else {
							after = e.copied
						}
					})
					b.ReportMetric(float64(after-before)/float64(b.N), "copiedB/op")
				})
			}
		}
	}
}
