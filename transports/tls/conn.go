package gyretls

import (
	ctls "crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
)

// Defaults of Options.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultCloseTimeout     = 5 * time.Second
)

// Options configure the TLS layer of a connection. The zero value is a good
// default.
type Options struct {
	// HandshakeTimeout bounds the handshake, counted from its start
	// (ConnectionMade, or StartTLS). Zero: DefaultHandshakeTimeout (10 s);
	// negative: no timeout.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds LoseConnection (flush, close_notify, FIN and close)
	// and the close after a TLS error; when it passes the connection is
	// aborted and the reason matches ErrCloseTimeout. Zero:
	// DefaultCloseTimeout (5 s); negative: no bound.
	CloseTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	return o
}

// Role says which side of the handshake a connection plays.
type Role int

const (
	// RoleServer answers the ClientHello (tls.Server).
	RoleServer Role = iota
	// RoleClient sends the ClientHello (tls.Client).
	RoleClient
)

// HandshakeListener is optionally implemented by a protocol that wants to know
// when the TLS handshake has completed (Twisted's
// IHandshakeListener.handshakeCompleted). It is called on the loop, once,
// before the first DataReceived of decrypted data and after the bytes written
// during the handshake were encrypted and queued. state is crypto/tls's view
// of the connection (version, cipher suite, NegotiatedProtocol from ALPN,
// ServerName from SNI, PeerCertificates, …); it is the protocol's to keep.
type HandshakeListener interface {
	HandshakeCompleted(state ctls.ConnectionState)
}

// Transport is what a protocol running over this package gets in
// ConnectionMade (Twisted's ITLSTransport and ISSLTransport): a
// transports.Transport plus the TLS controls. *Conn implements it.
type Transport interface {
	transports.Transport
	// StartTLS switches the connection to TLS (Twisted's startTLS).
	StartTLS(cfg *ctls.Config, role Role) error
	// StartTLSWith is StartTLS with bytes already received after the
	// command that switched: the handshake reads them first.
	StartTLSWith(cfg *ctls.Config, role Role, received []byte) error
	// ConnectionState is the negotiated state; ok is false until the
	// handshake has completed.
	ConnectionState() (state ctls.ConnectionState, ok bool)
}

type connState uint8

const (
	stPlain       connState = iota // no TLS (yet): bytes pass through
	stHandshaking                  // the handshake goroutine runs
	stOpen                         // handshake done; records processed on the loop
	stClosing                      // we decided to end; waiting for the underlying ConnectionLost
	stLostWait                     // the underlying connection is gone during the handshake; waiting for the goroutine to take what it was fed
	stClosed                       // ConnectionLost delivered
)

// maxPlaintext is TLS's largest record payload (RFC 8446 §5.1, RFC 5246 §6.2.1).
const maxPlaintext = 16 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, maxPlaintext); return &b }}

// Conn is one connection's TLS layer (Twisted's TLSMemoryBIOProtocol). It is
// at the same time the Protocol of the underlying stream transport (TCP,
// UNIX, or any transports.Transport) and the Transport of the wrapped
// protocol. Build it with WrapFactory, WrapClientFactory, Wrap, Listen or
// Connect; a protocol reaches it as the transports.Transport it is given (a
// Transport in this package's sense).
//
// Every method must be called on the connection's loop, as for any transport.
type Conn struct {
	under transports.Transport
	proto transports.Protocol
	hc    transports.HalfCloseableProtocol // proto, when it half-closes
	opts  Options

	cfg  *ctls.Config // TLS from ConnectionMade (nil: plain until StartTLS)
	role Role

	state   connState
	tc      *ctls.Conn
	pipe    *pipe
	reactor transports.Reactor

	pending     []byte // plaintext written during the handshake
	underLost   error  // stLostWait: the underlying transport's reason
	lostWaitH   int    // stLostWait: the loop's Track handle (-1: none)
	scratch     []byte // WriteBuffers gathers here
	reason      error  // our reason for the end, if we decided it
	hsTimer     transports.DelayedCall
	closeTimer  transports.DelayedCall
	losing      bool // LoseConnection/Abort called, or we are closing
	closeWriteQ bool // CloseWrite asked during the handshake
	writeClosed bool // CloseWrite done (close_notify sent)
	userCW      bool // the user asked CloseWrite: forward WriteConnectionLost
	readEOF     bool // the TLS stream ended (close_notify or clean EOF)
	underEOF    bool // the underlying peer sent FIN
	paused      bool // the protocol paused reading
	pumpQueued  bool
	handshakeOK bool
	inPump      bool
}

