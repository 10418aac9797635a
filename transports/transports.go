// Package transports holds Twisted's contracts in Go form: Protocol, Factory,
// ClientFactory, Transport, Connector, Port, producers, and the sentinel errors.
// Concrete transports live in subpackages (tcp, …); protocols depend on this
// package only, never on the loop or the ring.
//
// # Threading
//
// Every Protocol, Factory and Transport method is called on, and must be called
// from, the loop goroutine that owns the connection. None of them is
// goroutine-safe; code on other goroutines reaches a connection through the
// loop's Call.
package transports

import (
	"net"
	"time"

	"github.com/gyre-io/gyre/clock"
)

// Clock is the time source a protocol may schedule on (the loop, or a fake clock
// in tests).
type Clock = clock.Clock

// DelayedCall is the handle of a scheduled call.
type DelayedCall = clock.Call

// Protocol is the per-connection handler (Twisted's IProtocol).
//
// A connection calls ConnectionMade once, then DataReceived zero or more times,
// then ConnectionLost exactly once — ConnectionLost is never called without a
// preceding ConnectionMade, and nothing is called after it.
type Protocol interface {
	// ConnectionMade gives the protocol its transport. The transport stays valid
	// until ConnectionLost returns.
	ConnectionMade(t Transport)
	// DataReceived delivers bytes in order. p is borrowed: it is valid only until
	// DataReceived returns, so copy what you keep.
	DataReceived(p []byte)
	// ConnectionLost reports why the connection ended. errors.Is(reason,
	// ErrConnectionDone) for a clean close (it also matches io.EOF);
	// errors.Is(reason, ErrConnectionLost) for anything else, wrapping the cause.
	ConnectionLost(reason error)
}

// HalfCloseableProtocol is implemented by protocols that want to keep writing
// after the peer stopped sending (Twisted's IHalfCloseableProtocol). Without it,
// end of stream from the peer closes the connection.
type HalfCloseableProtocol interface {
	Protocol
	// ReadConnectionLost: the peer sent FIN; the transport may still write.
	ReadConnectionLost()
	// WriteConnectionLost: our side's FIN has been sent (after CloseWrite).
	WriteConnectionLost()
}

// Factory builds protocols for new connections.
type Factory interface {
	// BuildProtocol returns the protocol for a connection from or to addr; nil
	// refuses the connection (it is closed at once).
	BuildProtocol(addr net.Addr) Protocol
}

// FactoryStarter is optionally implemented by factories that want Twisted's
// doStart/doStop: StartFactory runs before the first port or connector using the
// factory starts, StopFactory after the last one stops.
type FactoryStarter interface {
	StartFactory()
	StopFactory()
}

// FactoryFunc adapts a function to Factory.
type FactoryFunc func(addr net.Addr) Protocol

// BuildProtocol calls f.
func (f FactoryFunc) BuildProtocol(addr net.Addr) Protocol { return f(addr) }

// ClientFactory is a Factory for outgoing connections (Twisted's ClientFactory).
type ClientFactory interface {
	Factory
	// StartedConnecting is called when a connection attempt begins.
	StartedConnecting(c Connector)
	// ClientConnectionFailed: the attempt failed (refused, timed out, resolution
	// failed, stopped).
	ClientConnectionFailed(c Connector, reason error)
	// ClientConnectionLost: an established connection ended.
	ClientConnectionLost(c Connector, reason error)
}

// Connector is one outgoing connection's controller (Twisted's IConnector).
type Connector interface {
	// Connect starts (or restarts, after a failure or loss) connecting.
	Connect() error
	// StopConnecting aborts an attempt in progress; the factory sees
	// ClientConnectionFailed with ErrConnectStopped.
	StopConnecting() error
	// Disconnect stops connecting or drops the established connection.
	Disconnect()
	// Destination is the address being connected to.
	Destination() net.Addr
}

// Port is a listening endpoint (Twisted's IListeningPort).
type Port interface {
	// Addr is the bound address (with the real port when 0 was asked).
	Addr() net.Addr
	// Close stops accepting (Twisted's stopListening). Once it has returned no
	// further connection is accepted or built, and the address can be bound
	// again; connections already accepted are not touched. Releasing the
	// listening descriptor may finish on a later loop turn, when the
	// in-flight accept operation has reached its final completion: Done
	// tells when. Calling it twice returns ErrClosed.
	Close() error
	// Done is closed once the port has fully stopped after Close (or the
	// loop's shutdown): its accept has ended, its descriptor is closed and
	// its factory stopped — what Twisted's stopListening Deferred reports.
	// Goroutine-safe.
	Done() <-chan struct{}
}

