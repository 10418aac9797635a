package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gyre-io/gyre/bench/internal/gnetsrv"
	"github.com/gyre-io/gyre/bench/internal/gyresrv"
	"github.com/gyre-io/gyre/bench/internal/harness"
	"github.com/gyre-io/gyre/bench/internal/netsrv"
	"github.com/gyre-io/gyre/reactor"
)

// The in-process echo benchmarks: server and Go net clients in one process,
// so allocations of the server's steady state show up in allocs/op (the Go
// net client itself allocates nothing per message).
//
//	go test ./bench -run '^$' -bench Echo -benchmem -count 6 | tee new.txt; benchstat new.txt

// startEcho starts an in-process echo server of impl and returns its address
// and a stop function.
func startEcho(b *testing.B, impl string) (string, func()) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	switch impl {
	case "gyre-uring", "gyre-epoll":
		kind := reactor.Uring
		if impl == "gyre-epoll" {
			kind = reactor.Epoll
		}
		if err := backendAvailable(kind); err != nil {
			cancel()
			b.Skipf("%s unavailable: %v", impl, err)
		}
		addrCh := make(chan net.Addr, 1)
		go func() { done <- gyresrv.Serve(ctx, kind, "echo", "127.0.0.1:0", 1, func(a net.Addr) { addrCh <- a }) }()
		select {
		case a := <-addrCh:
			return a.String(), func() { cancel(); <-done }
		case err := <-done:
			cancel()
			b.Fatal(err)
		}
	case "net":
		addrCh := make(chan net.Addr, 1)
		go func() { done <- netsrv.Serve(ctx, "echo", "127.0.0.1:0", func(a net.Addr) { addrCh <- a }) }()
		select {
		case a := <-addrCh:
			return a.String(), func() { cancel(); <-done }
		case err := <-done:
			cancel()
			b.Fatal(err)
		}
	case "gnet":
		addr, err := harness.FreePort()
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		ready := make(chan struct{})
		go func() { done <- gnetsrv.Serve(ctx, "echo", addr, 1, func() { close(ready) }) }()
		select {
		case <-ready:
			return addr, func() { cancel(); <-done }
		case err := <-done:
			cancel()
			b.Fatal(err)
		}
	}
	cancel()
	b.Fatalf("unknown impl %q", impl)
	return "", nil
}

var benchImpls = []string{"gyre-uring", "gyre-epoll", "net", "gnet"}

// BenchmarkEchoPingPong: one connection, one message in flight.
func BenchmarkEchoPingPong(b *testing.B) {
	for _, impl := range benchImpls {
		for _, size := range []int{64, 4 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("%s/%dB", impl, size), func(b *testing.B) {
				addr, stop := startEcho(b, impl)
				defer stop()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				msg := make([]byte, size)
				for i := range msg {
					msg[i] = byte(i)
				}
				got := make([]byte, size)
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
				b.StopTimer()
				if got[size-1] != msg[size-1] {
					b.Fatal("echo mismatch")
				}
			})
		}
	}
}

// BenchmarkEcho50Conns: 50 connections, 64 B, one message in flight each;
// b.N messages in total.
func BenchmarkEcho50Conns(b *testing.B) {
	const conns, size = 50, 64
	for _, impl := range benchImpls {
		b.Run(impl, func(b *testing.B) {
			addr, stop := startEcho(b, impl)
			defer stop()
			cs := make([]net.Conn, conns)
			for i := range cs {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				cs[i] = c
			}
			var next atomic.Int64
			var failed atomic.Value
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					msg := make([]byte, size)
					got := make([]byte, size)
					for next.Add(1) <= int64(b.N) {
						if _, err := c.Write(msg); err != nil {
							failed.Store(err)
							return
						}
						if _, err := io.ReadFull(c, got); err != nil {
							failed.Store(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
		})
	}
}