var (
	_ Transport                        = (*Conn)(nil)
	_ transports.HalfCloseableProtocol = (*Conn)(nil)
)

// Wrap returns the TLS layer for one connection: p is the protocol to run
// over TLS; cfg the TLS configuration, or nil to start in plaintext and
// switch with StartTLS later; role the handshake side. The result is the
// Protocol to give the underlying transport (return it from a Factory's
// BuildProtocol).
func Wrap(p transports.Protocol, cfg *ctls.Config, role Role, opts Options) *Conn {
	c := &Conn{proto: p, cfg: cfg, role: role, opts: opts.withDefaults()}
	c.hc, _ = p.(transports.HalfCloseableProtocol)
	return c
}

// Protocol is the wrapped protocol.
func (c *Conn) Protocol() transports.Protocol { return c.proto }

// Underlying is the transport the TLS records travel on (nil before
// ConnectionMade).
func (c *Conn) Underlying() transports.Transport { return c.under }

// ---- the Protocol side (called by the underlying transport) ----

// ConnectionMade implements transports.Protocol. As in Twisted, the wrapped
// protocol's ConnectionMade runs first (before the handshake); what it writes
// is held and encrypted once the handshake completes.
func (c *Conn) ConnectionMade(t transports.Transport) {
	c.under = t
	c.reactor = t.Reactor()
	if c.cfg != nil {
		c.state = stHandshaking // writes from ConnectionMade are held
	}
	c.proto.ConnectionMade(c)
	if c.cfg != nil && c.state == stHandshaking && c.pipe == nil {
		// Even after LoseConnection in ConnectionMade: the handshake runs so
		// that what was written is delivered, then the connection closes.
		c.startHandshake(c.cfg, c.role)
	}
}

// DataReceived implements transports.Protocol.
func (c *Conn) DataReceived(p []byte) {
	switch c.state {
	case stPlain:
		if !c.losing {
			c.proto.DataReceived(p)
		}
	case stHandshaking:
		if c.pipe.push(p) {
			c.under.PauseReading()
		}
	case stOpen:
		c.pipe.cur = p
		c.pipe.scan(p)
		c.pump()
		if len(c.pipe.cur) > 0 && c.pipe.cur != nil { // paused, or closing: keep what is left
			c.pipe.appendIn(c.pipe.cur)
		}
		c.pipe.cur = nil
	}
}

// ReadConnectionLost implements transports.HalfCloseableProtocol: the
// underlying peer sent FIN.
func (c *Conn) ReadConnectionLost() {
	c.underEOF = true
	switch c.state {
	case stPlain:
		if c.losing {
			return
		}
		if c.hc != nil {
			c.hc.ReadConnectionLost()
			return
		}
		_ = c.under.LoseConnection()
	case stHandshaking:
		c.pipe.setEOF()
	case stOpen:
		c.pipe.setEOF()
		c.pump()
	}
}

// WriteConnectionLost implements transports.HalfCloseableProtocol.
func (c *Conn) WriteConnectionLost() {
	if c.userCW && c.hc != nil && c.state != stClosed {
		c.hc.WriteConnectionLost()
	}
}

// ConnectionLost implements transports.Protocol. The wrapped protocol gets
// ConnectionLost exactly once, with this layer's reason if it decided the end
// (handshake failure or timeout, TLS error, close timeout), else the
// underlying transport's.
//
// A connection lost during the handshake while the handshake goroutine still
// has bytes to take (a peer that sent an alert and then reset the
// connection, whose RST arrived right behind the alert) is reported once the
// goroutine has taken them: on a later loop turn, with the handshake's own
// error when that is not the loss itself (HandshakeError.Lost then holds the
// loss). The wait costs the loop nothing (the goroutine reports through
// Reactor.Call) and is bounded by the goroutine's CPU work on bytes already
// received; a loop that stops meanwhile ends it at once with the loss.
func (c *Conn) ConnectionLost(reason error) {
	if c.state >= stLostWait {
		return
	}
	if c.state == stHandshaking && c.reason == nil && !errors.Is(reason, transports.ErrConnectionDone) {
		if !errors.Is(reason, reactor.ErrStopped) && c.pipe.lose(reason) {
			c.waitLost(reason)
			return
		}
		reason = transports.Lost(&HandshakeError{Err: reason})
	}
	c.closed(reason)
}

