package endpoint

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	gyretls "github.com/gyre-io/gyre/transports/tls"
	"github.com/gyre-io/gyre/transports/unix"
)

// Server is a parsed server description (ParseServer). Its fields may be
// adjusted before Listen (a runner sets TCP.ReusePort to listen on the same
// address from several loops).
type Server struct {
	// Description is the text it was parsed from.
	Description string
	// Kind is the endpoint type, lower case: "tcp", "tcp6", "unix", "ssl"
	// (for "ssl" and "tls") or "systemd".
	Kind string
	// Addr is what tcp.Listen or unix.Listen is given: "host:port" for
	// tcp, tcp6 and ssl, the path or "@name" for unix.
	Addr string
	// TCP are the listener options of tcp, tcp6 and ssl.
	TCP tcp.ListenOptions
	// UNIX are the listener options of unix.
	UNIX unix.ListenOptions
	// TLS is the server configuration of ssl (certificate loaded).
	TLS *tls.Config
	// Systemd selects the inherited descriptor of systemd.
	Systemd SystemdSelector
}

// SystemdSelector names one descriptor passed by socket activation: by
// Index (0 is descriptor 3) or, when Name is set, by its LISTEN_FDNAMES
// name; Domain ("INET", "INET6" or "UNIX") must be its address family.
type SystemdSelector struct {
	Domain string
	Index  int
	Name   string
}

// Listen parses description (ParseServer) and listens on loop with f
// (Twisted's serverFromString(...).listen(f)). Errors: ErrBadDescription
// (wrapped, naming the bad part) for a description that does not parse or
// whose files cannot be loaded; then the underlying Listen's errors
// (tcp.Listen, unix.Listen, stream.AdoptStreamPort), and ErrNoSystemdSocket
// for a systemd descriptor that was not passed. Goroutine-safe, as the
// Listen functions it calls.
func Listen(loop *reactor.Loop, description string, f transports.Factory) (transports.Port, error) {
	s, err := ParseServer(description)
	if err != nil {
		return nil, err
	}
	return s.Listen(loop, f)
}

// ParseServer parses a server description. The first argument is the type
// (any case), the others are positional or key=value parameters (see Parse
// for quoting):
//
//	tcp:PORT[:interface=HOST][:backlog=N][:reusePort=BOOL]
//	tcp6:PORT[:interface=HOST6][:backlog=N][:reusePort=BOOL]
//	unix:PATH[:mode=OCTAL][:backlog=N][:removeStale=BOOL]   (PATH may be @NAME, abstract)
//	ssl:PORT:privateKey=KEY.pem[:certKey=CERT.pem][:extraCertChain=CHAIN.pem][:interface=…][:backlog=…][:reusePort=…]
//	tls:…  (the same as ssl)
//	systemd:domain=INET|INET6|UNIX:index=N   or   systemd:domain=…:name=NAME
//
// Positional order: tcp and ssl port, interface, backlog; unix address,
// mode, backlog. Differences from Twisted, on purpose: tcp's default
// interface is every address, dual stack (Twisted: IPv4 only); tcp6's is
// "::"; the backlog defaults to 511 (Twisted: 50); unix's mode defaults to
// the kernel's (0777 less the umask; Twisted: 0666), and Twisted's lockfile
// is replaced by removeStale (default true: a socket file with no listener
// behind it is replaced, as Twisted's lockfile does by default; a live
// listener or a file that is not a socket is never removed; the file is
// removed when the port closes). certKey defaults to privateKey (one PEM
// file holding both), as in Twisted; sslmethod and dhParameters are not
// supported (Go's crypto/tls picks versions and groups). BOOL is 1/0,
// true/false, yes/no.
func ParseServer(description string) (*Server, error) {
	args, kw, err := Parse(description)
	if err != nil {
		return nil, err
	}
	s := &Server{Description: description, Kind: strings.ToLower(args[0])}
	switch s.Kind {
	case "tcp", "tcp6":
		p, err := bind(description, args, kw, "port", "interface", "backlog", "reusePort")
		if err != nil {
			return nil, err
		}
		return s, s.tcp(p)
	case "ssl", "tls":
		s.Kind = "ssl"
		p, err := bind(description, args, kw, "port", "interface", "backlog", "reusePort", "privateKey", "certKey", "extraCertChain")
		if err != nil {
			return nil, err
		}
		if err := s.tcp(p); err != nil {
			return nil, err
		}
		return s, s.ssl(p)
	case "unix":
		p, err := bind(description, args, kw, "address", "mode", "backlog", "removeStale")
		if err != nil {
			return nil, err
		}
		return s, s.unix(p)
	case "systemd":
		p, err := bind(description, args, kw, "domain", "index", "name")
		if err != nil {
			return nil, err
		}
		return s, s.systemd(p)
	}
	return nil, badf(description, "unknown endpoint type %q (server types: tcp, tcp6, unix, ssl, tls, systemd)", args[0])
}

