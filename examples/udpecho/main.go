// Command udpecho is a datagram echo server on gyre: every datagram goes
// back to its sender, over UDP or a UNIX datagram socket.
//
//	go run ./examples/udpecho -addr 127.0.0.1:7001 [-backend auto|uring|epoll] [-debug-addr HOST:PORT]
//	go run ./examples/udpecho -listen udp:7001:interface=127.0.0.1
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
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/gyre-io/gyre/react"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/endpoint"
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
	cfg.Loops = 1
	if err := run(context.Background(), cfg, addr, nil); err != nil {
		fmt.Fprintf(os.Stderr, "udpecho: %v\n", err)
		os.Exit(1)
	}
}

// udpAddr is the address to listen on: -addr (HOST:PORT, or
// unixgram:PATH / unixgram:@NAME), or -listen udp:PORT[:interface=HOST] or
// unixgram:PATH parsed by Twisted's rules (endpoint.Parse; the endpoint
// package itself describes stream endpoints only, as Twisted's strings do).
// TLS and several loops are command-line errors here.
func udpAddr(fl react.Flags) (string, error) {
	if fl.TLSCert != "" {
		return "", errors.New("udpecho does not speak TLS (DTLS is not implemented)")
	}
	if fl.Loops != 1 && fl.Loops != react.PerCPU {
		return "", errors.New("udpecho runs one loop (-loops 1)")
	}
	if fl.Listen == "" {
		return fl.Addr, nil
	}
	args, kw, err := endpoint.Parse(fl.Listen)
	if err != nil {
		return "", fmt.Errorf("-listen: %w", err)
	}
	if strings.ToLower(args[0]) == "unixgram" && len(args) == 2 && len(kw) == 0 {
		return "unixgram:" + args[1], nil
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
// public runner (react.Run); listening (may be nil) gets the bound address
// ("host:port", or the path or @name without "unixgram:").
func run(ctx context.Context, cfg react.Config, addr string, listening func(string)) error {
	return react.Run(ctx, cfg, func(loop *reactor.Loop) error {
		var local string
		if path, ok := strings.CutPrefix(addr, "unixgram:"); ok {
			p, err := unixgram.Listen(loop, path, &echo[string]{}, unixgram.ListenOptions{RemoveStale: true})
			if err != nil {
				return err
			}
			local = p.LocalAddr()
		} else {
			p, err := udp.Listen(loop, addr, &echo[netip.AddrPort]{}, udp.ListenOptions{})
			if err != nil {
				return err
			}
			local = p.LocalAddr().String()
		}
		slog.Info("udpecho listening", "addr", local, "backend", loop.Backend())
		if listening != nil {
			listening(local)
		}
		return nil
	})
}
