package gyretls

import (
	ctls "crypto/tls"
	"fmt"
	"net"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
)

// WrapFactory returns a Factory for any stream transport's Listen (tcp.Listen,
// a UNIX listener, …) whose connections run f's protocols over TLS (Twisted's
// TLSMemoryBIOFactory). cfg is the TLS configuration for every connection
// (nil: connections start in plaintext and a protocol may call StartTLS);
// role is normally RoleServer for a listener. A nil protocol from f refuses
// the connection, as without TLS. If f is a transports.FactoryStarter its
// StartFactory/StopFactory are forwarded.
func WrapFactory(f transports.Factory, cfg *ctls.Config, role Role, opts Options) transports.Factory {
	return &factory{f: f, cfg: cfg, role: role, opts: opts}
}

type factory struct {
	f    transports.Factory
	cfg  *ctls.Config
	role Role
	opts Options
}

func (w *factory) BuildProtocol(addr net.Addr) transports.Protocol {
	p := w.f.BuildProtocol(addr)
	if p == nil {
		return nil
	}
	return Wrap(p, w.cfg, w.role, w.opts)
}

func (w *factory) StartFactory() {
	if s, ok := w.f.(transports.FactoryStarter); ok {
		s.StartFactory()
	}
}

func (w *factory) StopFactory() {
	if s, ok := w.f.(transports.FactoryStarter); ok {
		s.StopFactory()
	}
}

// WrapClientFactory is WrapFactory for a client factory (any stream
// transport's Connect); role is normally RoleClient. The client factory's
// StartedConnecting, ClientConnectionFailed and ClientConnectionLost are
// forwarded unchanged (the Lost reason is the one the wrapped protocol got).
// cfg.ServerName is not filled in here (the factory sees only the peer's
// address); Connect does it from the host name.
func WrapClientFactory(f transports.ClientFactory, cfg *ctls.Config, role Role, opts Options) transports.ClientFactory {
	return &clientFactory{factory: factory{f: f, cfg: cfg, role: role, opts: opts}, cf: f}
}

type clientFactory struct {
	factory
	cf transports.ClientFactory
}

func (w *clientFactory) StartedConnecting(c transports.Connector) { w.cf.StartedConnecting(c) }
func (w *clientFactory) ClientConnectionFailed(c transports.Connector, reason error) {
	w.cf.ClientConnectionFailed(c, reason)
}
func (w *clientFactory) ClientConnectionLost(c transports.Connector, reason error) {
	w.cf.ClientConnectionLost(c, reason)
}

// ListenOptions configure Listen: the TCP listener's and the TLS layer's.
type ListenOptions struct {
	tcp.ListenOptions
	Options
}

// ConnectOptions configure Connect: the TCP connector's and the TLS layer's.
type ConnectOptions struct {
	tcp.ConnectOptions
	Options
}

// Listen is tcp.Listen with every accepted connection speaking TLS as the
// server (Twisted's listenSSL): WrapFactory(f, cfg, RoleServer, …) over
// tcp.Listen. Errors: ErrNoConfig for a nil cfg; tcp.Listen's errors.
// Goroutine-safe, as tcp.Listen.
func Listen(loop *reactor.Loop, addr string, f transports.Factory, cfg *ctls.Config, opts ListenOptions) (*tcp.Port, error) {
	if cfg == nil {
		return nil, ErrNoConfig
	}
	return tcp.Listen(loop, addr, WrapFactory(f, cfg, RoleServer, opts.Options), opts.ListenOptions)
}

// Connect is tcp.Connect with the connection speaking TLS as the client
// (Twisted's connectSSL). When cfg.ServerName is empty and
// InsecureSkipVerify is off, a copy of cfg gets the host part of addr as
// ServerName (as tls.Dial does), used for SNI and certificate verification.
// The client factory sees ClientConnectionFailed for a failed TCP connect;
// a failed handshake is a connection that was made and then lost
// (ClientConnectionLost, reason wrapping *HandshakeError). Errors:
// ErrNoConfig; tcp.Connect's errors. Goroutine-safe, as tcp.Connect.
func Connect(loop *reactor.Loop, addr string, f transports.ClientFactory, cfg *ctls.Config, opts ConnectOptions) (*tcp.Connector, error) {
	if cfg == nil {
		return nil, ErrNoConfig
	}
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", tcp.ErrBadAddress, err)
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	return tcp.Connect(loop, addr, WrapClientFactory(f, cfg, RoleClient, opts.Options), opts.ConnectOptions)
}
