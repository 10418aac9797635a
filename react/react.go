// Package react runs a gyre service: it makes one loop, or one per CPU,
// calls the service's set-up on each, runs them until SIGINT or SIGTERM (or
// a context ends), stops them cleanly and returns — Twisted's
// twisted.internet.task.react, plus the frame every server needs, so that no
// program copies it.
//
//	func main() {
//		react.Main("echo", "tcp:7000:interface=127.0.0.1", func(*reactor.Loop) transports.Factory {
//			return echo.Factory{}
//		})
//	}
//
// Main is the whole program: the flags (ParseFlags: -listen DESCRIPTION or
// -addr HOST:PORT|unix:PATH, -backend, -loops, -tls-cert/-tls-key,
// -debug-addr), one log line "NAME listening addr=… backend=…", and the exit
// status (0 after a clean stop, 2 for a bad command line, 1 when start-up
// fails). Serve is Main without flags and exit: it listens on an endpoint
// description (package transports/endpoint) on every loop. Run is the core:
// loops, signals, a debug HTTP server, and any set-up function.
//
// # Many loops
//
// -loops defaults to one loop per CPU (Config.Loops = PerCPU,
// runtime.GOMAXPROCS(0)); each loop is one goroutine locked to its own OS
// thread with its own io_uring ring or epoll instance, and Config.PinCPUs
// pins loop i to a CPU. A TCP or TLS description is listened on by every
// loop with SO_REUSEPORT: the kernel picks a loop for each new connection
// by hashing its addresses, and the connection stays on that loop for its
// whole life. The limits of this design, which a program must respect:
//
//   - No rebalancing. Connections are spread by a hash of their addresses,
//     not by load; a loop that got the busy ones is not relieved, and a
//     change in the loops changes the spread only for new connections. (A
//     socket inherited from systemd is one accept queue that every loop
//     accepts from: whichever loop is awake first takes the connection.)
//   - Per-loop state by default. mk is called once per loop, so whatever
//     it creates is per loop and needs no lock. State that every
//     connection must see (a keyspace, a cache, counters) is shared across
//     loops, hence goroutine-safe: a mutex (resp.NewSharedStore), atomics,
//     or a sharded design where each loop owns a part.
//   - Cross-loop work is a message. Every protocol and transport method is
//     loop-only (the Threading rules in the README); to act on a
//     connection of another loop, send it a closure with that loop's
//     Loop.Call (goroutine-safe; costs a queue entry and, if that loop
//     sleeps, one wake-up). Never touch another loop's transports directly.
//   - A UNIX path, or any description only one socket can bind, gets one
//     loop under PerCPU and is an error (ErrNotShareable) with an explicit
//     n > 1. Datagram servers (transports/udp) run their own loops.
//   - Stop is per program: a signal, ctx, or any loop stopping stops every
//     loop; each drains its own connections (reactor.Config.DrainTimeout).
package react

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/endpoint"
)

// PerCPU as Config.Loops asks for one loop per CPU the program may use
// (runtime.GOMAXPROCS(0)).
const PerCPU = -1

