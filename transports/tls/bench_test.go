package gyretls_test

import (
	ctls "crypto/tls"
	"errors"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	gyrehttp "github.com/gyre-io/gyre/protocols/http"
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

// BenchmarkTLSEcho: conns connections (1 or 50), crypto/tls clients in
// goroutines of the benchmark write size bytes and read them back, b.N round
// trips in all; the server is gyre (GYRE_BACKEND, else auto) or net +
// crypto/tls (a goroutine per connection). Allocations include the clients'
// (the same for both); BenchmarkTLSEchoLoop counts gyre's alone.
func BenchmarkTLSEcho(b *testing.B) {
	p := testPKI(b)
	for _, impl := range []string{"gyre", "net"} {
		for _, conns := range []int{1, 50} {
			for _, size := range []int{64, 16 << 10} {
				b.Run(impl+"/c"+strconv.Itoa(conns)+"/"+itoa(size), func(b *testing.B) {
					addr := benchServer(b, impl, p.server())
					cs := make([]*ctls.Conn, conns)
					for i := range cs {
						c, err := ctls.Dial("tcp", addr, p.client())
						if err != nil {
							b.Fatal(err)
						}
						defer c.Close()
						cs[i] = c
					}
					b.SetBytes(int64(size))
					b.ReportAllocs()
					b.ResetTimer()
					spread(b, conns, func(i, n int) error {
						c, msg, buf := cs[i], pattern(size), make([]byte, size)
						for range n {
							if _, err := c.Write(msg); err != nil {
								return err
							}
							if _, err := io.ReadFull(c, buf); err != nil {
								return err
							}
						}
						return nil
					})
				})
			}
		}
	}
}

// spread runs b.N operations split over conns goroutines; f(i, n) does n of
// them on connection i.
func spread(b *testing.B, conns int, f func(i, n int) error) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		n := b.N / conns
		if i < b.N%conns {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(i, n); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkTLSEchoLoop: a gyre TLS client and a gyre TLS echo server on one
// loop, one connection; allocs/op are gyre's alone, both sides: 2, one per
// receiving side (crypto/tls's atLeastReader, see TestSteadyStateAllocs).
func BenchmarkTLSEchoLoop(b *testing.B) {
	kind, err := reactor.ParseBackend(os.Getenv(reactor.EnvBackend))
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{64, 16 << 10} {
		b.Run(itoa(size), func(b *testing.B) {
			h := reactortest.Start(b, kind)
			pg := loopEcho(b, h, size, 0)
			pg.roundTrips(b, h, 50)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			pg.roundTrips(b, h, b.N)
		})
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
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		})
	}
}

// BenchmarkHTTPSHello: GET / answered with "Hello, World!" over TLS 1.3 on
// conns keep-alive connections (net/http clients); the server is
// protocols/http over gyre TLS, or net/http's ServeTLS (ListenAndServeTLS on
// a listener).
func BenchmarkHTTPSHello(b *testing.B) {
	p := testPKI(b)
	hello := []byte("Hello, World!")
	for _, impl := range []string{"gyre", "net"} {
		for _, conns := range []int{1, 50} {
			b.Run(impl+"/c"+strconv.Itoa(conns), func(b *testing.B) {
				var addr string
				if impl == "net" {
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						b.Fatal(err)
					}
					srv := &nethttp.Server{
						Handler: nethttp.HandlerFunc(func(w nethttp.ResponseWriter, _ *nethttp.Request) {
							w.Header().Set("Content-Type", "text/plain; charset=utf-8")
							_, _ = w.Write(hello)
						}),
						TLSConfig: p.server(),
					}
					done := make(chan struct{})
					go func() { defer close(done); _ = srv.ServeTLS(ln, "", "") }()
					b.Cleanup(func() { _ = srv.Close(); <-done })
					addr = ln.Addr().String()
				} else {
					kind, err := reactor.ParseBackend(os.Getenv(reactor.EnvBackend))
					if err != nil {
						b.Fatal(err)
					}
					h := reactortest.Start(b, kind)
					f := gyrehttp.NewFactory(gyrehttp.HandlerFunc(func(w gyrehttp.ResponseWriter, _ *gyrehttp.Request) {
						w.Header().Set("Content-Type", "text/plain; charset=utf-8")
						_, _ = w.Write(hello)
					}), gyrehttp.Options{})
					port, err := gyretls.Listen(h.Loop, "127.0.0.1:0", f, p.server(), gyretls.ListenOptions{})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { h.Do(func() { _ = port.Close() }) })
					addr = port.Addr().String()
				}
				tr := &nethttp.Transport{TLSClientConfig: p.client(), MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
				defer tr.CloseIdleConnections()
				client := &nethttp.Client{Transport: tr, Timeout: 30 * time.Second}
				url := "https://" + addr + "/" // the certificate's name comes from ServerName
				get := func() error {
					resp, err := client.Get(url)
					if err != nil {
						return err
					}
					body, err := io.ReadAll(resp.Body)
					_ = resp.Body.Close()
					if err == nil && string(body) != string(hello) {
						err = errors.New("bad body: " + string(body))
					}
					return err
				}
				spread(b, conns, func(int, int) error { return get() }) // open the connections
				b.ReportAllocs()
				b.ResetTimer()
				spread(b, conns, func(_, n int) error {
					for range n {
						if err := get(); err != nil {
							return err
						}
					}
					return nil
				})
			})
		}
	}
}

func itoa(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return string(rune('0'+n>>10/10)) + string(rune('0'+n>>10%10)) + "KiB"
	}
	return string(rune('0'+n/10)) + string(rune('0'+n%10)) + "B"
}
