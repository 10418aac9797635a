package endpoint

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	gyretls "github.com/gyre-io/gyre/transports/tls"
	"github.com/gyre-io/gyre/transports/unix"
)

// Client is a parsed client description (ParseClient).
type Client struct {
	// Description is the text it was parsed from.
	Description string
	// Kind is "tcp", "unix" or "ssl" (for "ssl" and "tls").
	Kind string
	// Addr is "host:port" for tcp and ssl, the path or "@name" for unix.
	Addr string
	// TCP are the connect options of tcp and ssl.
	TCP tcp.ConnectOptions
	// UNIX are the connect options of unix.
	UNIX unix.ConnectOptions
	// TLS is the client configuration of ssl: ServerName set (hostname,
	// else host), RootCAs from caCertsDir/trustRoots (nil: the system's),
	// the client certificate if one was given.
	TLS *tls.Config
}

// Connect parses description (ParseClient) and starts connecting on loop
// with f (Twisted's clientFromString(...).connect(f)). Errors:
// ErrBadDescription (wrapped, naming the bad part) for a description that
// does not parse or whose files cannot be loaded; then tcp.Connect's,
// unix.Connect's or tls.Connect's. Goroutine-safe.
func Connect(loop *reactor.Loop, description string, f transports.ClientFactory) (transports.Connector, error) {
	c, err := ParseClient(description)
	if err != nil {
		return nil, err
	}
	return c.Connect(loop, f)
}

// ParseClient parses a client description (see Parse for quoting):
//
//	tcp:HOST:PORT  or  tcp:host=HOST:port=PORT[:timeout=T][:bindAddress=IP[:PORT]]
//	unix:PATH      or  unix:path=PATH[:timeout=T]          (PATH may be @NAME)
//	tls:HOST:PORT[:timeout=…][:bindAddress=…][:hostname=NAME][:trustRoots=PATH]
//	    [:caCertsDir=DIR][:certificate=CERT.pem][:privateKey=KEY.pem]
//	ssl:…          (the same as tls; Twisted's certKey is accepted for certificate)
//
// T is seconds (Twisted's form, e.g. 30) or a Go duration (1.5s); the
// default is 30 s. hostname is the name sent in SNI and checked against
// the server's certificate (default: host). trustRoots is a PEM file or a
// directory of .pem files, caCertsDir a directory of .pem files (as in
// Twisted); without either the system's roots are used. Unlike Twisted's
// ssl: endpoint without hostname, the certificate is always verified.
func ParseClient(description string) (*Client, error) {
	args, kw, err := Parse(description)
	if err != nil {
		return nil, err
	}
	c := &Client{Description: description, Kind: strings.ToLower(args[0])}
	switch c.Kind {
	case "tcp":
		p, err := bind(description, args, kw, "host", "port", "timeout", "bindAddress")
		if err != nil {
			return nil, err
		}
		return c, c.tcp(p)
	case "ssl", "tls":
		c.Kind = "ssl"
		p, err := bind(description, args, kw, "host", "port", "timeout", "bindAddress",
			"hostname", "trustRoots", "caCertsDir", "certificate", "certKey", "privateKey")
		if err != nil {
			return nil, err
		}
		if err := c.tcp(p); err != nil {
			return nil, err
		}
		return c, c.ssl(p)
	case "unix":
		p, err := bind(description, args, kw, "path", "timeout")
		if err != nil {
			return nil, err
		}
		if c.Addr, err = p.need(c.Kind, "path"); err != nil {
			return nil, err
		}
		c.UNIX.Timeout, err = p.timeout()
		return c, err
	}
	return nil, badf(description, "unknown endpoint type %q (client types: tcp, unix, tls, ssl)", args[0])
}

func (c *Client) tcp(p params) error {
	host, err := p.need(c.Kind, "host")
	if err != nil {
		return err
	}
	port, err := p.need(c.Kind, "port")
	if err != nil {
		return err
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return badf(c.Description, "port %q is not a number from 1 to 65535", port)
	}
	c.Addr = net.JoinHostPort(strings.Trim(host, "[]"), port)
	if c.TCP.Timeout, err = p.timeout(); err != nil {
		return err
	}
	if b, ok := p.get("bindAddress"); ok {
		ap, err := netip.ParseAddrPort(b)
		if err != nil {
			a, err2 := netip.ParseAddr(strings.Trim(b, "[]"))
			if err2 != nil {
				return badf(c.Description, "bindAddress %q is not IP or IP:PORT", b)
			}
			ap = netip.AddrPortFrom(a, 0)
		}
		c.TCP.BindAddr = ap
	}
	return nil
}

