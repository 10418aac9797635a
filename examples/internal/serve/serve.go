// Package serve is the shared frame of gyre's example servers: the -addr,
// -backend and -tls-cert/-tls-key flags, one loop, and a clean stop on SIGINT/SIGTERM (exit 0).
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	gyretls "github.com/gyre-io/gyre/transports/tls"
	"github.com/gyre-io/gyre/transports/unix"
)

// UnixPrefix marks an -addr that is a UNIX socket: unix:PATH, unix:@NAME.
const UnixPrefix = "unix:"

// listen listens on addr: a UNIX stream socket for unix:PATH (a stale
// socket file left by a server that died is replaced; the file is removed
// when the server stops), TCP otherwise.
func listen(loop *reactor.Loop, addr string, f transports.Factory) (transports.Port, error) {
	if path, ok := strings.CutPrefix(addr, UnixPrefix); ok {
		return unix.Listen(loop, path, f, unix.ListenOptions{RemoveStale: true})
	}
	return tcp.Listen(loop, addr, f, tcp.ListenOptions{})
}

// addrString is a in -addr's form (unix:PATH for a UNIX socket).
func addrString(a net.Addr) string {
	if a.Network() == "unix" {
		return UnixPrefix + a.String()
	}
	return a.String()
}

// Options is an example server's command line.
type Options struct {
	// Addr to listen on: HOST:PORT (TCP; port 0: any free port), or
	// unix:PATH or unix:@NAME (a UNIX stream socket at a path, or a Linux
	// abstract name).
	Addr string
	// Backend chosen by -backend; its default is GYRE_BACKEND, else auto.
	Backend reactor.BackendKind
	// TLSCert and TLSKey (-tls-cert, -tls-key: PEM files, both or neither)
	// make the server speak TLS (transports/tls).
	TLSCert, TLSKey string
}

// ParseFlags parses args (without the program name) into Options: -addr
// (default defaultAddr) and -backend auto|uring|epoll, whose default is the
// value of GYRE_BACKEND as read by getenv, else auto — so the variable is
// honoured unless -backend is given. An unknown backend, from the flag or the
// variable, is an error matching reactor.ErrUnknownBackend that names the
// value; flag errors and usage go to out (-h gives flag.ErrHelp).
func ParseFlags(name, defaultAddr string, args []string, getenv func(string) string, out io.Writer) (Options, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", defaultAddr, "listen address: HOST:PORT, unix:PATH or unix:@NAME")
	def, from := "auto", ""
	if v := getenv(reactor.EnvBackend); v != "" {
		def, from = v, " (default from "+reactor.EnvBackend+")"
	}
	be := fs.String("backend", def, "backend: auto, uring or epoll (default: $"+reactor.EnvBackend+", else auto)")
	tlsCert := fs.String("tls-cert", "", "serve TLS with this PEM certificate chain (needs -tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key for -tls-cert")
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return Options{}, errors.New("-tls-cert and -tls-key go together")
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return Options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "backend" })
	kind, err := reactor.ParseBackend(*be)
	if err != nil {
		if !explicit {
			return Options{}, fmt.Errorf("-backend%s: %w", from, err)
		}
		return Options{}, fmt.Errorf("-backend: %w", err)
	}
	return Options{Addr: *addr, Backend: kind, TLSCert: *tlsCert, TLSKey: *tlsKey}, nil
}

// Main parses the command line (see ParseFlags), builds a loop, listens with
// the factory returned by mk, and runs until SIGINT or SIGTERM. It exits the
// process with status 0 after a clean stop, 2 on a bad command line and 1 on
// a start-up error.
func Main(name, defaultAddr string, mk func(loop *reactor.Loop) transports.Factory) {
	opts, err := ParseFlags(name, defaultAddr, os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	if opts.TLSCert != "" {
		mk, err = WithTLS(mk, opts.TLSCert, opts.TLSKey)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			os.Exit(1)
		}
	}
	if err := Run(name, opts.Addr, opts.Backend, mk); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// WithTLS loads a PEM certificate chain and key and returns mk with every
// connection of its factories served over TLS (gyretls.WrapFactory, server
// role, default options). A file that cannot be read or parsed is an error.
func WithTLS(mk func(loop *reactor.Loop) transports.Factory, certFile, keyFile string) (func(loop *reactor.Loop) transports.Factory, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return func(loop *reactor.Loop) transports.Factory {
		return gyretls.WrapFactory(mk(loop), cfg, gyretls.RoleServer, gyretls.Options{})
	}, nil
}

// Run is Main without flag parsing and exiting: it serves addr on a loop of
// the given backend (GYRE_BACKEND is not consulted here; ParseFlags did) until
// SIGINT or SIGTERM, then stops the loop and returns nil after a clean stop.
func Run(name, addr string, kind reactor.BackendKind, mk func(loop *reactor.Loop) transports.Factory) error {
	return run(name, addr, kind, mk, nil)
}

// run is Run; listening, if set, is told the bound address and the backend
// once the signals are caught (tests use it).
func run(name, addr string, kind reactor.BackendKind, mk func(loop *reactor.Loop) transports.Factory, listening func(net.Addr, string)) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	loop, err := reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true})
	if err != nil {
		return err
	}
	port, err := listen(loop, addr, mk(loop))
	if err != nil {
		loop.Stop()
		<-loop.Done()
		return err
	}
	slog.Info(name+" listening", "addr", addrString(port.Addr()), "backend", loop.Backend())
	if listening != nil {
		listening(port.Addr(), loop.Backend())
	}
	err = loop.Run(ctx)
	slog.Info(name + " stopped")
	return err
}
