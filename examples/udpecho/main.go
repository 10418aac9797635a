// Command udpecho is a datagram echo server on gyre: every datagram goes
// back to its sender, over UDP or a UNIX datagram socket.
//
//	go run ./examples/udpecho -addr 127.0.0.1:7001 [-backend auto|uring|epoll]
//	go run ./examples/udpecho -addr unixgram:/tmp/echo.sock   (or unixgram:@NAME)
//
// Try it with socat - UDP:127.0.0.1:7001, or, for a UNIX datagram socket,
// socat - UNIX-SENDTO:/tmp/echo.sock,bind=/tmp/me.sock (the client must bind
// its own address to get replies: an unnamed sender cannot be answered).
// A stale socket file at PATH is replaced; the file is removed at exit. It
// serves until SIGINT or SIGTERM, then stops cleanly and exits 0.
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
	"strings"
	"syscall"

	"github.com/gyre-io/gyre/examples/internal/serve"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/udp"
	"github.com/gyre-io/gyre/transports/unixgram"
)

// echo sends every datagram back to its sender (UDP: A is netip.AddrPort;
// UNIX: a path). A datagram the send queue cannot take is counted by the
// port (Stats.Refused) and logged, as is one from an unnamed UNIX sender.
type echo[A transports.DatagramAddr] struct {
	t transports.DatagramTransportOf[A]
}

func (e *echo[A]) StartProtocol(t transports.DatagramTransportOf[A]) { e.t = t }
func (e *echo[A]) DatagramReceived(p []byte, addr A) {
	if addr == *new(A) {
		slog.Warn("udpecho: datagram from an unnamed socket: no reply possible")
		return
	}
	if err := e.t.Write(p, addr); err != nil {
		slog.Warn("udpecho: reply not sent", "to", addr, "err", err)
	}
}
func (e *echo[A]) ConnectionRefused() {}
func (e *echo[A]) StopProtocol()      {}

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

// run serves until ctx ends; listening (may be nil) gets the bound
// address ("host:port", or the path or @name without "unixgram:").
func run(ctx context.Context, addr string, kind reactor.BackendKind, listening func(string)) error {
	loop, err := reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true})
	if err != nil {
		return err
	}
	var local string
	if path, ok := strings.CutPrefix(addr, "unixgram:"); ok {
		var p *unixgram.Port
		if p, err = unixgram.Listen(loop, path, &echo[string]{}, unixgram.ListenOptions{RemoveStale: true}); err == nil {
			local = p.LocalAddr()
		}
	} else {
		var p *udp.Port
		if p, err = udp.Listen(loop, addr, &echo[netip.AddrPort]{}, udp.ListenOptions{}); err == nil {
			local = p.LocalAddr().String()
		}
	}
	if err != nil {
		loop.Stop()
		<-loop.Done()
		return err
	}
	slog.Info("udpecho listening", "addr", local, "backend", loop.Backend())
	if listening != nil {
		listening(local)
	}
	err = loop.Run(ctx)
	slog.Info("udpecho stopped")
	return err
}
