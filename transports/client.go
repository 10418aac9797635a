package transports

import (
	"context"
	"fmt"
	"net"
)

// ClientFactoryBase is a ClientFactory to embed (Twisted's
// protocol.ClientFactory): StartedConnecting, ClientConnectionFailed and
// ClientConnectionLost do nothing, and BuildProtocol calls Build. A type that
// embeds it overrides only the methods it cares about.
//
// The zero value refuses every connection (Build is nil). Methods have value
// receivers, so both S and *S implement ClientFactory when S embeds a
// ClientFactoryBase.
type ClientFactoryBase struct {
	// Build makes the protocol for a connection to addr; nil, or a nil
	// result, refuses the connection (the connector then reports
	// ClientConnectionFailed).
	Build func(addr net.Addr) Protocol
}

var _ ClientFactory = ClientFactoryBase{}

// BuildProtocol calls Build (nil when Build is nil).
func (b ClientFactoryBase) BuildProtocol(addr net.Addr) Protocol {
	if b.Build == nil {
		return nil
	}
	return b.Build(addr)
}

// StartedConnecting does nothing.
func (ClientFactoryBase) StartedConnecting(Connector) {}

// ClientConnectionFailed does nothing.
func (ClientFactoryBase) ClientConnectionFailed(Connector, error) {}

// ClientConnectionLost does nothing.
func (ClientFactoryBase) ClientConnectionLost(Connector, error) {}

// ClientFactoryFunc adapts a function to ClientFactory: BuildProtocol calls
// it, and the three notifications do nothing. To learn whether the attempt
// succeeded, use ConnectProtocol or embed ClientFactoryBase and override
// ClientConnectionFailed.
type ClientFactoryFunc func(addr net.Addr) Protocol

var _ ClientFactory = ClientFactoryFunc(nil)

// BuildProtocol calls f.
func (f ClientFactoryFunc) BuildProtocol(addr net.Addr) Protocol { return f(addr) }

// StartedConnecting does nothing.
func (ClientFactoryFunc) StartedConnecting(Connector) {}

// ClientConnectionFailed does nothing.
func (ClientFactoryFunc) ClientConnectionFailed(Connector, error) {}

// ClientConnectionLost does nothing.
func (ClientFactoryFunc) ClientConnectionLost(Connector, error) {}

// ConnectProtocol connects the one protocol p to addr over network ("tcp":
// r.ConnectTCP, "unix": r.ConnectUNIX) and reports the outcome to done
// (Twisted's endpoints.connectProtocol, with a callback for the Deferred and a
// context for its cancel):
//
//   - success: done(t, nil) right after p.ConnectionMade(t) returned; the
//     connection then belongs to p (later cancellation of ctx does not touch
//     it, as with net.Dialer.DialContext);
//   - failure: done(nil, reason), reason as the connector gave it to
//     ClientConnectionFailed (refused, timed out, resolution failed…);
//   - ctx done first: the attempt is stopped (Connector.Disconnect) and
//     done(nil, ctx.Err()) is called.
//
// done is called exactly once, on r's goroutine, never inside ConnectProtocol;
// p is called only after a success (never when done reports an error). opts
// are passed to the connect method as they are (nil: defaults).
//
// The returned Connector is the attempt's controller (Disconnect drops the
// connection later). When ConnectProtocol returns an error nothing was
// started and done is never called: ctx already done (ctx.Err()), an unknown
// network (ErrUnsupportedNetwork), or the connect method's error.
//
// Call it on r's goroutine (from a callback or a function passed to r.Call),
// like every factory method. Cancellation reaches the loop through r.Call;
// if the loop has stopped by then, the loop's own shutdown ends the attempt
// and done reports that reason instead.
func ConnectProtocol(ctx context.Context, r Reactor, network, addr string, p Protocol, opts any, done func(t Transport, err error)) (Connector, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var connect func(string, ClientFactory, any) (Connector, error)
	switch network {
	case "tcp":
		connect = r.ConnectTCP
	case "unix":
		connect = r.ConnectUNIX
	default:
		return nil, fmt.Errorf("%w: ConnectProtocol knows %q and %q, not %q", ErrUnsupportedNetwork, "tcp", "unix", network)
	}
	a := &oneShot{ctx: ctx, p: p, done: done}
	a.half, _ = p.(HalfCloseableProtocol)
	a.stop = context.AfterFunc(ctx, func() { _ = r.Call(a.cancelled) })
	a.starting = true
	c, err := connect(addr, a, opts)
	a.starting = false
	if err != nil {
		a.stop()
		a.finished = true // a cancellation already queued does nothing
		return nil, err
	}
	if a.conn == nil {
		a.conn = c
	}
	if a.early != nil { // the connector reported inside connect: report on the next turn
		early := a.early
		a.early = nil
		r.CallLater(0, early)
	}
	return c, nil
}

