package react

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/endpoint"
	gyretls "github.com/gyre-io/gyre/transports/tls"
)

// Flags is a server's command line (ParseFlags).
type Flags struct {
	// Listen is the endpoint description of -listen, or "" when -addr was
	// given instead (or neither: then Addr holds the default).
	Listen string
	// Addr is -addr: HOST:PORT, unix:PATH or unix:@NAME.
	Addr string
	// Backend is -backend; its default is GYRE_BACKEND, else auto.
	Backend reactor.BackendKind
	// Loops is -loops N, or PerCPU (one loop per CPU) when it is 0 or not
	// given (Config.Loops says what a UNIX path gets).
	Loops int
	// TLSCert and TLSKey (-tls-cert, -tls-key: PEM files, both or neither)
	// make every connection speak TLS (transports/tls).
	TLSCert, TLSKey string
	// DebugAddr is -debug-addr (Config.DebugAddr).
	DebugAddr string
}

// Description is the endpoint description to listen on: Listen, else Addr
// in endpoint syntax (AddrDescription).
func (f Flags) Description() string {
	if f.Listen != "" {
		return f.Listen
	}
	return AddrDescription(f.Addr)
}

// AddrDescription turns the short form of -addr into an endpoint
// description: unix:PATH (or unix:@NAME) into "unix:"+endpoint.Quote(PATH),
// HOST:PORT into "tcp:PORT:interface=HOST" (an empty HOST: every address).
// Anything else is returned as it is, for endpoint.ParseServer to judge.
func AddrDescription(addr string) string {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		return "unix:" + endpoint.Quote(path)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	d := "tcp:" + endpoint.Quote(port)
	if host != "" {
		d += ":interface=" + endpoint.Quote(host)
	}
	return d
}

