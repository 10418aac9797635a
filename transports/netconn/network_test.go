package netconn_test

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	sysunix "golang.org/x/sys/unix"

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

// TestErrorShapes: failed dials and listens read as the standard library's
// ("dial tcp 127.0.0.1:P: connect: connection refused", no repeated
// prefix), name the address even for a context's end, and still match the
// errno, the context error and *net.OpError.
func TestErrorShapes(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		h := reactortest.Start(t, kind)
		ctx := context.Background()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		_, refused := net.Dial("tcp", addr)

		check := func(err error, want string, is error) {
			t.Helper()
			var oe *net.OpError
			if !errors.As(err, &oe) || err.Error() != want || !errors.Is(err, is) {
				t.Fatalf("got %v (%T), want %q matching %v", err, err, want, is)
			}
		}
		_, err = netconn.Dial(ctx, h.Loop, "tcp", addr)
		check(err, refused.Error(), syscall.ECONNREFUSED)
		_, err = netconn.Dial(ctx, h.Loop, "tcp4", addr)
		check(err, "dial tcp4 "+addr+": connect: connection refused", syscall.ECONNREFUSED)
		_, err = netconn.Dial(ctx, h.Loop, "unix", "/nonexistent/gyre.sock")
		check(err, "dial unix /nonexistent/gyre.sock: connect: no such file or directory", syscall.ENOENT)

		ln, err := netconn.Listen(h.Loop, "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		_, err = netconn.Listen(h.Loop, "tcp", l.Addr().String())
		_, inUse := net.Listen("tcp", l.Addr().String())
		check(err, inUse.Error(), syscall.EADDRINUSE)

		past, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		defer cancel()
		_, err = netconn.Dial(past, h.Loop, "tcp", addr)
		check(err, "dial tcp "+addr+": context deadline exceeded", context.DeadlineExceeded)
		_, err = netconn.Dial(past, h.Loop, "tcp4", addr)
		check(err, "dial tcp4 "+addr+": context deadline exceeded", context.DeadlineExceeded)

		// A deadline passing while the connect is in flight: a listener
		// whose accept queue (backlog 0: one connection) is full drops SYNs.
		fd, err := sysunix.Socket(sysunix.AF_INET, sysunix.SOCK_STREAM|sysunix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer sysunix.Close(fd)
		if err := sysunix.Bind(fd, &sysunix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		if err := sysunix.Listen(fd, 0); err != nil {
			t.Fatal(err)
		}
		sa, err := sysunix.Getsockname(fd)
		if err != nil {
			t.Fatal(err)
		}
		full := net.JoinHostPort("127.0.0.1", itoa(sa.(*sysunix.SockaddrInet4).Port))
		filler, err := net.DialTimeout("tcp", full, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer filler.Close()
		short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel2()
		_, err = netconn.Dial(short, h.Loop, "tcp", full)
		check(err, "dial tcp "+full+": context deadline exceeded", context.DeadlineExceeded)
	})
}