// oneShot is ConnectProtocol's client factory. Everything runs on the loop.
type oneShot struct {
	ctx  context.Context
	p    Protocol
	half HalfCloseableProtocol
	done func(Transport, error)
	stop func() bool // unregisters the context callback

	conn     Connector
	starting bool   // inside the connect call
	early    func() // done's call, when the outcome came while starting
	built    bool
	finished bool // done was called, or ConnectProtocol failed
	made     bool // p.ConnectionMade ran: forward everything to p
}

func (a *oneShot) finish(t Transport, err error) {
	a.finished = true
	a.stop()
	if a.starting {
		a.early = func() { a.done(t, err) }
		return
	}
	a.done(t, err)
}

// cancelled runs on the loop after ctx is done.
func (a *oneShot) cancelled() {
	if a.finished {
		return
	}
	a.finished = true
	if a.conn != nil {
		a.conn.Disconnect()
	}
	a.done(nil, a.ctx.Err())
}

func (a *oneShot) StartedConnecting(c Connector) { a.conn = c }

func (a *oneShot) BuildProtocol(net.Addr) Protocol {
	if a.finished || a.built {
		return nil // cancelled before the connection came up: refuse it
	}
	a.built = true
	if a.half != nil {
		return halfWrapper{a}
	}
	return wrapper{a}
}

func (a *oneShot) ClientConnectionFailed(_ Connector, reason error) {
	if !a.finished {
		a.finish(nil, reason)
	}
}

func (a *oneShot) ClientConnectionLost(Connector, error) {}

// wrapper stands for p until ConnectionMade, so done can follow it (Twisted's
// _WrappingProtocol); halfWrapper also forwards the half-close callbacks.
type wrapper struct{ a *oneShot }

func (w wrapper) ConnectionMade(t Transport) {
	a := w.a
	if a.finished { // cancelled between BuildProtocol and ConnectionMade
		_ = t.Abort()
		return
	}
	a.made = true
	defer a.finish(t, nil) // even if p panics: the transport then drops the connection
	a.p.ConnectionMade(t)
}

func (w wrapper) DataReceived(b []byte) {
	if w.a.made {
		w.a.p.DataReceived(b)
	}
}

func (w wrapper) ConnectionLost(reason error) {
	if w.a.made {
		w.a.p.ConnectionLost(reason)
	}
}

type halfWrapper struct{ a *oneShot }

func (w halfWrapper) ConnectionMade(t Transport) { wrapper(w).ConnectionMade(t) }
func (w halfWrapper) DataReceived(b []byte)      { wrapper(w).DataReceived(b) }
func (w halfWrapper) ConnectionLost(err error)   { wrapper(w).ConnectionLost(err) }

func (w halfWrapper) ReadConnectionLost() {
	if w.a.made {
		w.a.half.ReadConnectionLost()
	}
}

func (w halfWrapper) WriteConnectionLost() {
	if w.a.made {
		w.a.half.WriteConnectionLost()
	}
}