// ParseFlags parses args (without the program name): -listen DESCRIPTION
// (an endpoint description; default defaultListen), or its short form
// -addr HOST:PORT|unix:PATH (not both); -backend auto|uring|epoll, whose
// default is GYRE_BACKEND as read by getenv, else auto — so the variable is
// honoured unless -backend is given; -loops N (default 0: one per CPU);
// -tls-cert/-tls-key; -debug-addr HOST:PORT. Errors: an unknown backend,
// from the flag or the variable, matches reactor.ErrUnknownBackend and names
// the value; a -listen description that does not parse matches
// endpoint.ErrBadDescription; flag errors and usage go to out (-h gives
// flag.ErrHelp).
func ParseFlags(name, defaultListen string, args []string, getenv func(string) string, out io.Writer) (Flags, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	listen := fs.String("listen", defaultListen, "endpoint to listen on: tcp:PORT[:interface=HOST], tcp6:…, unix:PATH[:mode=660], ssl:PORT:privateKey=KEY:certKey=CERT, systemd:domain=INET:index=0")
	addr := fs.String("addr", "", "short form of -listen: HOST:PORT, unix:PATH or unix:@NAME")
	// No flag default: flag would print it after ours, and the real one
	// depends on the environment. Unset means $GYRE_BACKEND, else auto.
	be := fs.String("backend", "", "backend: auto, uring or epoll (default: $"+reactor.EnvBackend+", else auto)")
	loops := fs.Int("loops", 0, "event loops; 0: one per CPU (TCP and TLS listeners use SO_REUSEPORT; a UNIX path gets one)")
	tlsCert := fs.String("tls-cert", "", "serve TLS with this PEM certificate chain (needs -tls-key)")
	tlsKey := fs.String("tls-key", "", "PEM private key for -tls-cert")
	debug := fs.String("debug-addr", "", "serve expvar's /debug/vars over HTTP at HOST:PORT")
	if err := fs.Parse(args); err != nil {
		return Flags{}, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return Flags{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["listen"] && set["addr"] {
		return Flags{}, errors.New("-listen and -addr are two forms of the same thing; give one")
	}
	if set["listen"] && *listen == "" {
		_, err := endpoint.ParseServer("")
		return Flags{}, fmt.Errorf("-listen: %w", err)
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return Flags{}, errors.New("-tls-cert and -tls-key go together")
	}
	if *loops < 0 {
		return Flags{}, fmt.Errorf("-loops %d: want 0 (one per CPU) or more", *loops)
	}
	from := ""
	if !set["backend"] {
		*be, from = getenv(reactor.EnvBackend), " (default from "+reactor.EnvBackend+")"
	}
	kind, err := reactor.ParseBackend(*be)
	if err != nil {
		return Flags{}, fmt.Errorf("-backend%s: %w", from, err)
	}
	f := Flags{Backend: kind, Loops: *loops, TLSCert: *tlsCert, TLSKey: *tlsKey, DebugAddr: *debug}
	if set["addr"] {
		f.Addr = *addr
	} else {
		f.Listen = *listen
	}
	if f.Loops == 0 {
		f.Loops = PerCPU
	}
	return f, nil
}

// Config is the Config the flags ask for, named name.
func (f Flags) Config(name string) Config {
	return Config{Name: name, Backend: f.Backend, Loops: f.Loops, DebugAddr: f.DebugAddr}
}

// WithTLS loads a PEM certificate chain and key and returns mk with every
// connection of its factories served over TLS (gyretls.WrapFactory, server
// role, default options). A file that cannot be read is an error naming it
// ("certificate FILE: …", "key FILE: …") and wrapping the cause
// (fs.ErrNotExist, fs.ErrPermission, …); files that do not hold a matching
// PEM certificate and key are an error naming both.
func WithTLS(mk func(loop *reactor.Loop) transports.Factory, certFile, keyFile string) (func(loop *reactor.Loop) transports.Factory, error) {
	return withTLS(mk, certFile, keyFile, "certificate", "key")
}

// withTLS is WithTLS; certName and keyName name the files in errors (the
// flags, for Main).
func withTLS(mk func(loop *reactor.Loop) transports.Factory, certFile, keyFile, certName, keyName string) (func(loop *reactor.Loop) transports.Factory, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", certName, certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", keyName, keyFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s %s / %s %s: %w", certName, certFile, keyName, keyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return func(loop *reactor.Loop) transports.Factory {
		return gyretls.WrapFactory(mk(loop), cfg, gyretls.RoleServer, gyretls.Options{})
	}, nil
}

// Main is a server program: it parses os.Args (ParseFlags, with
// defaultListen as -listen's default), serves (Serve) the factories mk
// returns, over TLS when -tls-cert/-tls-key are given, until SIGINT or
// SIGTERM, and exits: status 0 after a clean stop, 2 for a bad command line
// (flags, an unknown backend, a description that does not parse, TLS given
// twice), 1 when start-up fails (a port in use, no io_uring, a certificate
// or key file that cannot be read or parsed — from -tls-cert/-tls-key or an
// ssl: description's privateKey/certKey/extraCertChain, which the message
// names, as endpoint.ErrFile). Errors are printed to stderr as
// "NAME: error".
func Main(name, defaultListen string, mk func(loop *reactor.Loop) transports.Factory) {
	os.Exit(runMain(name, defaultListen, mk, os.Args[1:], os.Getenv, os.Stderr))
}

func runMain(name, defaultListen string, mk func(loop *reactor.Loop) transports.Factory, args []string, getenv func(string) string, stderr io.Writer) int {
	fl, err := ParseFlags(name, defaultListen, args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = checkDescription(fl)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		if errors.Is(err, endpoint.ErrFile) {
			return 1 // the description is good, a file it names is not
		}
		return 2
	}
	if fl.TLSCert != "" {
		if mk, err = withTLS(mk, fl.TLSCert, fl.TLSKey, "-tls-cert", "-tls-key"); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return 1
		}
	}
	if err := Serve(context.Background(), fl.Config(name), fl.Description(), mk); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// checkDescription rejects, as command-line errors, a description that does
// not parse, several loops on a description only one can listen on (a UNIX
// path: ErrNotShareable), and TLS asked twice (an ssl: description and
// -tls-cert).
func checkDescription(fl Flags) error {
	s, err := endpoint.ParseServer(fl.Description())
	if err != nil {
		if fl.Listen == "" {
			return fmt.Errorf("-addr: %w", err)
		}
		return fmt.Errorf("-listen: %w", err)
	}
	if fl.Loops > 1 && !s.Shareable() && !reusable(s.Kind) {
		return fmt.Errorf("-loops %d with %s: %w; use -loops 1, or leave -loops out (one per CPU gives it one loop)", fl.Loops, fl.Description(), ErrNotShareable)
	}
	if s.Kind == "ssl" && fl.TLSCert != "" {
		return errors.New("-tls-cert with an ssl: description would speak TLS twice; give one")
	}
	return nil
}
