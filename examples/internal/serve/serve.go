// Package serve is the shared frame of gyre's example servers: the -addr and
// -backend flags, one loop, and a clean stop on SIGINT/SIGTERM (exit 0).
package serve

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
)

// Main parses the flags (with defaultAddr for -addr), builds a loop, listens
// with the factory returned by mk, and runs until SIGINT or SIGTERM. It exits
// the process with status 0 after a clean stop and 1 on a start-up error.
func Main(name, defaultAddr string, mk func(loop *reactor.Loop) transports.Factory) {
	addr := flag.String("addr", defaultAddr, "listen address HOST:PORT")
	be := flag.String("backend", "auto", "backend: auto, uring or epoll")
	flag.Parse()
	kind, err := reactor.ParseBackend(*be)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := Run(name, *addr, kind, mk); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Run is Main without flag parsing and exiting.
func Run(name, addr string, kind reactor.BackendKind, mk func(loop *reactor.Loop) transports.Factory) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	loop, err := reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true})
	if err != nil {
		return err
	}
	port, err := tcp.Listen(loop, addr, mk(loop), tcp.ListenOptions{})
	if err != nil {
		loop.Stop()
		<-loop.Done()
		return err
	}
	slog.Info(name+" listening", "addr", port.Addr().String(), "backend", loop.Backend())
	err = loop.Run(ctx)
	slog.Info(name + " stopped")
	return err
}
