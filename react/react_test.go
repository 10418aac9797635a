package react

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/gyre-io/gyre/protocols/echo"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/reactortest"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/endpoint"
	"github.com/gyre-io/gyre/uring"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func noenv(string) string { return "" }

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
		o, err := ParseFlags("x", "tcp:7", c.args, getenv, io.Discard)
		if c.err != "" {
			require.ErrorIs(t, err, reactor.ErrUnknownBackend, "env=%q args=%q", c.env, c.args)
			require.ErrorContains(t, err, c.err)
			continue
		}
		require.NoError(t, err, "env=%q args=%q", c.env, c.args)
		require.Equal(t, c.want, o.Backend, "env=%q args=%q", c.env, c.args)
		require.Equal(t, "tcp:7", o.Description())
	}
}

func TestParseFlagsListen(t *testing.T) {
	o, err := ParseFlags("x", "tcp:7", []string{"-addr", "[::1]:9", "-loops", "0", "-debug-addr", "127.0.0.1:0"}, noenv, io.Discard)
	require.NoError(t, err)
	require.Equal(t, `tcp:9:interface=\:\:1`, o.Description())
	require.Equal(t, PerCPU, o.Loops)
	require.Equal(t, "127.0.0.1:0", o.DebugAddr)
	o, err = ParseFlags("x", "tcp:7", []string{"-listen", "unix:/a"}, noenv, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "unix:/a", o.Description())
	require.Equal(t, PerCPU, o.Loops, "one loop per CPU by default")
	o, err = ParseFlags("x", "tcp:7", []string{"-loops", "3"}, noenv, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 3, o.Loops)

	for args, want := range map[string]string{
		"-listen tcp:1 -addr :1": "give one",
		"-tls-cert c":            "-tls-key",
		"-loops -2":              "-loops -2",
		"extra":                  "unexpected arguments",
		"-bogus":                 "bogus",
	} {
		var out bytes.Buffer
		_, err := ParseFlags("x", "tcp:7", strings.Fields(args), noenv, &out)
		require.Error(t, err, args)
		require.Contains(t, err.Error()+out.String(), want, args)
	}
	var help bytes.Buffer
	_, err = ParseFlags("x", "", []string{"-h"}, noenv, &help)
	require.ErrorIs(t, err, flag.ErrHelp)
	// -backend's default is said once, in its own words.
	require.Contains(t, help.String(), "(default: $GYRE_BACKEND, else auto)\n")
	require.NotContains(t, help.String(), `(default "auto")`)
}

func TestAddrDescription(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:7000":  "tcp:7000:interface=127.0.0.1",
		":80":             "tcp:80",
		"[::1]:0":         `tcp:0:interface=\:\:1`,
		"unix:/tmp/a:b=c": `unix:/tmp/a\:b\=c`,
		"unix:@abs":       "unix:@abs",
	} {
		require.Equal(t, want, AddrDescription(in), in)
		_, err := endpoint.ParseServer(AddrDescription(in))
		require.NoError(t, err, in)
	}
}

// Exit statuses of Main: 2 for a bad command line, 1 for a failed start.
func TestMainExitCodes(t *testing.T) {
	mk := func(*reactor.Loop) transports.Factory { return echo.Factory{} }
	var out bytes.Buffer
	require.Equal(t, 2, runMain("x", "tcp:0", mk, []string{"-listen", "tcp:nope"}, noenv, &out))
	require.Contains(t, out.String(), "x: -listen: gyre/endpoint: bad endpoint description")
	require.Equal(t, 2, runMain("x", "tcp:0", mk, []string{"-addr", "nohostport"}, noenv, &out))
	require.Equal(t, 2, runMain("x", "tcp:0", mk, []string{"-backend", "nope"}, noenv, &out))
	out.Reset()
	require.Equal(t, 2, runMain("x", "tcp:0", mk, []string{"-listen", ""}, noenv, &out))
	require.Contains(t, out.String(), "x: -listen: gyre/endpoint: bad endpoint description")
	require.NotContains(t, out.String(), "-addr")
	// A file that cannot be read is a start-up failure (1), named by its
	// flag or parameter, whichever way TLS was asked for.
	out.Reset()
	require.Equal(t, 1, runMain("x", "tcp:0", mk, []string{"-tls-cert", "/nonexistent/c.pem", "-tls-key", "/nonexistent/k.pem"}, noenv, &out))
	require.Contains(t, out.String(), "x: -tls-cert /nonexistent/c.pem: open /nonexistent/c.pem: no such file")
	dir := t.TempDir()
	cert := filepath.Join(dir, "c.pem")
	require.NoError(t, os.WriteFile(cert, []byte("not PEM"), 0o600))
	out.Reset()
	require.Equal(t, 1, runMain("x", "tcp:0", mk, []string{"-tls-cert", cert, "-tls-key", "/nonexistent/k.pem"}, noenv, &out))
	require.Contains(t, out.String(), "x: -tls-key /nonexistent/k.pem: open")
	out.Reset()
	require.Equal(t, 1, runMain("x", "tcp:0", mk, []string{"-tls-cert", cert, "-tls-key", cert}, noenv, &out))
	require.Contains(t, out.String(), "x: -tls-cert "+cert+" / -tls-key "+cert+": tls:")
	out.Reset()
	require.Equal(t, 1, runMain("x", "tcp:0", mk, []string{"-listen", "ssl:0:privateKey=/nonexistent/k.pem"}, noenv, &out))
	require.Contains(t, out.String(), "x: -listen: gyre/endpoint: unusable file in description")
	require.Contains(t, out.String(), "privateKey /nonexistent/k.pem: open")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	out.Reset()
	require.Equal(t, 1, runMain("x", "tcp:0", mk, []string{"-addr", l.Addr().String(), "-backend", "epoll"}, noenv, &out))
	require.Contains(t, out.String(), "address already in use")
	require.Equal(t, 0, runMain("x", "tcp:0", mk, []string{"-h"}, noenv, io.Discard))
	// Several loops on a UNIX path is a command-line error that says what to do.
	out.Reset()
	require.Equal(t, 2, runMain("x", "tcp:0", mk, []string{"-loops", "2", "-addr", "unix:" + filepath.Join(t.TempDir(), "s")}, noenv, &out))
	require.Contains(t, out.String(), "-loops 1")
}

