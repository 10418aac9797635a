// Package policies holds Twisted's connection policies
// (twisted.protocols.policies) for gyre: a wrapping factory/protocol pair that
// sees every byte read and written, an idle timeout, bandwidth and connection
// throttling, a total-connections limit with an optional overflow protocol, and
// a per-peer limit.
//
// # Shape
//
// A WrappingFactory builds a ProtocolWrapper around each protocol its wrapped
// factory builds. The wrapper is the real transport's protocol and the inner
// protocol's transport, so it sees traffic in both directions; its On* hooks
// are where a policy plugs in (set them in WrappingFactory.Setup). The policy
// factories below embed a WrappingFactory and set the hooks themselves.
//
// # Threading
//
// A wrapper belongs to its connection's loop, like any Protocol or Transport.
// WrappingFactory, LimitTotalConnectionsFactory and LimitConnectionsByPeer are
// goroutine-safe, so one factory may serve listeners on several loops.
// ThrottlingFactory is not: it pauses and resumes all its connections from
// timers, so all of them must live on one loop.
package policies

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gyre-io/gyre/transports"
)

// ProtocolWrapper sits between a transport and a protocol (Twisted's
// ProtocolWrapper): it forwards everything both ways and calls its hooks on
// the way. The inner protocol sees the wrapper as its transport.
//
// Reading is paused on the real transport while either the inner protocol
// paused it or a policy holds it (HoldReading); a producer the inner protocol
// registers is paused while either the real transport or a policy
// (HoldProducer) wants it paused. So a policy never resumes what the protocol
// or the transport paused.
//
// Loop goroutine only, like the transport it wraps.
type ProtocolWrapper struct {
	// Wrapped is the inner protocol.
	Wrapped transports.Protocol

	// OnConnectionMade runs after the inner protocol's ConnectionMade.
	OnConnectionMade func(w *ProtocolWrapper)
	// OnDataReceived runs before p is handed to the inner protocol. p is
	// borrowed: valid only until the hook returns.
	OnDataReceived func(p []byte)
	// OnWrite runs with the number of bytes the inner protocol is writing,
	// before they are passed on.
	OnWrite func(n int)
	// OnConnectionLost runs after the inner protocol's ConnectionLost.
	OnConnectionLost func(reason error)

	factory *WrappingFactory
	t       transports.Transport

	innerPaused bool // the inner protocol paused reading
	readHolds   int
	readPaused  bool // what the real transport was told

	proxy     producerProxy
	prodHolds int
}

var (
	_ transports.TCPTransport          = (*ProtocolWrapper)(nil)
	_ transports.HalfCloseableProtocol = (*ProtocolWrapper)(nil)
)

// ConnectionMade implements transports.Protocol: it records t, registers the
// wrapper with its factory and starts the inner protocol with the wrapper as
// its transport.
func (w *ProtocolWrapper) ConnectionMade(t transports.Transport) {
	w.t = t
	if w.factory != nil {
		w.factory.register(w)
	}
	w.Wrapped.ConnectionMade(w)
	if w.OnConnectionMade != nil {
		w.OnConnectionMade(w)
	}
}

// DataReceived implements transports.Protocol. p is borrowed, as always.
func (w *ProtocolWrapper) DataReceived(p []byte) {
	if w.OnDataReceived != nil {
		w.OnDataReceived(p)
	}
	w.Wrapped.DataReceived(p)
}

// ConnectionLost implements transports.Protocol.
func (w *ProtocolWrapper) ConnectionLost(reason error) {
	w.Wrapped.ConnectionLost(reason)
	if w.OnConnectionLost != nil {
		w.OnConnectionLost(reason)
	}
	if w.factory != nil {
		w.factory.unregister(w)
	}
	w.proxy = producerProxy{}
}

// ReadConnectionLost implements transports.HalfCloseableProtocol: it is
// forwarded when the inner protocol is half-closeable, and otherwise closes
// the connection, as the transport would have.
func (w *ProtocolWrapper) ReadConnectionLost() {
	if h, ok := w.Wrapped.(transports.HalfCloseableProtocol); ok {
		h.ReadConnectionLost()
		return
	}
	if w.t != nil {
		_ = w.t.LoseConnection()
	}
}