// closed ends the connection for the wrapped protocol.
func (c *Conn) closed(reason error) {
	c.state = stClosed
	c.losing = true
	c.hsTimer.Cancel()
	c.closeTimer.Cancel()
	if c.pipe != nil {
		c.pipe.close()
	}
	c.pending = nil
	if c.reason != nil {
		reason = c.reason
	}
	c.proto.ConnectionLost(reason)
}

// waitLost (loop) enters stLostWait: the pipe ends with reason after what it
// holds, and the handshake goroutine's report (handshakeDone) ends the
// connection. If the loop stops first, its shutdown of the tracked lostWait
// ends it with the loss.
func (c *Conn) waitLost(reason error) {
	c.state = stLostWait
	c.losing = true
	c.underLost = reason
	c.pending = nil
	c.lostWaitH = -1
	if l, ok := c.reactor.(interface{ Loop() *reactor.Loop }); ok {
		c.lostWaitH = l.Loop().Track(lostWait{c})
	}
}

// lostWait is the reactor.Resource of a connection in stLostWait.
type lostWait struct{ c *Conn }

func (w lostWait) Shutdown(error) { w.c.endLostWait(nil) }

// endLostWait (loop) ends stLostWait with the handshake's error (nil: only
// the loss is known).
func (c *Conn) endLostWait(hsErr error) {
	if c.state != stLostWait {
		return
	}
	if c.lostWaitH >= 0 {
		if l, ok := c.reactor.(interface{ Loop() *reactor.Loop }); ok {
			l.Loop().Untrack(c.lostWaitH)
		}
		c.lostWaitH = -1
	}
	reason := transports.Lost(&HandshakeError{Err: c.underLost})
	if hsErr != nil && !errors.Is(hsErr, c.underLost) && !errors.Is(hsErr, net.ErrClosed) {
		// What the peer said (an alert) or what this side rejected, before
		// the connection was lost.
		reason = transports.Lost(&HandshakeError{Err: hsErr, Lost: c.underLost})
	}
	c.closed(reason)
}

// ---- the handshake ----

func (c *Conn) startHandshake(cfg *ctls.Config, role Role) {
	c.pipe = &pipe{}
	c.pipe.init(c, c.reactor)
	if role == RoleClient {
		c.tc = ctls.Client(c.pipe, cfg)
	} else {
		c.tc = ctls.Server(c.pipe, cfg)
	}
	c.state = stHandshaking
	if d := c.opts.HandshakeTimeout; d > 0 {
		c.hsTimer = c.under.Clock().CallLater(d, c.handshakeTimedOut)
	}
	tc, p, r := c.tc, c.pipe, c.reactor
	go func() {
		err := tc.Handshake()
		// The last act of the goroutine: everything it did happens before
		// handshakeDone runs on the loop. If the loop has stopped, the
		// connection is being torn down anyway (its ConnectionLost closes
		// the pipe), so there is nothing to tell.
		_ = r.Call(func() { c.handshakeDone(tc, p, err) })
	}()
}

func (c *Conn) handshakeTimedOut() {
	if c.state == stLostWait {
		c.endLostWait(nil) // cannot happen (the pipe gives the goroutine its end); a guard
		return
	}
	if c.state != stHandshaking {
		return
	}
	c.fail(transports.Lost(&HandshakeError{Err: ErrHandshakeTimeout}), true)
}

// handshakeDone runs on the loop after the handshake goroutine ended.
func (c *Conn) handshakeDone(tc *ctls.Conn, p *pipe, err error) {
	if c.tc == tc && c.state == stLostWait {
		c.endLostWait(err)
		return
	}
	if c.tc != tc || c.state != stHandshaking {
		return // timed out, aborted or lost meanwhile
	}
	c.hsTimer.Cancel()
	underPaused := p.endBlocking() // flushes the last flight (or the alert)
	if err != nil {
		c.fail(transports.Lost(&HandshakeError{Err: err}), false)
		return
	}
	c.state = stOpen
	c.handshakeOK = true
	switch {
	case c.paused && !underPaused:
		c.under.PauseReading()
	case !c.paused && underPaused:
		c.under.ResumeReading()
	}
	if len(c.pending) > 0 {
		pending := c.pending
		c.pending = nil
		if _, err := c.tc.Write(pending); err != nil {
			c.fail(transports.Lost(&RecordError{Err: err}), false)
			return
		}
	}
	if hl, ok := c.proto.(HandshakeListener); ok {
		hl.HandshakeCompleted(c.tc.ConnectionState())
		if c.state != stOpen {
			return
		}
	}
	if c.closeWriteQ && !c.writeClosed {
		c.closeWrite()
	}
	if c.losing {
		c.closeTLS()
		return
	}
	c.pump()
}