// Config configures Run and Serve. The zero value is a good default: one
// loop on the Auto backend (GYRE_BACKEND is not consulted: ParseFlags made
// it -backend's default), stopped by SIGINT or SIGTERM, no debug server.
type Config struct {
	// Name starts the log lines ("NAME listening …"); default "gyre".
	Name string
	// Backend of every loop; it wins over GYRE_BACKEND (Reactor.IgnoreEnv is
	// set).
	Backend reactor.BackendKind
	// Loops: 0 or 1 for one loop, n for n, PerCPU for one per CPU. Serve
	// listens on every loop: with SO_REUSEPORT for TCP and TLS descriptions
	// (one accept queue per loop, the kernel spreading connections), on the
	// one inherited socket for systemd; a UNIX path cannot be shared: with
	// PerCPU it gets one loop, with an explicit n > 1 it is an error
	// (ErrNotShareable).
	Loops int
	// PinCPUs pins loop i's thread to the i-th CPU the program may run on
	// (reactor.AllowedCPUs, wrapping around when there are more loops than
	// CPUs; reactor.Config.CPUs). Off by default: pinning helps when the
	// loops own the machine, and hurts when other work shares the CPUs.
	PinCPUs bool
	// Reactor is the configuration of each loop; Backend and IgnoreEnv are
	// overwritten from the fields above, Logger defaults to this Logger.
	Reactor reactor.Config
	// DebugAddr, if set, is a HOST:PORT where an HTTP server (net/http, on
	// its own goroutines) serves expvar's JSON at /debug/vars — whatever is
	// published with package expvar, "cmdline" and "memstats" included, and
	// the loops' counters (reactor.Stats) under ExpvarName ("gyre"). It
	// starts before the loops and stops after them.
	DebugAddr string
	// Expvar publishes the loops' counters under ExpvarName even without
	// DebugAddr (for a program serving expvar's handler itself); DebugAddr
	// implies it.
	Expvar bool
	// Signals that stop the loops; nil: SIGINT and SIGTERM. A signal stops
	// cleanly, and Run then returns nil.
	Signals []os.Signal
	// Logger for the few lines Run and Serve log; default slog.Default().
	Logger *slog.Logger
	// Listening, if set, is called by Serve once every loop listens, with
	// the first loop's bound address (the real port when 0 was asked) and
	// the backend in use, on Serve's goroutine (e.g. to write a port file).
	Listening func(addr net.Addr, backend string)
}

func (c *Config) defaults() {
	if c.Name == "" {
		c.Name = "gyre"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Signals == nil {
		c.Signals = []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	}
	if c.Loops == PerCPU {
		c.Loops = runtime.GOMAXPROCS(0)
	}
	if c.Loops <= 0 {
		c.Loops = 1
	}
}

// Run makes cfg.Loops loops, calls setup for each in turn (on Run's
// goroutine, before the loop runs: it may use the goroutine-safe API —
// Listen, Connect, loop.Call — and must hand loop-only work to loop.Call),
// then runs them until ctx is done, one of cfg.Signals arrives, or a loop
// stops (loop.Stop from a callback stops them all), and returns once every
// loop has stopped. It returns nil after such a stop; the first error
// otherwise: a loop that cannot be made (reactor.New's errors, e.g.
// uring.ErrUnavailable), setup's (the loops made so far are stopped first),
// the debug server's listen error, or the loops' own Run errors joined.
// Goroutine-safe; a program usually calls it once.
func Run(ctx context.Context, cfg Config, setup func(loop *reactor.Loop) error) error {
	cfg.defaults()
	return run(ctx, cfg, setup, nil)
}

// run is Run; ready (may be nil) is called after every setup succeeded.
func run(ctx context.Context, cfg Config, setup func(loop *reactor.Loop) error, ready func(loops []*reactor.Loop)) error {
	ctx, stopSignals := signal.NotifyContext(ctx, cfg.Signals...)
	defer stopSignals()

	if cfg.DebugAddr != "" {
		stop, err := serveDebug(cfg.DebugAddr, cfg.Logger, cfg.Name)
		if err != nil {
			return err
		}
		defer stop()
	}

	rc := cfg.Reactor
	rc.Backend, rc.IgnoreEnv = cfg.Backend, true
	if rc.Logger == nil {
		rc.Logger = cfg.Logger
	}
	var cpus []int
	if cfg.PinCPUs {
		var err error
		if cpus, err = reactor.AllowedCPUs(); err != nil {
			return err
		}
	}
	loops := make([]*reactor.Loop, 0, cfg.Loops)
	abandon := func() {
		for _, l := range loops {
			l.Stop()
		}
		for _, l := range loops {
			<-l.Done()
		}
	}
	for i := range cfg.Loops {
		if len(cpus) > 0 {
			rc.CPUs = []int{cpus[i%len(cpus)]}
		}
		l, err := reactor.New(rc)
		if err != nil {
			abandon()
			return err
		}
		loops = append(loops, l)
	}
	if cfg.DebugAddr != "" || cfg.Expvar {
		defer publishLoops(cfg.Name, loops, cfg.Logger)()
	}
	for i, l := range loops {
		if err := setup(l); err != nil {
			abandon()
			if len(loops) > 1 {
				return fmt.Errorf("loop %d: %w", i, err)
			}
			return err
		}
	}
	if ready != nil {
		ready(loops)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(loops))
	var wg sync.WaitGroup
	for i, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Run(ctx)
			cancel() // one loop stopping stops them all
		}()
	}
	wg.Wait()
	cfg.Logger.Info(cfg.Name + " stopped")
	return errors.Join(errs...)
}