// WriteConnectionLost implements transports.HalfCloseableProtocol; forwarded
// when the inner protocol is half-closeable.
func (w *ProtocolWrapper) WriteConnectionLost() {
	if h, ok := w.Wrapped.(transports.HalfCloseableProtocol); ok {
		h.WriteConnectionLost()
	}
}

// Transport is the real transport (nil before ConnectionMade).
func (w *ProtocolWrapper) Transport() transports.Transport { return w.t }

// Write implements transports.Transport for the inner protocol.
func (w *ProtocolWrapper) Write(p []byte) error {
	if w.t == nil {
		return transports.ErrNotConnected
	}
	if w.OnWrite != nil {
		w.OnWrite(len(p))
	}
	return w.t.Write(p)
}

// WriteBuffers implements transports.Transport for the inner protocol.
func (w *ProtocolWrapper) WriteBuffers(bufs [][]byte) error {
	if w.t == nil {
		return transports.ErrNotConnected
	}
	if w.OnWrite != nil {
		n := 0
		for _, b := range bufs {
			n += len(b)
		}
		w.OnWrite(n)
	}
	return w.t.WriteBuffers(bufs)
}

// LoseConnection implements transports.Transport.
func (w *ProtocolWrapper) LoseConnection() error {
	if w.t == nil {
		return transports.ErrNotConnected
	}
	return w.t.LoseConnection()
}

// Abort implements transports.Transport.
func (w *ProtocolWrapper) Abort() error {
	if w.t == nil {
		return transports.ErrNotConnected
	}
	return w.t.Abort()
}

// CloseWrite implements transports.Transport.
func (w *ProtocolWrapper) CloseWrite() error {
	if w.t == nil {
		return transports.ErrNotConnected
	}
	return w.t.CloseWrite()
}

// LocalAddr implements transports.Transport.
func (w *ProtocolWrapper) LocalAddr() net.Addr {
	if w.t == nil {
		return nil
	}
	return w.t.LocalAddr()
}

// RemoteAddr implements transports.Transport.
func (w *ProtocolWrapper) RemoteAddr() net.Addr {
	if w.t == nil {
		return nil
	}
	return w.t.RemoteAddr()
}

// Clock implements transports.Transport.
func (w *ProtocolWrapper) Clock() transports.Clock {
	if w.t == nil {
		return nil
	}
	return w.t.Clock()
}

// SetNoDelay implements transports.TCPTransport when the real transport does;
// errors.ErrUnsupported otherwise.
func (w *ProtocolWrapper) SetNoDelay(on bool) error {
	if t, ok := w.t.(transports.TCPTransport); ok {
		return t.SetNoDelay(on)
	}
	return errors.ErrUnsupported
}

// SetKeepAlive implements transports.TCPTransport when the real transport
// does; errors.ErrUnsupported otherwise.
func (w *ProtocolWrapper) SetKeepAlive(on bool, idle time.Duration) error {
	if t, ok := w.t.(transports.TCPTransport); ok {
		return t.SetKeepAlive(on, idle)
	}
	return errors.ErrUnsupported
}

// PauseReading implements transports.Transport for the inner protocol.
func (w *ProtocolWrapper) PauseReading() {
	w.innerPaused = true
	w.syncReading()
}

// ResumeReading implements transports.Transport for the inner protocol; the
// real transport resumes only if no policy holds reading.
func (w *ProtocolWrapper) ResumeReading() {
	w.innerPaused = false
	w.syncReading()
}

// HoldReading pauses the real transport's reading on a policy's behalf until
// a matching ReleaseReading. Holds nest.
func (w *ProtocolWrapper) HoldReading() {
	w.readHolds++
	w.syncReading()
}

// ReleaseReading ends one HoldReading.
func (w *ProtocolWrapper) ReleaseReading() {
	if w.readHolds > 0 {
		w.readHolds--
		w.syncReading()
	}
}