// ---- the record layer on the loop ----

// pump decrypts what is buffered and delivers it while reading is on.
func (c *Conn) pump() {
	if c.inPump {
		return
	}
	c.inPump = true
	defer func() { c.inPump = false }()
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	for c.state == stOpen && !c.paused && !c.losing && !c.readEOF && c.pipe.readable() {
		n, err := c.tc.Read(buf) // buf holds any record's plaintext: one Read drains crypto/tls's c.input
		if n > 0 {
			c.pipe.consumed()
			c.proto.DataReceived(buf[:n])
		}
		if err == nil {
			continue
		}
		if err == errWouldBlock || c.state != stOpen {
			return
		}
		c.readFailed(err)
		return
	}
}

// readFailed handles the end of the decrypted stream.
func (c *Conn) readFailed(err error) {
	if errors.Is(err, io.EOF) {
		// close_notify, or the peer's FIN at a record boundary, which
		// crypto/tls also reports as io.EOF (conn.go, readRecordOrCCS).
		c.readEOF = true
		if c.hc != nil {
			c.hc.ReadConnectionLost()
			return
		}
		// The peer ended the TLS stream: answer with close_notify and close
		// (RFC 5246 §7.2.1, RFC 8446 §6.1). The end is clean whatever the
		// underlying close meets: a peer that closed its socket resets our
		// close_notify, which must not turn a clean end into a lost one.
		if c.reason == nil {
			c.reason = transports.ErrConnectionDone
		}
		c.losing = true
		c.closeTLS()
		return
	}
	if errors.Is(err, net.ErrClosed) {
		return
	}
	c.fail(transports.Lost(&RecordError{Err: err}), false)
}

func (c *Conn) schedulePump() {
	if c.pumpQueued {
		return
	}
	c.pumpQueued = true
	c.under.Clock().CallLater(0, func() {
		c.pumpQueued = false
		c.pump()
	})
}

// ---- ending ----

// fail ends the connection for a reason this layer decided. abort drops
// what is queued; otherwise the queue (with any alert crypto/tls wrote) is
// flushed first, bounded by CloseTimeout.
func (c *Conn) fail(reason error, abort bool) {
	if c.state >= stClosing {
		return
	}
	if c.reason == nil {
		c.reason = reason
	}
	c.state = stClosing
	c.losing = true
	c.hsTimer.Cancel()
	if c.pipe != nil {
		c.pipe.close()
	}
	if abort {
		_ = c.under.Abort()
		return
	}
	_ = c.under.LoseConnection()
	c.armCloseTimer()
}

// closeTLS sends close_notify after what is queued and closes the underlying
// transport after flushing, bounded by CloseTimeout.
func (c *Conn) closeTLS() {
	if c.state != stOpen {
		return
	}
	c.state = stClosing
	if !c.writeClosed {
		c.writeClosed = true
		_ = c.tc.CloseWrite() // close_notify (RFC 8446 §6.1); a write error shows in the underlying close
	}
	c.pipe.close()
	_ = c.under.LoseConnection()
	c.armCloseTimer()
}

func (c *Conn) armCloseTimer() {
	if d := c.opts.CloseTimeout; d > 0 && !c.closeTimer.Active() {
		c.closeTimer = c.under.Clock().CallLater(d, func() {
			if c.state == stClosed {
				return
			}
			if c.reason == nil {
				c.reason = transports.Lost(ErrCloseTimeout)
			}
			_ = c.under.Abort()
		})
	}
}

func (c *Conn) closeWrite() {
	c.writeClosed = true
	_ = c.tc.CloseWrite()
	_ = c.under.CloseWrite()
}

// ---- the Transport side (called by the wrapped protocol) ----

