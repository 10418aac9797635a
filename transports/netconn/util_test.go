package netconn_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports/netconn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var networks = []string{"tcp", "unix"}

// addrFor is a listening address for network: a free loopback port, or a
// fresh socket path (short: sun_path holds 108 bytes).
func addrFor(t testing.TB, network string) string {
	t.Helper()
	if network == "unix" {
		dir, err := os.MkdirTemp("", "gnc")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		return filepath.Join(dir, "s")
	}
	return "127.0.0.1:0"
}

func listen(t testing.TB, loop *reactor.Loop, network string, cfg netconn.Config) net.Listener {
	t.Helper()
	ln, err := cfg.Listen(loop, network, addrFor(t, network))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// pipe connects two adapter conns: a dialed and an accepted one.
func pipe(t testing.TB, loop *reactor.Loop, network string, cfg netconn.Config) (dialed, accepted *netconn.Conn, stop func()) {
	t.Helper()
	ln := listen(t, loop, network, cfg)
	c1, c2, err := pipeOn(loop, ln, cfg)
	_ = ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	return c1, c2, func() { _ = c1.Close(); _ = c2.Close() }
}

func pipeOn(loop *reactor.Loop, ln net.Listener, cfg netconn.Config) (*netconn.Conn, *netconn.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := cfg.Dial(ctx, loop, ln.Addr().Network(), ln.Addr().String())
	r := <-ch
	if err != nil {
		if r.c != nil {
			_ = r.c.Close()
		}
		return nil, nil, err
	}
	if r.err != nil {
		_ = d.Close()
		return nil, nil, r.err
	}
	return d.(*netconn.Conn), r.c.(*netconn.Conn), nil
}

// each runs f per backend and network, with a fresh loop.
func each(t *testing.T, f func(t *testing.T, h *reactortest.Loop, network string)) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, network := range networks {
			t.Run(network, func(t *testing.T) {
				fds := reactortest.FDCount()
				t.Cleanup(func() { // runs after the loop's stop (cleanups run last-in first-out)
					if !reactortest.WaitUntil(5*time.Second, func() bool { return reactortest.FDCount() <= fds }) {
						t.Errorf("descriptors leaked: %d open, %d before", reactortest.FDCount(), fds)
					}
				})
				h := reactortest.Start(t, kind)
				f(t, h, network)
			})
		}
	})
}