func (w *ProtocolWrapper) syncReading() {
	want := w.innerPaused || w.readHolds > 0
	if want == w.readPaused || w.t == nil {
		return
	}
	w.readPaused = want
	if want {
		w.t.PauseReading()
	} else {
		w.t.ResumeReading()
	}
}

// RegisterProducer implements transports.Transport: the real transport gets a
// proxy that also honours HoldProducer.
func (w *ProtocolWrapper) RegisterProducer(p transports.Producer, streaming bool) error {
	if w.t == nil {
		return transports.ErrNotConnected
	}
	if w.proxy.p != nil {
		return transports.ErrProducerRegistered
	}
	w.proxy = producerProxy{w: w, p: p, streaming: streaming}
	if err := w.t.RegisterProducer(&w.proxy, streaming); err != nil {
		w.proxy = producerProxy{}
		return err
	}
	w.proxy.sync()
	return nil
}

// UnregisterProducer implements transports.Transport.
func (w *ProtocolWrapper) UnregisterProducer() {
	if w.proxy.p == nil {
		return
	}
	w.proxy = producerProxy{}
	if w.t != nil {
		w.t.UnregisterProducer()
	}
}

// Producer is the producer the inner protocol registered, or nil.
func (w *ProtocolWrapper) Producer() transports.Producer { return w.proxy.p }

// HoldProducer pauses the inner protocol's streaming producer (or withholds
// ResumeProducing from a pull producer) on a policy's behalf until a matching
// ReleaseProducer. Holds nest and outlive producer changes.
func (w *ProtocolWrapper) HoldProducer() {
	w.prodHolds++
	w.proxy.sync()
}

// ReleaseProducer ends one HoldProducer.
func (w *ProtocolWrapper) ReleaseProducer() {
	if w.prodHolds > 0 {
		w.prodHolds--
		w.proxy.sync()
	}
}

// hooks is a set of hooks added to a wrapper after any already set.
type hooks struct {
	made  func(*ProtocolWrapper)
	data  func([]byte)
	write func(int)
	lost  func(error)
}

// addHooks chains h after the wrapper's current hooks.
func (w *ProtocolWrapper) addHooks(h hooks) {
	if h.made != nil {
		if prev := w.OnConnectionMade; prev != nil {
			w.OnConnectionMade = func(w *ProtocolWrapper) { prev(w); h.made(w) }
		} else {
			w.OnConnectionMade = h.made
		}
	}
	if h.data != nil {
		if prev := w.OnDataReceived; prev != nil {
			w.OnDataReceived = func(p []byte) { prev(p); h.data(p) }
		} else {
			w.OnDataReceived = h.data
		}
	}
	if h.write != nil {
		if prev := w.OnWrite; prev != nil {
			w.OnWrite = func(n int) { prev(n); h.write(n) }
		} else {
			w.OnWrite = h.write
		}
	}
	if h.lost != nil {
		if prev := w.OnConnectionLost; prev != nil {
			w.OnConnectionLost = func(r error) { prev(r); h.lost(r) }
		} else {
			w.OnConnectionLost = h.lost
		}
	}
}

// producerProxy is what the real transport sees as the producer.
type producerProxy struct {
	w         *ProtocolWrapper
	p         transports.Producer
	streaming bool

	transportPaused bool // the real transport paused us (streaming)
	paused          bool // what the producer was told (streaming)
	wantMore        bool // a pull request withheld by a hold
}

func (x *producerProxy) held() bool { return x.w != nil && x.w.prodHolds > 0 }

func (x *producerProxy) sync() {
	if x.p == nil {
		return
	}
	if !x.streaming {
		if x.wantMore && !x.held() {
			x.wantMore = false
			if pp, ok := x.p.(transports.PullProducer); ok {
				pp.ResumeProducing()
			}
		}
		return
	}
	want := x.transportPaused || x.held()
	if want == x.paused {
		return
	}
	x.paused = want
	if pp, ok := x.p.(transports.PushProducer); ok {
		if want {
			pp.PauseProducing()
		} else {
			pp.ResumeProducing()
		}
	}
}

// PauseProducing is called by the real transport.
func (x *producerProxy) PauseProducing() {
	x.transportPaused = true
	x.sync()
}