// Serve listens on every loop (SO_REUSEPORT for several), serves, and on
// SIGTERM stops cleanly: it returns nil and every descriptor is closed.
func TestServeStopsOnSIGTERM(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		for _, loops := range []int{1, 3} {
			base := reactortest.FDCount()
			type ready struct {
				addr net.Addr
				be   string
			}
			readyCh := make(chan ready, 1)
			errCh := make(chan error, 1)
			cfg := Config{Name: "echo", Backend: kind, Loops: loops, Listening: func(a net.Addr, be string) { readyCh <- ready{a, be} }}
			go func() {
				errCh <- Serve(context.Background(), cfg, "tcp:0:interface=127.0.0.1", func(*reactor.Loop) transports.Factory { return echo.Factory{} })
			}()
			var r ready
			select {
			case r = <-readyCh:
			case err := <-errCh:
				if kind == reactor.Uring && errors.Is(err, uring.ErrUnavailable) {
					t.Skip(err)
				}
				t.Fatalf("serve: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("server did not start")
			}
			require.Equal(t, kind.String(), r.be)
			var conns []net.Conn
			for range 2 * loops { // reaches every accept queue with high probability; each must echo
				c, err := net.DialTimeout("tcp", r.addr.String(), 5*time.Second)
				require.NoError(t, err)
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Write([]byte("ping"))
				require.NoError(t, err)
				buf := make([]byte, 4)
				_, err = io.ReadFull(c, buf)
				require.NoError(t, err)
				require.Equal(t, "ping", string(buf))
				conns = append(conns, c)
			}
			require.NoError(t, syscall.Kill(syscall.Getpid(), syscall.SIGTERM))
			select {
			case err := <-errCh:
				require.NoError(t, err)
			case <-time.After(20 * time.Second):
				t.Fatal("server did not stop on SIGTERM")
			}
			for _, c := range conns {
				_, err := c.Read(make([]byte, 1))
				require.ErrorIs(t, err, io.EOF, "the server closed its side")
				require.NoError(t, c.Close())
			}
			require.Equal(t, base, reactortest.FDCount(), "descriptors leaked")
		}
	})
}

// A set-up error stops the loops made so far and is returned; a UNIX path
// with several loops is ErrNotShareable; a cancelled context stops Run.
func TestRunErrors(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		base := reactortest.FDCount()
		boom := errors.New("boom")
		n := 0
		err := Run(context.Background(), Config{Backend: kind, Loops: 2}, func(*reactor.Loop) error {
			if n++; n == 2 {
				return boom
			}
			return nil
		})
		require.ErrorIs(t, err, boom)
		require.ErrorContains(t, err, "loop 1")

		err = Serve(context.Background(), Config{Backend: kind, Loops: 2}, "unix:"+filepath.Join(t.TempDir(), "s"), func(*reactor.Loop) transports.Factory { return echo.Factory{} })
		require.ErrorIs(t, err, ErrNotShareable)

		// One per CPU (the flags' default) on a UNIX path is one loop.
		ctx0, cancel0 := context.WithCancel(context.Background())
		made := 0
		cfg0 := Config{Backend: kind, Loops: PerCPU, Listening: func(net.Addr, string) { cancel0() }}
		err = Serve(ctx0, cfg0, "unix:"+filepath.Join(t.TempDir(), "s"), func(*reactor.Loop) transports.Factory { made++; return echo.Factory{} })
		require.NoError(t, err)
		require.Equal(t, 1, made)

		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { <-ran; cancel() }()
		err = Run(ctx, Config{Backend: kind}, func(l *reactor.Loop) error { close(ran); return nil })
		require.NoError(t, err)

		// A loop stopping from a callback stops the others.
		first := true
		err = Run(context.Background(), Config{Backend: kind, Loops: 2}, func(l *reactor.Loop) error {
			if !first {
				return nil
			}
			first = false
			return l.Call(l.Stop)
		})
		require.NoError(t, err)
		require.Equal(t, base, reactortest.FDCount(), "descriptors leaked")
	})
}