// serveDebug starts the HTTP server of Config.DebugAddr; stop closes it.
func serveDebug(addr string, log *slog.Logger, name string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-debug-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/vars", expvar.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // ends with ErrServerClosed at stop
	}()
	log.Info(name+" debug server listening", "debug_addr", ln.Addr().String(), "path", "/debug/vars")
	return func() {
		_ = srv.Close()
		<-done
	}, nil
}

// Serve is Run with a set-up that listens on description (an endpoint
// description: tcp:PORT:interface=HOST, unix:PATH, ssl:…, systemd:…; see
// endpoint.ParseServer) on every loop with the factory mk returns for it,
// then logs one line, "NAME listening addr=ADDR backend=BACKEND loops=N"
// (ADDR is HOST:PORT, or unix:PATH for a UNIX socket), and calls
// cfg.Listening. With several loops a TCP or TLS description gets
// SO_REUSEPORT (reusePort=1) and every loop binds the port the first one
// got; a UNIX path gets one loop under PerCPU and is an error
// (ErrNotShareable) with an explicit n > 1. Errors: as Run, and
// endpoint.ErrBadDescription, the listen errors of endpoint.Listen.
func Serve(ctx context.Context, cfg Config, description string, mk func(loop *reactor.Loop) transports.Factory) error {
	s, err := endpoint.ParseServer(description)
	if err != nil {
		return err
	}
	if cfg.Loops == PerCPU && !s.Shareable() && !reusable(s.Kind) {
		cfg.Loops = 1 // one per CPU, where only one can listen
	}
	cfg.defaults()
	if cfg.Loops > 1 && !s.Shareable() {
		if !reusable(s.Kind) {
			return fmt.Errorf("%w: %s with %d loops (use one loop, or the default of one per CPU, which gives it one)", ErrNotShareable, description, cfg.Loops)
		}
		s.TCP.ReusePort = true
	}
	var first net.Addr
	setup := func(loop *reactor.Loop) error {
		srv := s
		if first != nil {
			srv = s.WithPort(first)
		}
		p, err := srv.Listen(loop, mk(loop))
		if err != nil {
			return err
		}
		if first == nil {
			first = p.Addr()
		}
		return nil
	}
	return run(ctx, cfg, setup, func(loops []*reactor.Loop) {
		be := loops[0].Backend()
		cfg.Logger.Info(cfg.Name+" listening", "addr", addrString(first), "backend", be, "loops", len(loops))
		if cfg.Listening != nil {
			cfg.Listening(first, be)
		}
	})
}

// reusable reports whether a description of this kind can be bound by every
// loop with SO_REUSEPORT.
func reusable(kind string) bool {
	switch kind {
	case "tcp", "tcp6", "ssl":
		return true
	}
	return false
}

// ErrNotShareable is returned by Serve for a description several loops
// cannot listen on at once (a UNIX path: it cannot be bound twice).
var ErrNotShareable = errors.New("gyre/react: endpoint cannot be shared by several loops")

// addrString is a in -addr's form: HOST:PORT, or unix:PATH.
func addrString(a net.Addr) string {
	if a.Network() == "unix" {
		return "unix:" + a.String()
	}
	return a.String()
}