// ResumeProducing is called by the real transport.
func (x *producerProxy) ResumeProducing() {
	if x.streaming {
		x.transportPaused = false
	} else {
		x.wantMore = true
	}
	x.sync()
}

// StopProducing is called by the real transport.
func (x *producerProxy) StopProducing() {
	if x.p != nil {
		x.p.StopProducing()
	}
}

// WrappingFactory wraps every protocol its Wrapped factory builds in a
// ProtocolWrapper (Twisted's WrappingFactory) and tracks the live wrappers.
// It forwards FactoryStarter and ClientFactory calls to Wrapped when Wrapped
// implements them. Goroutine-safe.
type WrappingFactory struct {
	// Wrapped builds the inner protocols.
	Wrapped transports.Factory
	// Setup, if set, is called on each new wrapper before BuildProtocol
	// returns it: the place to set hooks.
	Setup func(w *ProtocolWrapper)

	mu   sync.Mutex
	live map[*ProtocolWrapper]struct{}
}

var _ transports.ClientFactory = (*WrappingFactory)(nil)

// BuildProtocol implements transports.Factory: nil when Wrapped refuses.
func (f *WrappingFactory) BuildProtocol(addr net.Addr) transports.Protocol {
	return f.wrap(f.Wrapped.BuildProtocol(addr), f.Setup)
}

// wrap builds the wrapper around inner (nil Protocol when inner is nil).
func (f *WrappingFactory) wrap(inner transports.Protocol, setups ...func(*ProtocolWrapper)) transports.Protocol {
	if inner == nil {
		return nil
	}
	w := &ProtocolWrapper{Wrapped: inner, factory: f}
	for _, s := range setups {
		if s != nil {
			s(w)
		}
	}
	return w
}

func (f *WrappingFactory) register(w *ProtocolWrapper) {
	f.mu.Lock()
	if f.live == nil {
		f.live = make(map[*ProtocolWrapper]struct{})
	}
	f.live[w] = struct{}{}
	f.mu.Unlock()
}

func (f *WrappingFactory) unregister(w *ProtocolWrapper) {
	f.mu.Lock()
	delete(f.live, w)
	f.mu.Unlock()
}

// Protocols returns the wrappers of the connections currently made (between
// ConnectionMade and ConnectionLost), in no particular order. The slice is
// the caller's; the wrappers may only be used on their own loops.
func (f *WrappingFactory) Protocols() []*ProtocolWrapper {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*ProtocolWrapper, 0, len(f.live))
	for w := range f.live {
		out = append(out, w)
	}
	return out
}

// Len is the number of connections currently made.
func (f *WrappingFactory) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.live)
}

// StartFactory forwards to Wrapped if it is a transports.FactoryStarter.
func (f *WrappingFactory) StartFactory() {
	if s, ok := f.Wrapped.(transports.FactoryStarter); ok {
		s.StartFactory()
	}
}

// StopFactory forwards to Wrapped if it is a transports.FactoryStarter.
func (f *WrappingFactory) StopFactory() {
	if s, ok := f.Wrapped.(transports.FactoryStarter); ok {
		s.StopFactory()
	}
}

// StartedConnecting forwards to Wrapped if it is a transports.ClientFactory.
func (f *WrappingFactory) StartedConnecting(c transports.Connector) {
	if cf, ok := f.Wrapped.(transports.ClientFactory); ok {
		cf.StartedConnecting(c)
	}
}

// ClientConnectionFailed forwards to Wrapped if it is a
// transports.ClientFactory.
func (f *WrappingFactory) ClientConnectionFailed(c transports.Connector, reason error) {
	if cf, ok := f.Wrapped.(transports.ClientFactory); ok {
		cf.ClientConnectionFailed(c, reason)
	}
}

// ClientConnectionLost forwards to Wrapped if it is a
// transports.ClientFactory.
func (f *WrappingFactory) ClientConnectionLost(c transports.Connector, reason error) {
	if cf, ok := f.Wrapped.(transports.ClientFactory); ok {
		cf.ClientConnectionLost(c, reason)
	}
}
