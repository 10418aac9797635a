package tls_test

import (
	ctls "crypto/tls"
	"io"
	"net"
	"os"
	"testing"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	gyretls "github.com/gyre-io/gyre/transports/tls"
)

// benchServer starts a TLS echo server: gyre (on GYRE_BACKEND, else auto) or
// Go's net + crypto/tls (a goroutine per connection).
func benchServer(b *testing.B, impl string, cfg *ctls.Config) string {
	b.Helper()
	if impl == "net" {
		ln, err := ctls.Listen("tcp", "127.0.0.1:0", cfg)
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		b.Cleanup(func() { _ = ln.Close(); <-done })
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
			}
		}()
		return ln.Addr().String()
	}
	kind, err := reactor.ParseBackend(os.Getenv(reactor.EnvBackend))
	if err != nil {
		b.Fatal(err)
	}
	h := reactortest.Start(b, kind)
	port, err := gyretls.Listen(h.Loop, "127.0.0.1:0", transports.FactoryFunc(func(net.Addr) transports.Protocol {
		return &echoProto{}
	}), cfg, gyretls.ListenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Do(func() { _ = port.Close() }) })
	return port.Addr().String()
}

type echoProto struct{ t transports.Transport }

func (e *echoProto) ConnectionMade(t transports.Transport) { e.t = t }
func (e *echoProto) DataReceived(p []byte)                 { _ = e.t.Write(p) }
func (e *echoProto) ConnectionLost(error)                  {}

// BenchmarkTLSEcho: one connection, a crypto/tls client writes size bytes
// and reads them back; the server is gyre or net+crypto/tls. Allocations
// include the client's (the same for both).
func BenchmarkTLSEcho(b *testing.B) {
	p := testPKI(b)
	for _, impl := range []string{"gyre", "net"} {
		for _, size := range []int{64, 16 << 10} {
			b.Run(impl+"/"+itoa(size), func(b *testing.B) {
				addr := benchServer(b, impl, p.server())
				c, err := ctls.Dial("tcp", addr, p.client())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				msg, buf := pattern(size), make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := c.Write(msg); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkTLSHandshake: full TLS 1.3 handshakes (no resumption) from a
// crypto/tls client, one at a time; ns/op is the inverse of handshakes/s.
func BenchmarkTLSHandshake(b *testing.B) {
	p := testPKI(b)
	for _, impl := range []string{"gyre", "net"} {
		b.Run(impl, func(b *testing.B) {
			addr := benchServer(b, impl, p.server())
			cfg := p.client()
			b.ReportAllocs()
			b.ResetTimer()
			one := []byte{1}
			for range b.N {
				c, err := ctls.Dial("tcp", addr, cfg)
				if err != nil {
					b.Fatal(err)
				}
				// a round trip, so the server's side of the handshake has finished
				if _, err := c.Write(one); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, one); err != nil {
					b.Fatal(err)
				}
				_ = c.Close()
			}
		})
	}
}

func itoa(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return string(rune('0'+n>>10/10)) + string(rune('0'+n>>10%10)) + "KiB"
	}
	return string(rune('0'+n/10)) + string(rune('0'+n%10)) + "B"
}
