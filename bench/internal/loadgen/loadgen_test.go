package loadgen

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gyre-io/gyre/bench/internal/gnetsrv"
	"github.com/gyre-io/gyre/bench/internal/netsrv"
)

// startNet runs a netsrv server for proto on a free loopback port.
func startNet(t *testing.T, proto string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrCh := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- netsrv.Serve(ctx, proto, "127.0.0.1:0", func(a net.Addr) { addrCh <- a }) }()
	var a net.Addr
	select {
	case a = <-addrCh:
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return a.String()
}

func TestEchoAgainstNet(t *testing.T) {
	addr := startNet(t, "echo")
	for _, tc := range []struct{ conns, size, depth int }{{1, 64, 1}, {8, 64, 4}, {2, 4096, 2}, {1, 3, 1}} {
		var measured, ended atomic.Bool
		res, err := Run(context.Background(), Config{
			Proto: "echo", Addr: addr, Conns: tc.conns, Size: tc.size, Depth: tc.depth,
			Warmup: 20 * time.Millisecond, Duration: 150 * time.Millisecond, MaxRequests: 200000,
			OnMeasure: func() { measured.Store(true) }, OnEnd: func() { ended.Store(true) },
		})
		require.NoError(t, err)
		require.Zero(t, res.Errors, "%+v", tc)
		require.Positive(t, res.Requests, "%+v", tc)
		require.Equal(t, uint64(res.Requests), res.Hist.Count())
		require.True(t, measured.Load())
		require.True(t, ended.Load())
		require.LessOrEqual(t, res.Hist.Quantile(0.5), res.Hist.Quantile(0.99))
		require.Contains(t, res.Line(Config{Proto: "echo", Conns: tc.conns}), "RESULT proto=echo")
	}
}

func TestMaxRequestsBoundsTheRun(t *testing.T) {
	addr := startNet(t, "echo")
	res, err := Run(context.Background(), Config{Proto: "echo", Addr: addr, Conns: 2, Duration: 20 * time.Second, MaxRequests: 500})
	require.NoError(t, err)
	require.LessOrEqual(t, res.Requests, int64(500))
	require.Less(t, res.Window, 20*time.Second)
}

func TestRESPAndHTTPAgainstNetAndGnet(t *testing.T) {
	for _, impl := range []string{"net", "gnet"} {
		for _, tc := range []struct {
			proto, op string
			depth     int
		}{{"resp", "ping", 16}, {"resp", "setget", 1}, {"resp", "setget", 4}, {"http", "", 1}, {"http", "", 8}, {"echo", "", 3}} {
			var addr string
			if impl == "net" {
				addr = startNet(t, tc.proto)
			} else {
				addr = startGnet(t, tc.proto)
			}
			res, err := Run(context.Background(), Config{
				Proto: tc.proto, Op: tc.op, Addr: addr, Conns: 4, Size: 32, Depth: tc.depth,
				Duration: 100 * time.Millisecond, MaxRequests: 100000,
			})
			require.NoError(t, err)
			require.Zero(t, res.Errors, "%s %+v", impl, tc)
			require.Positive(t, res.Requests, "%s %+v", impl, tc)
		}
	}
}

func startGnet(t *testing.T, proto string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- gnetsrv.Serve(ctx, proto, addr, 1, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return addr
}

// A server that corrupts replies must be counted as errors, not requests.
func TestWrongRepliesCount(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					buf[0] ^= 0xff
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	res, err := Run(context.Background(), Config{Proto: "echo", Addr: ln.Addr().String(), Conns: 3, Duration: 2 * time.Second})
	require.NoError(t, err)
	require.Equal(t, int64(3), res.Errors)
	require.Zero(t, res.Requests)
}

func TestNoServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	_, err = Run(context.Background(), Config{Proto: "echo", Addr: addr, Duration: 10 * time.Millisecond})
	require.ErrorIs(t, err, ErrNoConnection)
}

// A server that accepts and never answers is a stall: each connection's
// missing reply counts as an error once the grace period is over.
func TestStalledServerCounts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	held := make(chan net.Conn, 16)
	defer func() {
		ln.Close()
		for len(held) > 0 {
			_ = (<-held).Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	res, err := Run(context.Background(), Config{Proto: "resp", Addr: ln.Addr().String(), Conns: 2, Duration: 50 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, int64(2), res.Errors)
	require.Zero(t, res.Requests)
}

// UDP echo: one datagram per request, every reply checked; sizes from 3
// bytes (no sequence number) to 1,400.
func TestUDPEchoAgainstNet(t *testing.T) {
	addr := startNet(t, "udpecho")
	for _, tc := range []struct{ conns, size, depth int }{{1, 64, 1}, {8, 1400, 2}, {1, 3, 1}} {
		res, err := Run(context.Background(), Config{
			Proto: "udpecho", Addr: addr, Conns: tc.conns, Size: tc.size, Depth: tc.depth,
			Duration: 150 * time.Millisecond, MaxRequests: 200000,
		})
		require.NoError(t, err)
		require.Zero(t, res.Errors, "%+v", tc)
		require.Positive(t, res.Requests, "%+v", tc)
		require.Contains(t, res.Line(Config{Proto: "udpecho"}), "RESULT proto=udpecho")
	}
}
