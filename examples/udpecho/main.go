// Command udpecho is a UDP echo server on gyre: every datagram goes back to
// its sender.
//
//	go run ./examples/udpecho -addr 127.0.0.1:7001 [-backend auto|uring|epoll] [-debug-addr HOST:PORT]
//	go run ./examples/udpecho -listen udp:7001:interface=127.0.0.1
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
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/gyre-io/gyre/react"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/endpoint"
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
	fl, err := react.ParseFlags("udpecho", "udp:7001:interface=127.0.0.1", os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	addr := ""
	if err == nil {
		addr, err = udpAddr(fl)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "udpecho: %v\n", err)
		os.Exit(2)
	}
	cfg := fl.Config("udpecho")
	if err := run(context.Background(), cfg, addr, nil); err != nil {
		fmt.Fprintf(os.Stderr, "udpecho: %v\n", err)
		os.Exit(1)
	}
}

// udpAddr is the HOST:PORT to listen on: -addr, or -listen
// udp:PORT[:interface=HOST] parsed by Twisted's rules (endpoint.Parse; the
// endpoint package itself describes stream endpoints only, as Twisted's
// strings do). TLS and several loops are command-line errors here.
func udpAddr(fl react.Flags) (string, error) {
	if fl.TLSCert != "" {
		return "", errors.New("udpecho does not speak TLS (DTLS is not implemented)")
	}
	if fl.Loops != 1 {
		return "", errors.New("udpecho runs one loop")
	}
	if fl.Listen == "" {
		return fl.Addr, nil
	}
	args, kw, err := endpoint.Parse(fl.Listen)
	if err != nil {
		return "", fmt.Errorf("-listen: %w", err)
	}
	port, host := kw["port"], kw["interface"]
	if len(args) > 1 {
		port = args[1]
	}
	delete(kw, "port")
	delete(kw, "interface")
	if strings.ToLower(args[0]) != "udp" || len(args) > 2 || len(kw) > 0 || port == "" {
		return "", fmt.Errorf("-listen %q: udpecho takes udp:PORT[:interface=HOST]: %w", fl.Listen, endpoint.ErrBadDescription)
	}
	return net.JoinHostPort(host, port), nil
}

// run serves addr until SIGINT or SIGTERM (or ctx ends), through the
// public runner (react.Run); listening (may be nil) gets the bound address.
func run(ctx context.Context, cfg react.Config, addr string, listening func(netip.AddrPort)) error {
	return react.Run(ctx, cfg, func(loop *reactor.Loop) error {
		p, err := udp.Listen(loop, addr, &echo{}, udp.ListenOptions{})
		if err != nil {
			return err
		}
		slog.Info("udpecho listening", "addr", p.LocalAddr().String(), "backend", loop.Backend())
		if listening != nil {
			listening(p.LocalAddr())
		}
		return nil
	})
}
