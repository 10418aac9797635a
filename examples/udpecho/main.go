// Command udpecho is a UDP echo server on gyre: every datagram goes back to
// its sender.
//
//	go run ./examples/udpecho -addr 127.0.0.1:7001 [-backend auto|uring|epoll]
//
// Try it with socat - UDP:127.0.0.1:7001. It serves until SIGINT or SIGTERM,
// then stops cleanly and exits 0. (UNIX datagram sockets, -addr
// unixgram:PATH, are not implemented yet.)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/gyre-io/gyre/examples/internal/serve"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/udp"
)

// echo sends every datagram back to its sender. A datagram the send queue
// cannot take is counted by the port (Stats.Refused) and logged.
type echo struct{ t transports.DatagramTransport }

func (e *echo) StartProtocol(t transports.DatagramTransport) { e.t = t }
func (e *echo) DatagramReceived(p []byte, addr netip.AddrPort) {
	if err := e.t.Write(p, addr); err != nil {
		slog.Warn("udpecho: reply not sent", "to", addr, "err", err)
	}
}
func (e *echo) ConnectionRefused() {}
func (e *echo) StopProtocol()      {}

func main() {
	opts, err := serve.ParseFlags("udpecho", "127.0.0.1:7001", os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "udpecho: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts.Addr, opts.Backend, nil); err != nil {
		fmt.Fprintf(os.Stderr, "udpecho: %v\n", err)
		os.Exit(1)
	}
}

// run serves until ctx ends; listening (may be nil) gets the bound address.
func run(ctx context.Context, addr string, kind reactor.BackendKind, listening func(netip.AddrPort)) error {
	loop, err := reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true})
	if err != nil {
		return err
	}
	p, err := udp.Listen(loop, addr, &echo{}, udp.ListenOptions{})
	if err != nil {
		loop.Stop()
		<-loop.Done()
		return err
	}
	slog.Info("udpecho listening", "addr", p.LocalAddr().String(), "backend", loop.Backend())
	if listening != nil {
		listening(p.LocalAddr())
	}
	err = loop.Run(ctx)
	slog.Info("udpecho stopped")
	return err
}
