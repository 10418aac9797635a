package netconn_test

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/netconn"
)

// TestNetworks: tcp4 and tcp6 bind and dial their own family only; unknown
// networks and refused connections fail with net's error shapes.
func TestNetworks(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		ctx := context.Background()
		cases := []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp4", ":0"}, {"tcp6", "[::1]:0"}, {"tcp", "localhost:0"}}
		for _, tc := range cases {
			ln, err := netconn.Listen(h.Loop, tc.network, tc.addr)
			if err != nil {
				if tc.network == "tcp6" {
					t.Logf("no IPv6 loopback: %v", err)
					continue
				}
				t.Fatal(err)
			}
			ta := ln.Addr().(*net.TCPAddr)
			if (tc.network == "tcp4" && ta.IP.To4() == nil) || (tc.network == "tcp6" && ta.IP.To4() != nil) {
				t.Fatalf("%s %s bound %v", tc.network, tc.addr, ta)
			}
			host := "localhost"
			if tc.network == "tcp6" {
				host = "::1"
			}
			dialAddr := net.JoinHostPort(host, itoa(ta.Port))
			acc := make(chan net.Conn, 1)
			go func() {
				c, _ := ln.Accept()
				acc <- c
			}()
			c, err := netconn.Dial(ctx, h.Loop, tc.network, dialAddr)
			if err != nil {
				t.Fatalf("dial %s %s: %v", tc.network, dialAddr, err)
			}
			s := <-acc
			if s == nil {
				t.Fatal("accept failed")
			}
			if _, err := c.Write([]byte("hi")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 2)
			if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hi" {
				t.Fatalf("%q %v", buf, err)
			}
			_ = c.Close()
			_ = s.Close()
			_ = ln.Close()
			// The port is free again once Close has returned: nothing listens.
			if _, err := netconn.Dial(ctx, h.Loop, tc.network, dialAddr); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial after listener Close: %v", err)
			}
		}
		if _, err := netconn.Listen(h.Loop, "udp", ":0"); !errors.As(err, new(net.UnknownNetworkError)) {
			t.Fatalf("Listen udp: %v", err)
		}
		if _, err := netconn.Dial(ctx, h.Loop, "ip", "127.0.0.1"); !errors.As(err, new(net.UnknownNetworkError)) {
			t.Fatalf("Dial ip: %v", err)
		}
		if _, err := netconn.Dial(ctx, h.Loop, "tcp6", "127.0.0.1:80"); err == nil {
			t.Fatal("tcp6 dialed an IPv4 address")
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := netconn.Dial(cctx, h.Loop, "tcp", "127.0.0.1:1"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Dial with a cancelled ctx: %v", err)
		}
	})
}

func itoa(i int) string {
	return (&net.TCPAddr{Port: i}).String()[1:]
}

// TestListenerCloseDropsPending: connections the loop accepted but Accept
// never returned are closed with the listener (their peers read EOF).
func TestListenerCloseDropsPending(t *testing.T) {
	each(t, func(t *testing.T, h *reactortest.Loop, network string) {
		ln := listen(t, h.Loop, network, netconn.Config{})
		var peers []net.Conn
		for i := 0; i < 3; i++ {
			c, err := netconn.Dial(context.Background(), h.Loop, network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			peers = append(peers, c)
		}
		time.Sleep(50 * time.Millisecond) // let the loop accept them
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		for _, c := range peers {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := c.Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("peer of a pending conn read %d, %v", n, err)
			}
		}
	})
}
