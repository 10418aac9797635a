// Package gyresrv holds the bench's gyre servers: echo, RESP (protocols/resp)
// and HTTP "Hello, World!" (protocols/http) on N loops, one backend instance
// (one ring) per loop, each loop with its own SO_REUSEPORT listener.
package gyresrv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/gyre-io/gyre/protocols/http"
	"github.com/gyre-io/gyre/protocols/resp"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/tcp"
	gyretls "github.com/gyre-io/gyre/transports/tls"
	"github.com/gyre-io/gyre/transports/udp"
)

// Hello is the HTTP body.
const Hello = "Hello, World!"

// Echo is the echo protocol: every byte received is written back. On a
// transport that can keep received buffers (transports.BufferKeeper: tcp,
// unix), chunks of at least KeepMin bytes are forwarded without a copy —
// the received buffer itself is queued with WriteOwned and goes back to the
// pool once sent; smaller chunks, and every chunk on other transports
// (TLS), are copied with Write.
type Echo struct {
	t     transports.Transport
	keep  transports.BufferKeeper // nil: copy everything
	owned transports.OwnedWriter
	// KeepMin is the smallest chunk forwarded without a copy (0 means
	// EchoKeepMin; negative: never).
	KeepMin int
}

// EchoKeepMin is Echo's default KeepMin: below it a copy into the write
// queue costs no more than keeping the buffer. Measured on 2026-11-29
// (server CPU per request, 5 interleaved repetitions): forwarding every
// 64 B chunk cost 1.23× (io_uring) and 1.17× (epoll) copying them; at
// 1 KiB it saved no user-space time on io_uring (1.04×, epoll 0.76×); at
// 4 KiB user-space time fell to 0.77× on io_uring, at 64 KiB to 0.64×
// (epoll 0.68×).
const EchoKeepMin = 2 << 10

// ConnectionMade keeps the transport.
func (e *Echo) ConnectionMade(t transports.Transport) {
	e.t = t
	e.keep, _ = t.(transports.BufferKeeper)
	e.owned, _ = t.(transports.OwnedWriter)
	if e.owned == nil || e.KeepMin < 0 {
		e.keep = nil
	}
	if e.KeepMin == 0 {
		e.KeepMin = EchoKeepMin
	}
}

// DataReceived writes p back: forwarded as is if it can be kept, else
// copied.
func (e *Echo) DataReceived(p []byte) {
	if e.keep != nil && len(p) >= e.KeepMin {
		if release, ok := e.keep.KeepReceived(); ok {
			if e.owned.WriteOwned(p, release) == nil {
				return
			}
			release(nil) // not queued: the connection is closing
		}
	}
	_ = e.t.Write(p)
}

// ConnectionLost drops the transport.
func (e *Echo) ConnectionLost(error) { e.t, e.keep, e.owned = nil, nil, nil }

// EchoFactory builds Echo protocols.
var EchoFactory = transports.FactoryFunc(func(net.Addr) transports.Protocol { return &Echo{} })

// Factories returns one factory per loop for proto. RESP loops share one
// store (goroutine-safe when loops > 1).
func Factories(proto string, loops int) ([]transports.Factory, error) {
	fs := make([]transports.Factory, loops)
	switch proto {
	case "echo":
		for i := range fs {
			fs[i] = EchoFactory
		}
	case "resp":
		st := resp.NewStore()
		if loops > 1 {
			st = resp.NewSharedStore()
		}
		f := resp.NewFactory(st, resp.Options{})
		for i := range fs {
			fs[i] = f
		}
	case "http":
		body := []byte(Hello)
		f := http.NewFactory(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write(body)
		}), http.Options{})
		for i := range fs {
			fs[i] = f
		}
	default:
		return nil, fmt.Errorf("gyresrv: unknown protocol %q", proto)
	}
	return fs, nil
}

// UDPEcho is the UDP echo protocol: every datagram goes back to its sender.
type UDPEcho struct{ t transports.DatagramTransport }

// StartProtocol keeps the transport.
func (e *UDPEcho) StartProtocol(t transports.DatagramTransport) { e.t = t }

// DatagramReceived sends p back to from.
func (e *UDPEcho) DatagramReceived(p []byte, from netip.AddrPort) { _ = e.t.Write(p, from) }

// ConnectionRefused is not expected (the socket is not connected).
func (e *UDPEcho) ConnectionRefused() {}

// StopProtocol drops the transport.
func (e *UDPEcho) StopProtocol() { e.t = nil }

// Serve runs proto on addr with loops loops on backend kind until ctx is done.
// proto "udpecho" is UDP echo (one SO_REUSEPORT socket per loop when loops
// > 1).
// With port 0 and several loops, the first loop's port is used for the rest.
// ready, if not nil, is called with the bound address once every listener is
// bound.
func Serve(ctx context.Context, kind reactor.BackendKind, proto, addr string, loops int, ready func(net.Addr)) error {
	return ServeTLS(ctx, kind, proto, addr, loops, nil, ready)
}

// ServeTLS is Serve with every connection speaking TLS (transports/tls) when
// cfg is not nil.
func ServeTLS(ctx context.Context, kind reactor.BackendKind, proto, addr string, loops int, cfg *tls.Config, ready func(net.Addr)) error {
	if loops < 1 {
		loops = 1
	}
	var fs []transports.Factory
	if proto != "udpecho" {
		var err error
		if fs, err = Factories(proto, loops); err != nil {
			return err
		}
	}
	if cfg != nil {
		for i, f := range fs {
			fs[i] = gyretls.WrapFactory(f, cfg, gyretls.RoleServer, gyretls.Options{})
		}
	}
	ls := make([]*reactor.Loop, 0, loops)
	stopAll := func() {
		for _, l := range ls {
			l.Stop()
			<-l.Done()
		}
	}
	var bound net.Addr
	for i := 0; i < loops; i++ {
		l, err := reactor.New(reactor.Config{Backend: kind, IgnoreEnv: true})
		if err != nil {
			stopAll()
			return err
		}
		ls = append(ls, l)
		a := addr
		if bound != nil {
			host, _, _ := net.SplitHostPort(addr)
			_, port, _ := net.SplitHostPort(bound.String())
			a = net.JoinHostPort(host, port)
		}
		var p interface{ Addr() net.Addr }
		if proto == "udpecho" {
			p, err = udp.Listen(l, a, &UDPEcho{}, udp.ListenOptions{ReusePort: loops > 1})
		} else {
			p, err = tcp.Listen(l, a, fs[i], tcp.ListenOptions{ReusePort: loops > 1})
		}
		if err != nil {
			stopAll()
			return err
		}
		if bound == nil {
			bound = p.Addr()
		}
	}
	if ready != nil {
		ready(bound)
	}
	errs := make([]error, loops)
	var wg sync.WaitGroup
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Run(ctx)
		}()
	}
	wg.Wait()
	err := errors.Join(errs...)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
