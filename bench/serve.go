package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/gyre-io/gyre/bench/internal/gnetsrv"
	"github.com/gyre-io/gyre/bench/internal/gyresrv"
	"github.com/gyre-io/gyre/bench/internal/netsrv"
	"github.com/gyre-io/gyre/reactor"
)

// impls are the server implementations `serve -impl` knows.
var impls = []string{"gyre-uring", "gyre-epoll", "net", "gnet"}

// serve runs one server until ctx is done; ready gets the bound address.
func serve(ctx context.Context, proto, impl, addr string, loops int, cfg *tls.Config, ready func(string)) error {
	switch proto {
	case "echo", "resp", "http":
	case "udpecho":
		if impl == "gnet" {
			return fmt.Errorf("-proto udpecho: no gnet server (gyre-uring, gyre-epoll or net)")
		}
	default:
		return fmt.Errorf("unknown -proto %q (want echo, resp, http or udpecho)", proto)
	}
	readyAddr := func(a net.Addr) { ready(a.String()) }
	switch impl {
	case "gyre-uring":
		return gyresrv.ServeTLS(ctx, reactor.Uring, proto, addr, loops, cfg, readyAddr)
	case "gyre-epoll":
		return gyresrv.ServeTLS(ctx, reactor.Epoll, proto, addr, loops, cfg, readyAddr)
	case "net":
		return netsrv.ServeTLS(ctx, proto, addr, cfg, readyAddr)
	case "gnet":
		if cfg != nil {
			return errors.New("gnet: no TLS")
		}
		return gnetsrv.Serve(ctx, proto, addr, loops, func() { ready(addr) })
	}
	return fmt.Errorf("unknown -impl %q (want one of %v)", impl, impls)
}

func serveMain(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	proto := fs.String("proto", "echo", "protocol: echo, resp, http or udpecho (UDP echo)")
	impl := fs.String("impl", "gyre-uring", "implementation: gyre-uring, gyre-epoll, net or gnet")
	addr := fs.String("addr", "127.0.0.1:7000", "listen address HOST:PORT")
	loops := fs.Int("loops", 1, "event loops (gyre: one ring each, SO_REUSEPORT listeners; gnet: event loops; net: ignored)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole serve run to this file")
	tlsCert := fs.String("tls-cert", "", "serve TLS with this PEM certificate chain (with -tls-key; not for gnet)")
	tlsKey := fs.String("tls-key", "", "PEM private key for -tls-cert")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h: usage printed, as asked
		}
		return 2
	}
	var cfg *tls.Config
	if *tlsCert != "" || *tlsKey != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench serve: %v\n", err)
			return 2
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench serve: %v\n", err)
			return 1
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "bench serve: %v\n", err)
			return 1
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	if *loops < 1 {
		fmt.Fprintln(os.Stderr, "bench serve: -loops must be at least 1")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := serve(ctx, *proto, *impl, *addr, *loops, cfg, func(a string) {
		fmt.Printf("READY %s\n", a)
		fmt.Fprintf(os.Stderr, "bench serve: %s %s listening on %s (loops %d)\n", *impl, *proto, a, *loops)
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench serve: %v\n", err)
		return 1
	}
	return 0
}