// Write implements transports.Transport. After the handshake p is encrypted
// at once into records (up to 16 KiB of plaintext each) that are queued on
// the underlying transport, which copies them; during the handshake p is
// copied and held until it completes. Errors: transports.ErrClosed after
// LoseConnection, Abort or CloseWrite, or once the connection is gone.
func (c *Conn) Write(p []byte) error {
	if c.losing || c.writeClosed || c.state >= stClosing {
		return transports.ErrClosed
	}
	switch c.state {
	case stPlain:
		return c.under.Write(p)
	case stHandshaking:
		c.pending = append(c.pending, p...)
		return nil
	}
	if len(p) == 0 {
		return nil
	}
	if _, err := c.tc.Write(p); err != nil {
		return fmt.Errorf("%w: %w", transports.ErrClosed, err)
	}
	return nil
}

// WriteBuffers implements transports.Transport: the buffers are gathered into
// one write, so small pieces share records.
func (c *Conn) WriteBuffers(bufs [][]byte) error {
	if c.state == stPlain && !c.losing && !c.writeClosed {
		return c.under.WriteBuffers(bufs)
	}
	c.scratch = c.scratch[:0]
	for _, b := range bufs {
		c.scratch = append(c.scratch, b...)
	}
	err := c.Write(c.scratch)
	if cap(c.scratch) > 64<<10 {
		c.scratch = nil
	}
	return err
}

// LoseConnection implements transports.Transport: what was written is
// encrypted and flushed, then close_notify is sent, then the underlying
// transport is closed (FIN) — without waiting for the peer's close_notify, as
// crypto/tls's Conn.Close does (Twisted waits, and can hang: its #7926).
// During the handshake the close waits for the handshake to finish (bounded
// by HandshakeTimeout) so held writes are not lost. The whole close is
// bounded by CloseTimeout; past it the connection is aborted (reason matching
// ErrCloseTimeout). ConnectionLost follows with the underlying transport's
// reason (transports.ErrConnectionDone when all went well). Idempotent.
func (c *Conn) LoseConnection() error {
	if c.losing || c.state >= stLostWait {
		return nil
	}
	c.losing = true
	switch c.state {
	case stPlain:
		if c.under == nil {
			return nil
		}
		return c.under.LoseConnection()
	case stOpen:
		c.closeTLS()
	}
	return nil
}

// Abort implements transports.Transport: no close_notify; the underlying
// transport is aborted (queue dropped, RST); ConnectionLost follows on a
// later turn with its reason (transports.ErrAborted). Idempotent.
func (c *Conn) Abort() error {
	if c.state >= stLostWait {
		return nil
	}
	c.losing = true
	if c.state != stPlain {
		c.state = stClosing
	}
	c.hsTimer.Cancel()
	if c.pipe != nil {
		c.pipe.close()
	}
	if c.under == nil {
		return nil
	}
	return c.under.Abort()
}

// CloseWrite implements transports.Transport: close_notify is sent after
// what is queued, then the underlying transport half-closes (FIN); reading
// goes on (TLS 1.3 allows it, RFC 8446 §6.1; a TLS 1.2 peer usually answers
// with its own close_notify and closes). During the handshake it happens once
// the handshake completes. A HalfCloseableProtocol gets WriteConnectionLost
// when the underlying FIN was sent.
func (c *Conn) CloseWrite() error {
	if c.state >= stLostWait || c.losing {
		return transports.ErrClosed
	}
	if c.writeClosed || c.closeWriteQ {
		return nil
	}
	c.userCW = true
	switch c.state {
	case stPlain:
		c.writeClosed = true
		return c.under.CloseWrite()
	case stHandshaking:
		c.closeWriteQ = true
	case stOpen:
		c.closeWrite()
	}
	return nil
}

// LocalAddr implements transports.Transport.
func (c *Conn) LocalAddr() net.Addr { return c.under.LocalAddr() }

// RemoteAddr implements transports.Transport.
func (c *Conn) RemoteAddr() net.Addr { return c.under.RemoteAddr() }

// PauseReading implements transports.Transport. Decrypted bytes not yet
// delivered stay in crypto/tls's buffers. During the handshake the underlying
// transport keeps reading (the handshake needs it); the pause takes effect
// when it completes.
func (c *Conn) PauseReading() {
	c.paused = true
	if c.state == stPlain || c.state == stOpen {
		c.under.PauseReading()
	}
}

// ResumeReading implements transports.Transport: buffered decrypted bytes are
// delivered on the next loop turn, before newer ones.
func (c *Conn) ResumeReading() {
	if !c.paused {
		return
	}
	c.paused = false
	switch c.state {
	case stPlain:
		c.under.ResumeReading()
	case stOpen:
		c.under.ResumeReading()
		c.schedulePump()
	}
}