// Run publishes its loops' counters under ExpvarName, one member per
// running Run keyed by Name ("NAME#2" for a second one), and removes them
// when it returns; the name is published once per process, so Runs in
// sequence and at once never fail or panic.
func TestRunPublishesExpvar(t *testing.T) {
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		type srv struct {
			addr   chan net.Addr
			cancel context.CancelFunc
			err    chan error
		}
		start := func() srv {
			ctx, cancel := context.WithCancel(context.Background())
			s := srv{addr: make(chan net.Addr, 1), cancel: cancel, err: make(chan error, 1)}
			cfg := Config{Name: "xv", Backend: kind, Loops: 2, Expvar: true, Listening: func(a net.Addr, _ string) { s.addr <- a }}
			go func() {
				s.err <- Serve(ctx, cfg, "tcp:0:interface=127.0.0.1", func(*reactor.Loop) transports.Factory { return echo.Factory{} })
			}()
			return s
		}
		vars := func() map[string]struct {
			Total reactor.Stats   `json:"total"`
			Loops []reactor.Stats `json:"loops"`
		} {
			v := expvar.Get(ExpvarName)
			require.NotNil(t, v)
			var m map[string]struct {
				Total reactor.Stats   `json:"total"`
				Loops []reactor.Stats `json:"loops"`
			}
			require.NoError(t, json.Unmarshal([]byte(v.String()), &m))
			return m
		}
		for round := range 2 {
			a, b := start(), start()
			var addr net.Addr
			for _, s := range []srv{a, b} {
				select {
				case ad := <-s.addr:
					if addr == nil {
						addr = ad
					}
				case err := <-s.err:
					if kind == reactor.Uring && errors.Is(err, uring.ErrUnavailable) {
						t.Skip(err)
					}
					t.Fatalf("serve: %v", err)
				}
			}
			c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
			require.NoError(t, err)
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Write([]byte("ping"))
			require.NoError(t, err)
			_, err = io.ReadFull(c, make([]byte, 4))
			require.NoError(t, err)
			require.NoError(t, c.Close())

			m := vars()
			require.Contains(t, m, "xv", "round %d", round)
			require.Contains(t, m, "xv#2", "round %d", round)
			var conns uint64
			for _, k := range []string{"xv", "xv#2"} {
				require.Len(t, m[k].Loops, 2)
				require.Equal(t, kind.String(), m[k].Total.Backend)
				require.Positive(t, m[k].Total.Turns)
				conns += m[k].Total.ConnsTotal
			}
			require.Equal(t, uint64(1), conns, "the one connection, in one server's counters")
			for _, s := range []srv{a, b} {
				s.cancel()
				require.NoError(t, <-s.err)
			}
			require.Empty(t, vars(), "members removed when Run returns")
		}
	})
}

// PinCPUs pins each loop's thread to one of the allowed CPUs, in turn.
func TestRunPinCPUs(t *testing.T) {
	allowed, err := reactor.AllowedCPUs()
	require.NoError(t, err)
	reactortest.Backends(t, func(t *testing.T, kind reactor.BackendKind) {
		var mu sync.Mutex
		var got [][]int
		n := 0
		err := Run(context.Background(), Config{Backend: kind, Loops: 3, PinCPUs: true}, func(l *reactor.Loop) error {
			last := n == 2
			n++
			return l.Call(func() {
				cpus, err := reactor.AllowedCPUs() // on the loop's thread
				require.NoError(t, err)
				mu.Lock()
				got = append(got, cpus)
				mu.Unlock()
				if last {
					l.Stop()
				}
			})
		})
		require.NoError(t, err)
		require.Len(t, got, 3)
		seen := map[int]bool{}
		for _, cpus := range got {
			require.Len(t, cpus, 1, "each loop thread is pinned to one CPU")
			require.Contains(t, allowed, cpus[0])
			seen[cpus[0]] = true
		}
		require.Len(t, seen, min(3, len(allowed)), "loops spread over the allowed CPUs")
	})
}