// Transport moves bytes for one connection (Twisted's ITransport/ITCPTransport).
// Loop goroutine only; see the package comment.
type Transport interface {
	// Write queues p for sending. p is copied before Write returns; the caller
	// may reuse it at once. Bytes queued in one loop turn leave together.
	// Returns ErrClosed after LoseConnection/Abort or once the connection is
	// gone; bytes accepted before that are not dropped by LoseConnection.
	Write(p []byte) error
	// WriteBuffers is Write for several buffers (Twisted's writeSequence); each
	// is copied.
	WriteBuffers(bufs [][]byte) error
	// LoseConnection stops reading, flushes the queue, then closes (FIN)
	// (Twisted's loseConnection). DataReceived is not called after it; what
	// the peer sends from then on is not read (as in Twisted, if unread bytes
	// remain at the close the kernel answers the peer with a reset). Once the
	// queue is flushed and the FIN sent the protocol gets ConnectionLost with
	// ErrConnectionDone; if the flush fails (the peer reset) or is aborted, a
	// reason matching ErrConnectionLost instead. Idempotent.
	LoseConnection() error
	// Abort drops the queue and resets the connection (RST). ConnectionLost runs
	// on a later loop turn, never inside Abort. Idempotent.
	Abort() error
	// CloseWrite flushes and then half-closes our side (FIN), keeping reading.
	// A HalfCloseableProtocol gets WriteConnectionLost once the FIN is sent;
	// if the half-close fails (the peer reset the connection meanwhile) the
	// connection is lost instead (ConnectionLost with ErrConnectionLost
	// wrapping the cause).
	CloseWrite() error
	// LocalAddr and RemoteAddr are the connection's addresses.
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
	// PauseReading stops DataReceived (already received bytes included) until
	// ResumeReading; the kernel's receive window then pushes back on the peer.
	// They do not nest: one ResumeReading undoes any number of PauseReading
	// calls, and PauseProducing/ResumeProducing (a producer registered on
	// another transport) toggle the same state — a protocol with several
	// reasons to pause keeps its own count (protocols/internal/flow does).
	PauseReading()
	ResumeReading()
	// RegisterProducer attaches a producer that feeds this transport. A
	// streaming (push) producer is paused when the write queue passes the high
	// watermark and resumed below the low one; a non-streaming (pull) producer is
	// asked for more with ResumeProducing whenever the queue drains. Only one
	// producer at a time (ErrProducerRegistered otherwise).
	RegisterProducer(p Producer, streaming bool) error
	// UnregisterProducer detaches the producer.
	UnregisterProducer()
	// Clock is the connection's loop as a time source.
	Clock() Clock
	// Reactor is the reactor the connection runs on (Twisted's
	// transport.reactor): a protocol opens further connections through it,
	// as a proxy does.
	Reactor() Reactor
	// A transport is itself a push producer, as in Twisted (a FileDescriptor
	// is an IPushProducer): PauseProducing pauses reading, ResumeProducing
	// resumes it, StopProducing is LoseConnection. A proxy therefore joins two
	// connections with two RegisterProducer calls (each transport registered,
	// streaming, on the other) and no adapter.
	PushProducer
}

// TCPTransport adds TCP socket options.
type TCPTransport interface {
	Transport
	// SetNoDelay turns Nagle's algorithm off (true) or on.
	SetNoDelay(on bool) error
	// SetKeepAlive enables keep-alive probes after idle (0: system default).
	SetKeepAlive(on bool, idle time.Duration) error
}

// Producer is the part of a producer every consumer may call.
type Producer interface {
	// StopProducing: the consumer is gone; stop for good.
	StopProducing()
}

// PushProducer writes on its own and can be paused (Twisted's IPushProducer).
type PushProducer interface {
	Producer
	PauseProducing()
	ResumeProducing()
}

// PullProducer writes one chunk per ResumeProducing (Twisted's IPullProducer).
type PullProducer interface {
	Producer
	ResumeProducing()
}

// Watermarks configure write-queue flow control. Zero values take the defaults
// (64 KiB high, 16 KiB low).
type Watermarks struct {
	High int
	Low  int
}

// WithDefaults fills zero fields.
func (w Watermarks) WithDefaults() Watermarks {
	if w.High <= 0 {
		w.High = 64 << 10
	}
	if w.Low <= 0 || w.Low > w.High {
		w.Low = w.High / 4
	}
	return w
}