func (s *Server) tcp(p params) error {
	port, err := p.need(s.Kind, "port")
	if err != nil {
		return err
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n > 65535 {
		return badf(s.Description, "port %q is not a number from 0 to 65535", port)
	}
	host, _ := p.get("interface")
	if s.Kind == "tcp6" {
		if host == "" {
			host = "::"
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Is4In6() {
			return badf(s.Description, "tcp6 interface %q is not an IPv6 address", host)
		}
	} else {
		host = strings.Trim(host, "[]") // tcp.Listen resolves a host name
	}
	s.Addr = net.JoinHostPort(host, port)
	if s.TCP.Backlog, err = p.backlog(); err != nil {
		return err
	}
	s.TCP.ReusePort, err = p.boolean("reusePort", false)
	return err
}

func (s *Server) ssl(p params) error {
	keyFile, err := p.need(s.Kind, "privateKey")
	if err != nil {
		return err
	}
	certFile, certParam := keyFile, "privateKey"
	if v, ok := p.get("certKey"); ok && v != "" {
		certFile, certParam = v, "certKey"
	}
	cert, err := loadKeyPair(s.Description, certParam, certFile, "privateKey", keyFile)
	if err != nil {
		return err
	}
	if chain, ok := p.get("extraCertChain"); ok && chain != "" {
		ders, err := pemCerts(chain)
		if err != nil {
			return fileErr(s.Description, "extraCertChain", err)
		}
		cert.Certificate = append(cert.Certificate, ders...)
	}
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	return nil
}

func (s *Server) unix(p params) error {
	path, err := p.need(s.Kind, "address")
	if err != nil {
		return err
	}
	s.Addr = path
	if m, ok := p.get("mode"); ok {
		n, err := strconv.ParseUint(m, 8, 32)
		if err != nil || n == 0 || n > 0o777 {
			return badf(s.Description, "mode %q is not octal permission bits (e.g. 660)", m)
		}
		s.UNIX.Mode = os.FileMode(n)
	}
	if s.UNIX.Backlog, err = p.backlog(); err != nil {
		return err
	}
	s.UNIX.RemoveStale, err = p.boolean("removeStale", true)
	return err
}

func (s *Server) systemd(p params) error {
	d, err := p.need(s.Kind, "domain")
	if err != nil {
		return err
	}
	switch d = strings.ToUpper(d); d {
	case "INET", "INET6", "UNIX":
	default:
		return badf(s.Description, "domain %q is not INET, INET6 or UNIX", d)
	}
	s.Systemd.Domain = d
	idx, hasIdx := p.get("index")
	name, hasName := p.get("name")
	if hasIdx == hasName {
		return badf(s.Description, "systemd needs exactly one of index and name")
	}
	if hasName {
		if name == "" {
			return badf(s.Description, "empty systemd name")
		}
		s.Systemd.Name = name
		return nil
	}
	n, err := strconv.Atoi(idx)
	if err != nil || n < 0 {
		return badf(s.Description, "systemd index %q is not a number from 0", idx)
	}
	s.Systemd.Index = n
	return nil
}

func (p params) backlog() (int, error) {
	v, ok := p.get("backlog")
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, badf(p.desc, "backlog %q is not a positive number", v)
	}
	return n, nil
}

func (p params) boolean(name string, def bool) (bool, error) {
	v, ok := p.get(name)
	if !ok {
		return def, nil
	}
	switch strings.ToLower(v) {
	case "1", "true", "yes":
		return true, nil
	case "0", "false", "no":
		return false, nil
	}
	return false, badf(p.desc, "%s %q is not a boolean (1/0, true/false, yes/no)", name, v)
}

// pemCerts reads the DER certificates of a PEM file.
func pemCerts(file string) ([][]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var ders [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			ders = append(ders, b.Bytes)
		}
	}
	if len(ders) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return ders, nil
}

// Listen listens on loop with f, as the description says. See the package
// function Listen for the errors. Goroutine-safe; s is only read.
func (s *Server) Listen(loop *reactor.Loop, f transports.Factory) (transports.Port, error) {
	var p transports.Port
	var err error
	switch s.Kind {
	case "tcp", "tcp6":
		var tp *tcp.Port
		tp, err = tcp.Listen(loop, s.Addr, f, s.TCP)
		if err == nil {
			p = tp
		}
	case "ssl":
		var tp *tcp.Port
		tp, err = gyretls.Listen(loop, s.Addr, f, s.TLS, gyretls.ListenOptions{ListenOptions: s.TCP})
		if err == nil {
			p = tp
		}
	case "unix":
		var up *unix.Port
		up, err = unix.Listen(loop, s.Addr, f, s.UNIX)
		if err == nil {
			p = up
		}
	case "systemd":
		p, err = listenSystemd(loop, s.Systemd, f)
	default:
		return nil, badf(s.Description, "unknown endpoint type %q", s.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("gyre/endpoint: listen %s: %w", s.Description, err)
	}
	return p, nil
}

// Shareable reports whether several loops can each Listen on s: TCP kinds
// with TCP.ReusePort set (the kernel spreads connections over their accept
// queues; with port 0 the second and later loops must be given the first's
// port, see WithPort), and systemd, whose inherited socket each loop adopts
// (one accept queue shared). A UNIX path cannot be bound twice.
func (s *Server) Shareable() bool {
	switch s.Kind {
	case "tcp", "tcp6", "ssl":
		return s.TCP.ReusePort
	case "systemd":
		return true
	}
	return false
}

// WithPort returns a copy of s listening on the port of addr (a
// *net.TCPAddr, e.g. the first loop's Port.Addr()) instead of s's; other
// kinds are returned unchanged.
func (s *Server) WithPort(addr net.Addr) *Server {
	c := *s
	ta, ok := addr.(*net.TCPAddr)
	if !ok || (s.Kind != "tcp" && s.Kind != "tcp6" && s.Kind != "ssl") {
		return &c
	}
	host, _, _ := net.SplitHostPort(s.Addr)
	c.Addr = net.JoinHostPort(host, strconv.Itoa(ta.Port))
	return &c
}