// RegisterProducer implements transports.Transport. The producer is
// registered on the underlying transport, whose queue holds the records
// (Twisted's TLSMemoryBIOProtocol does the same): it is paused and resumed
// by the ciphertext queued there. Plaintext held during the handshake is not
// counted.
func (c *Conn) RegisterProducer(p transports.Producer, streaming bool) error {
	if c.state >= stLostWait {
		p.StopProducing()
		return transports.ErrClosed
	}
	return c.under.RegisterProducer(p, streaming)
}

// UnregisterProducer implements transports.Transport.
func (c *Conn) UnregisterProducer() {
	if c.under != nil {
		c.under.UnregisterProducer()
	}
}

// Clock implements transports.Transport.
func (c *Conn) Clock() transports.Clock { return c.under.Clock() }

// Reactor implements transports.Transport.
func (c *Conn) Reactor() transports.Reactor { return c.reactor }

// PauseProducing implements transports.PushProducer: PauseReading.
func (c *Conn) PauseProducing() { c.PauseReading() }

// ResumeProducing implements transports.PushProducer: ResumeReading.
func (c *Conn) ResumeProducing() { c.ResumeReading() }

// StopProducing implements transports.Producer: LoseConnection.
func (c *Conn) StopProducing() { _ = c.LoseConnection() }

// Disconnecting reports whether LoseConnection or Abort was called or the
// connection is gone (framers stop delivering frames then).
func (c *Conn) Disconnecting() bool { return c.losing || c.state >= stClosing }

// StartTLS switches a plaintext connection to TLS in place (Twisted's
// ITLSTransport.startTLS): bytes written before the call leave in the clear
// first, bytes written after it are held until the handshake completes and
// then encrypted. Bytes received after the call returns are TLS records;
// bytes already handed to DataReceived were the protocol's: a protocol
// that read a "STARTTLS" command from a chunk holding more (a peer that
// sent its ClientHello without waiting for the answer) must pass the rest
// with StartTLSWith, or the handshake misses its first bytes. A
// HandshakeListener protocol is told when the handshake completes; a failure
// ends the connection (see HandshakeError). Errors: ErrNoConfig,
// ErrTLSStarted when TLS is already on, transports.ErrClosed after
// LoseConnection/Abort/CloseWrite.
func (c *Conn) StartTLS(cfg *ctls.Config, role Role) error {
	return c.StartTLSWith(cfg, role, nil)
}

// StartTLSWith is StartTLS for bytes already received: received is what the
// peer sent after the command that switches to TLS, typically the rest of
// the chunk DataReceived is handling (or a framer's buffer:
// basic.LineReceiver.ClearLineBuffer). They become the first bytes the
// handshake reads, ahead of any received later; it is copied (the caller
// keeps it), and may be empty. Only the protocol knows where its command
// ends, hence the explicit argument (Twisted has no equivalent: its
// protocols switch and keep the rest themselves).
//
// received is always read as TLS records, never as plaintext of the new TLS
// session: bytes a peer pipelined after STARTTLS in the clear cannot pass as
// protected (the command injection of CVE-2011-0411 came from buffering them
// as commands across the switch). Errors: as StartTLS.
func (c *Conn) StartTLSWith(cfg *ctls.Config, role Role, received []byte) error {
	if cfg == nil {
		return ErrNoConfig
	}
	if c.state != stPlain {
		if c.state >= stClosing {
			return transports.ErrClosed
		}
		return ErrTLSStarted
	}
	if c.losing || c.writeClosed || c.under == nil {
		return transports.ErrClosed
	}
	if c.paused {
		c.under.ResumeReading() // the handshake needs to read; re-paused when it completes
	}
	c.startHandshake(cfg, role)
	if len(received) > 0 && c.pipe.push(received) {
		c.under.PauseReading()
	}
	return nil
}

// ConnectionState implements Transport: crypto/tls's ConnectionState once
// the handshake has completed (ok false before, and on a plaintext
// connection). It never waits: before completion the handshake goroutine owns
// the tls.Conn.
func (c *Conn) ConnectionState() (ctls.ConnectionState, bool) {
	if !c.handshakeOK {
		return ctls.ConnectionState{}, false
	}
	return c.tc.ConnectionState(), true
}