func (c *Client) ssl(p params) error {
	host, _ := p.get("host")
	cfg := &tls.Config{ServerName: strings.Trim(host, "[]")}
	if h, ok := p.get("hostname"); ok && h != "" {
		cfg.ServerName = h
	}
	var pool *x509.CertPool
	add := func(what, path string, dirOnly bool) error {
		if pool == nil {
			pool = x509.NewCertPool()
		}
		n, err := loadRoots(pool, path, dirOnly)
		if err != nil {
			return fileErr(c.Description, what, err)
		}
		if n == 0 {
			return fileErr(c.Description, what+" "+path, errNoPEM)
		}
		return nil
	}
	if v, ok := p.get("trustRoots"); ok {
		if err := add("trustRoots", v, false); err != nil {
			return err
		}
	}
	if v, ok := p.get("caCertsDir"); ok {
		if err := add("caCertsDir", v, true); err != nil {
			return err
		}
	}
	cfg.RootCAs = pool
	certFile, hasCert := p.get("certificate")
	certParam, keyParam := "certificate", "privateKey"
	if v, ok := p.get("certKey"); ok {
		if hasCert {
			return badf(c.Description, "certificate and certKey name the same thing; give one")
		}
		certFile, hasCert, certParam = v, true, "certKey"
	}
	keyFile, hasKey := p.get("privateKey")
	if hasKey && !hasCert {
		return badf(c.Description, "privateKey without certificate")
	}
	if hasCert {
		if !hasKey {
			keyFile, keyParam = certFile, certParam
		}
		cert, err := loadKeyPair(c.Description, certParam, certFile, keyParam, keyFile)
		if err != nil {
			return err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	c.TLS = cfg
	return nil
}

// errNoPEM: a trustRoots or caCertsDir file holds no PEM certificate.
var errNoPEM = errors.New("holds no PEM certificate")

// loadRoots adds the certificates of a PEM file, or of every *.pem file in
// a directory, to pool and returns how many files added some.
func loadRoots(pool *x509.CertPool, path string, dirOnly bool) (int, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	files := []string{path}
	if fi.IsDir() {
		files, err = filepath.Glob(filepath.Join(path, "*.pem"))
		if err != nil {
			return 0, err
		}
	} else if dirOnly {
		return 0, fmt.Errorf("%s is not a directory", path)
	}
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return n, err
		}
		if pool.AppendCertsFromPEM(data) {
			n++
		}
	}
	return n, nil
}

func (p params) timeout() (time.Duration, error) {
	v, ok := p.get("timeout")
	if !ok {
		return 0, nil
	}
	if n, err := strconv.ParseUint(v, 10, 31); err == nil && n > 0 {
		return time.Duration(n) * time.Second, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, nil
	}
	return 0, badf(p.desc, "timeout %q is not positive seconds or a duration such as 1.5s", v)
}

// Connect starts connecting on loop with f, as the description says. See
// the package function Connect for the errors. Goroutine-safe; c is only
// read.
func (c *Client) Connect(loop *reactor.Loop, f transports.ClientFactory) (transports.Connector, error) {
	var (
		conn transports.Connector
		err  error
	)
	switch c.Kind {
	case "tcp":
		var tc *tcp.Connector
		if tc, err = tcp.Connect(loop, c.Addr, f, c.TCP); err == nil {
			conn = tc
		}
	case "ssl":
		var tc *tcp.Connector
		if tc, err = gyretls.Connect(loop, c.Addr, f, c.TLS, gyretls.ConnectOptions{ConnectOptions: c.TCP}); err == nil {
			conn = tc
		}
	case "unix":
		var uc *unix.Connector
		if uc, err = unix.Connect(loop, c.Addr, f, c.UNIX); err == nil {
			conn = uc
		}
	default:
		return nil, badf(c.Description, "unknown endpoint type %q", c.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("gyre/endpoint: connect %s: %w", c.Description, err)
	}
	return conn, nil
}
