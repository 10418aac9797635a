package netconn_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/netconn"
)

// benchListener is an adapter listener on a loop of the backend
// GYRE_BACKEND names (default: auto), or Go's own for "net" (loop nil).
func benchListener(b *testing.B, kind string) (net.Listener, *reactor.Loop) {
	b.Helper()
	if kind == "net" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		return ln, nil
	}
	bk, err := reactor.ParseBackend(os.Getenv(reactor.EnvBackend))
	if err != nil {
		bk = reactor.Auto
	}
	h := reactortest.Start(b, bk)
	return listen(b, h.Loop, "tcp", netconn.Config{}), h.Loop
}

var benchKinds = []string{"netconn", "net"}

// BenchmarkHTTP: sequential keep-alive GETs from a net/http client (Go's
// net) to net/http served on the adapter's listener ("netconn") or on
// net.Listen ("net").
func BenchmarkHTTP(b *testing.B) {
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			ln, _ := benchListener(b, kind)
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, body)
			})}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			tr := &http.Transport{}
			client := &http.Client{Transport: tr}
			url := "http://" + ln.Addr().String() + "/"
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			b.StopTimer()
			tr.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
			<-served
		})
	}
}

// BenchmarkEcho: a blocking 1 KiB echo (Write, then ReadFull) between two
// goroutines, both ends on the adapter ("netconn") or both on Go's net
// ("net"). allocs/op counts the whole process, loop included.
func BenchmarkEcho(b *testing.B) {
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			ln, loop := benchListener(b, kind)
			defer ln.Close()
			var dial func() (net.Conn, error)
			if kind == "net" {
				dial = func() (net.Conn, error) { return net.Dial("tcp", ln.Addr().String()) }
			} else {
				dial = func() (net.Conn, error) {
					return netconn.Dial(context.Background(), loop, "tcp", ln.Addr().String())
				}
			}
			acc := make(chan net.Conn, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					acc <- nil
					return
				}
				acc <- c
			}()
			c, err := dial()
			if err != nil {
				b.Fatal(err)
			}
			s := <-acc
			if s == nil {
				b.Fatal("accept failed")
			}
			echoed := make(chan struct{})
			go func() {
				defer close(echoed)
				buf := make([]byte, 32<<10)
				_, _ = io.CopyBuffer(s, struct{ io.Reader }{s}, buf)
				_ = s.Close()
			}()
			msg := make([]byte, 1024)
			in := make([]byte, 1024)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, in); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			_ = c.Close()
			<-echoed
		})
	}
}

// BenchmarkParallelWrite: 4 goroutines Write 1 KiB each to one adapter conn
// whose peer drains it; calls/write is how many loop.Calls the Writes
// needed (below 1: Writes queued while a flush was pending shared it).
func BenchmarkParallelWrite(b *testing.B) {
	bk, err := reactor.ParseBackend(os.Getenv(reactor.EnvBackend))
	if err != nil {
		bk = reactor.Auto
	}
	h := reactortest.Start(b, bk)
	a, p, stop := pipe(b, h.Loop, "tcp", netconn.Config{})
	defer stop()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		_, _ = io.Copy(io.Discard, struct{ io.Reader }{p})
	}()
	msg := make([]byte, 1024)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.SetParallelism(2) // 2 × GOMAXPROCS goroutines
	before := netconn.Calls(a)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Write(msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(netconn.Calls(a)-before)/float64(b.N), "calls/write")
	_ = a.CloseWrite()
	<-drained
}
