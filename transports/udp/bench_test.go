package udp_test

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/udp"
)

// echoProto answers every datagram (no copy, no allocation).
type echoProto struct{ rec }

func (e *echoProto) DatagramReceived(p []byte, addr netip.AddrPort) { _ = e.tr.Write(p, addr) }

// pingPong sends b.N datagrams of size n to addr one at a time, reading each
// echo (allocs/op counts the whole process: client and server).
func pingPong(b *testing.B, addr netip.AddrPort, n int) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	out, in := make([]byte, n), make([]byte, n+1)
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(out); err != nil {
			b.Fatal(err)
		}
		if k, err := c.Read(in); err != nil || k != n {
			b.Fatal(k, err)
		}
	}
}

// BenchmarkEcho: UDP echo round trips through a gyre port (both backends)
// and through a Go net.UDPConn ReadFrom/WriteTo loop, 64 B and 1,400 B.
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{64, 1400} {
		for _, kind := range []reactor.BackendKind{reactor.Uring, reactor.Epoll} {
			b.Run(kind.String()+"/"+itoa(size), func(b *testing.B) {
				h := reactortest.Start(b, kind)
				e := &echoProto{}
				var p *udp.Port
				h.Do(func() { p, _ = udp.Listen(h.Loop, "127.0.0.1:0", e, udp.ListenOptions{}) })
				pingPong(b, p.LocalAddr(), size)
				b.StopTimer()
				h.Do(func() { _ = p.StopListening(nil) })
				h.StopWait()
			})
		}
		b.Run("net/"+itoa(size), func(b *testing.B) {
			s, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 65536)
				for {
					n, from, err := s.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					_, _ = s.WriteToUDPAddrPort(buf[:n], from)
				}
			}()
			pingPong(b, netip.MustParseAddrPort(s.LocalAddr().String()), size)
			b.StopTimer()
			_ = s.Close()
			<-done
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
