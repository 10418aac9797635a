package serve

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/uring"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// GYRE_BACKEND is -backend's default; an explicit -backend wins; an unknown
// value from either is an error naming it.
func TestParseFlagsBackend(t *testing.T) {
	cases := []struct {
		env  string
		args []string
		want reactor.BackendKind
		err  string // substring of the error; "" for none
	}{
		{"", nil, reactor.Auto, ""},
		{"epoll", nil, reactor.Epoll, ""},
		{"uring", nil, reactor.Uring, ""},
		{"epoll", []string{"-backend", "uring"}, reactor.Uring, ""},
		{"", []string{"-backend", "epoll"}, reactor.Epoll, ""},
		{"epoll", []string{"-backend", "auto"}, reactor.Auto, ""},
		{"bogus", nil, 0, `GYRE_BACKEND): gyre/reactor: unknown backend "bogus"`},
		{"bogus", []string{"-backend", "epoll"}, reactor.Epoll, ""},
		{"", []string{"-backend", "nope"}, 0, `-backend: gyre/reactor: unknown backend "nope"`},
	}
	for _, c := range cases {
		getenv := func(k string) string {
			if k == reactor.EnvBackend {
				return c.env
			}
			return ""
		}
		var out bytes.Buffer
		o, err := ParseFlags("x", "127.0.0.1:7", c.args, getenv, &out)
		if c.err != "" {
			require.ErrorIs(t, err, reactor.ErrUnknownBackend, "env=%q args=%q", c.env, c.args)
			require.ErrorContains(t, err, c.err)
			continue
		}
		require.NoError(t, err, "env=%q args=%q", c.env, c.args)
		require.Equal(t, c.want, o.Backend, "env=%q args=%q", c.env, c.args)
		require.Equal(t, "127.0.0.1:7", o.Addr)
	}
	o, err := ParseFlags("x", "127.0.0.1:7", []string{"-addr", "[::1]:9"}, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "[::1]:9", o.Addr)
	_, err = ParseFlags("x", "", []string{"-h"}, func(string) string { return "" }, io.Discard)
	require.ErrorIs(t, err, flag.ErrHelp)
	_, err = ParseFlags("x", "", []string{"extra"}, func(string) string { return "" }, io.Discard)
	require.Error(t, err)
}

// Run serves on the backend asked for and, on SIGTERM, stops cleanly: it
// returns nil and every descriptor is closed.
func TestRunServesAndStopsOnSIGTERM(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		base := reactortest.FDCount()
		type ready struct {
			addr net.Addr
			be   string
		}
		readyCh := make(chan ready, 1)
		errCh := make(chan error, 1)
		go func() {
			errCh <- run("echo", "127.0.0.1:0", kind, func(*reactor.Loop) transports.Factory { return echo.Factory{} },
				func(a net.Addr, be string) { readyCh <- ready{a, be} })
		}()
		var r ready
		select {
		case r = <-readyCh:
		case err := <-errCh:
			if kind == reactor.Uring && errors.Is(err, uring.ErrUnavailable) {
				t.Skip(err)
			}
			t.Fatalf("run: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("server did not start")
		}
		require.Equal(t, kind.String(), r.be)
		c, err := net.DialTimeout("tcp", r.addr.String(), 5*time.Second)
		require.NoError(t, err)
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Write([]byte("ping"))
		require.NoError(t, err)
		buf := make([]byte, 4)
		_, err = io.ReadFull(c, buf)
		require.NoError(t, err)
		require.Equal(t, "ping", string(buf))

		require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM))
		select {
		case err := <-errCh:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Fatal("server did not stop on SIGTERM")
		}
		// The server closed its side: the client sees EOF.
		_, err = c.Read(buf)
		require.ErrorIs(t, err, io.EOF)
		require.NoError(t, c.Close())
		require.Equal(t, base, reactortest.FDCount(), "descriptors leaked")
	})
}
