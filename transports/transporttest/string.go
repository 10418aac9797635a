// Package transporttest holds test doubles so protocols are tested without
// sockets (Twisted's StringTransport, MemoryReactor and iosim):
//
//   - StringTransport records what a protocol writes and how it closes, and lets
//     the test deliver bytes, end the connection and drive flow control.
//   - Pair connects two protocols in memory; bytes move only when the test pumps.
//   - MemoryReactor is a transports.Reactor: it records ListenTCP/ConnectTCP
//     and ListenUNIX/ConnectUNIX calls and hands back a Port and a Connector
//     the test drives; Call queues work the test runs with RunCalls.
//   - Connect and FeedChunks are the usual first steps of a protocol test.
//
// Producer flow control is stream.Flow, the real transports' implementation,
// and every double is itself a push producer (pause and resume reading; stop
// is LoseConnection), as every gyre transport is.
//
// Time comes from a *clock.Fake the test owns. Nothing here is goroutine-safe:
// like the real loop, every double belongs to the test goroutine.
package transporttest

import (
	"net"
	"slices"
	"time"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// Default addresses of a StringTransport (Twisted's getHost/getPeer defaults,
// moved to loopback).
var (
	DefaultLocalAddr  net.Addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 12345}
	DefaultRemoteAddr net.Addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 54321}
)

// ProducerState is what a StringTransport last told its producer.
type ProducerState int

// Producer states.
const (
	// NoProducer: none is registered.
	NoProducer ProducerState = iota
	// Producing: registered and not paused.
	Producing
	// Paused: PauseProducing was called (push producers only).
	Paused
	// Stopped: StopProducing was called (the connection ended).
	Stopped
)

// String names the state.
func (s ProducerState) String() string {
	switch s {
	case NoProducer:
		return "none"
	case Producing:
		return "producing"
	case Paused:
		return "paused"
	case Stopped:
		return "stopped"
	}
	return "invalid"
}

// StringTransport is a transports.TCPTransport that records instead of sending
// (Twisted's StringTransport). Writes accumulate in a buffer the test reads with
// Value and empties with Clear. LoseConnection, Abort and CloseWrite only record
// the request: the test decides when the connection ends, with EndConnection.
//
// Flow control is simulated: Pending is a byte count the test sets to stand for
// data still queued in the kernel (SetPending), optionally grown by every Write
// (CountWrites). The decisions are the real transports' (stream.Flow): crossing
// the watermarks pauses and resumes a streaming producer; falling to zero asks
// a pull producer for more.
//
// The transport is itself a push producer, as every gyre transport is:
// PauseProducing and ResumeProducing pause and resume reading, StopProducing
// is LoseConnection. Its Reactor is the MemoryReactor that made it, the one
// given to SetReactor, or else a MemoryReactor on its clock made on first use.
//
// Set the exported fields before handing the transport to a protocol. Not
// goroutine-safe.
type StringTransport struct {
	// Local and Remote are the addresses LocalAddr and RemoteAddr report
	// (DefaultLocalAddr and DefaultRemoteAddr when nil).
	Local, Remote net.Addr
	// Watermarks bound Pending for producer flow control (zero: the defaults).
	Watermarks transports.Watermarks
	// CountWrites makes every accepted Write add its length to Pending.
	CountWrites bool
	// WriteErr, when set, is returned by Write and WriteBuffers, which then
	// record nothing.
	WriteErr error

	clk     clock.Clock
	reactor transports.Reactor
	proto   transports.Protocol
	onEnd   func(reason error) // FakeConnector's hook, after ConnectionLost

	buf     []byte
	pending int
	writes  int

	disconnecting bool // LoseConnection called
	aborted       bool // Abort called
	writeClosed   bool // CloseWrite called
	lost          bool // EndConnection delivered ConnectionLost
	lostReason    error

	readPaused bool
	held       []byte // received while reading was paused

	flow     stream.Flow
	flowOn   bool // flow.Init ran (lazily, so Watermarks can be set first)
	pstopped bool // EndConnection stopped a registered producer

	noDelay       bool
	keepAlive     bool
	keepAliveIdle time.Duration
}

var (
	_ transports.TCPTransport = (*StringTransport)(nil)
	_ transports.PushProducer = (*StringTransport)(nil)
)

// NewStringTransport returns an empty transport whose Clock is clk (a fresh
// clock.Fake when clk is nil).
func NewStringTransport(clk clock.Clock) *StringTransport {
	if clk == nil {
		clk = clock.NewFake()
	}
	return &StringTransport{clk: clk}
}

// Connect attaches tr to p and calls p.ConnectionMade(tr). When tr is a
// *StringTransport it also remembers p, so Receive, ResumeReading and
// EndConnection can reach it. It returns p for chaining.
func Connect(p transports.Protocol, tr transports.Transport) transports.Protocol {
	if st, ok := tr.(*StringTransport); ok {
		st.proto = p
	}
	p.ConnectionMade(tr)
	return p
}

// FeedChunks delivers data to p.DataReceived in pieces of size bytes (the last
// one shorter), each piece a fresh copy so a protocol that keeps the borrowed
// slice is caught by the next piece. size <= 0 delivers everything at once. Use
// it in a loop over every size from 1 up to catch framing bugs.
func FeedChunks(p transports.Protocol, data []byte, size int) {
	if size <= 0 || size > len(data) {
		size = len(data)
	}
	if len(data) == 0 {
		return
	}
	chunk := make([]byte, size)
	for off := 0; off < len(data); off += size {
		n := copy(chunk, data[off:])
		p.DataReceived(chunk[:n])
		clear(chunk) // poison what the protocol should not have kept
	}
}

// Protocol is the protocol Connect attached, or nil.
func (t *StringTransport) Protocol() transports.Protocol { return t.proto }

// --- transports.Transport ---

// Write appends a copy of p to the recorded output. It returns ErrClosed after
// LoseConnection, Abort, CloseWrite or EndConnection, and WriteErr when set.
func (t *StringTransport) Write(p []byte) error {
	if err := t.writable(); err != nil {
		return err
	}
	t.buf = append(t.buf, p...)
	t.writes++
	if t.CountWrites && len(p) > 0 {
		t.SetPending(t.pending + len(p))
	}
	return nil
}

// WriteBuffers appends a copy of each buffer, as one write.
func (t *StringTransport) WriteBuffers(bufs [][]byte) error {
	if err := t.writable(); err != nil {
		return err
	}
	n := 0
	for _, b := range bufs {
		t.buf = append(t.buf, b...)
		n += len(b)
	}
	t.writes++
	if t.CountWrites && n > 0 {
		t.SetPending(t.pending + n)
	}
	return nil
}

func (t *StringTransport) writable() error {
	if t.disconnecting || t.aborted || t.writeClosed || t.lost {
		return transports.ErrClosed
	}
	return t.WriteErr
}

// LoseConnection records the request (Disconnecting reports true); nothing is
// delivered to the protocol until the test calls EndConnection. Idempotent.
func (t *StringTransport) LoseConnection() error {
	t.disconnecting = true
	return nil
}

// Abort records the request (Aborted reports true) and drops Pending to zero.
// Idempotent.
func (t *StringTransport) Abort() error {
	t.aborted = true
	t.pending = 0
	return nil
}

// CloseWrite records a half-close (WriteClosed reports true).
func (t *StringTransport) CloseWrite() error {
	if t.lost {
		return transports.ErrClosed
	}
	t.writeClosed = true
	return nil
}

// LocalAddr is Local, or DefaultLocalAddr.
func (t *StringTransport) LocalAddr() net.Addr {
	if t.Local == nil {
		return DefaultLocalAddr
	}
	return t.Local
}

// RemoteAddr is Remote, or DefaultRemoteAddr.
func (t *StringTransport) RemoteAddr() net.Addr {
	if t.Remote == nil {
		return DefaultRemoteAddr
	}
	return t.Remote
}

// PauseReading makes Receive hold data back until ResumeReading.
func (t *StringTransport) PauseReading() { t.readPaused = true }

// ResumeReading delivers what Receive held back, in one DataReceived, unless
// the protocol pauses again or the connection ended meanwhile.
func (t *StringTransport) ResumeReading() {
	t.readPaused = false
	if len(t.held) > 0 && t.proto != nil && !t.lost {
		held := t.held
		t.held = nil
		t.proto.DataReceived(held)
	}
}

// RegisterProducer attaches p with stream.Flow, as the real transports do.
// It returns ErrClosed after Abort or once the connection ended, and
// ErrProducerRegistered if one is already registered. A streaming producer
// registered above the high watermark is paused at once; a pull producer is
// asked for its first chunk on the clock's next turn, if it is still
// registered and Pending is zero then.
func (t *StringTransport) RegisterProducer(p transports.Producer, streaming bool) error {
	if t.lost || t.aborted {
		return transports.ErrClosed
	}
	return t.fc().Register(p, streaming)
}

// UnregisterProducer forgets the producer (without calling it).
func (t *StringTransport) UnregisterProducer() { t.fc().Unregister() }

// fc is the flow control, initialised on first use with Watermarks.
func (t *StringTransport) fc() *stream.Flow {
	if !t.flowOn {
		t.flowOn = true
		t.flow.Init(t.Watermarks, nil, func(f func()) { t.clk.CallLater(0, f) })
		t.flow.Update(t.pending)
	} else if wm := t.Watermarks.WithDefaults(); wm != t.flow.Watermarks() {
		t.flow.SetWatermarks(wm) // changed after the first use
	}
	return &t.flow
}

// Reactor is the MemoryReactor that made the transport (FakePort.Accept,
// FakeConnector.Succeed), the reactor given to SetReactor, or else a
// MemoryReactor on the transport's clock, made on the first call (get it
// back with t.Reactor().(*MemoryReactor) to drive what the protocol asked).
func (t *StringTransport) Reactor() transports.Reactor {
	if t.reactor == nil {
		t.reactor = NewMemoryReactor(t.clk)
	}
	return t.reactor
}

// SetReactor sets what Reactor returns.
func (t *StringTransport) SetReactor(r transports.Reactor) { t.reactor = r }

// PauseProducing implements transports.PushProducer: PauseReading.
func (t *StringTransport) PauseProducing() { t.PauseReading() }

// ResumeProducing implements transports.PushProducer: ResumeReading.
func (t *StringTransport) ResumeProducing() { t.ResumeReading() }

// StopProducing implements transports.Producer: LoseConnection.
func (t *StringTransport) StopProducing() { _ = t.LoseConnection() }

// Clock is the clock given to NewStringTransport.
func (t *StringTransport) Clock() transports.Clock { return t.clk }

// SetNoDelay records on (see NoDelay).
func (t *StringTransport) SetNoDelay(on bool) error {
	t.noDelay = on
	return nil
}

// SetKeepAlive records on and idle (see KeepAlive).
func (t *StringTransport) SetKeepAlive(on bool, idle time.Duration) error {
	t.keepAlive, t.keepAliveIdle = on, idle
	return nil
}

// --- test side ---

// Value is everything written since the last Clear. The slice is valid until
// the next Write or Clear; copy it to keep it.
func (t *StringTransport) Value() []byte { return t.buf }

// String is Value as a string.
func (t *StringTransport) String() string { return string(t.buf) }

// Clear forgets the recorded output (not Pending).
func (t *StringTransport) Clear() {
	clear(t.buf)
	t.buf = t.buf[:0]
}

// Writes counts successful Write and WriteBuffers calls.
func (t *StringTransport) Writes() int { return t.writes }

// Disconnecting reports whether LoseConnection was called.
func (t *StringTransport) Disconnecting() bool { return t.disconnecting }

// Aborted reports whether Abort was called.
func (t *StringTransport) Aborted() bool { return t.aborted }

// WriteClosed reports whether CloseWrite was called.
func (t *StringTransport) WriteClosed() bool { return t.writeClosed }

// Closed reports whether the protocol asked to close in any way (LoseConnection
// or Abort) or EndConnection ran.
func (t *StringTransport) Closed() bool { return t.disconnecting || t.aborted || t.lost }

// ReadingPaused reports whether the protocol paused reading.
func (t *StringTransport) ReadingPaused() bool { return t.readPaused }

// NoDelay is the last SetNoDelay value.
func (t *StringTransport) NoDelay() bool { return t.noDelay }

// KeepAlive is the last SetKeepAlive call's arguments.
func (t *StringTransport) KeepAlive() (on bool, idle time.Duration) {
	return t.keepAlive, t.keepAliveIdle
}

// Producer is the registered producer (nil if none) and whether it streams.
func (t *StringTransport) Producer() (p transports.Producer, streaming bool) {
	return t.fc().Producer()
}

// ProducerState is what the transport last told its producer.
func (t *StringTransport) ProducerState() ProducerState {
	f := t.fc()
	p, _ := f.Producer()
	switch {
	case t.pstopped:
		return Stopped
	case p == nil:
		return NoProducer
	case f.Paused():
		return Paused
	}
	return Producing
}

// Pending is the simulated count of bytes still queued for the kernel.
func (t *StringTransport) Pending() int { return t.pending }

// SetPending sets the simulated queued byte count (n < 0 counts as 0) and runs
// flow control (stream.Flow.Update): a streaming producer is paused when n
// rises above the high watermark and resumed when it falls to the low one or
// below; a pull producer gets ResumeProducing when n falls to zero from above
// (setting zero again while it is zero asks nothing: the producer has not
// written since it was last asked).
func (t *StringTransport) SetPending(n int) {
	if n < 0 {
		n = 0
	}
	t.pending = n
	t.fc().Update(n)
}

// Drain simulates the kernel taking n queued bytes: SetPending(Pending()-n).
func (t *StringTransport) Drain(n int) { t.SetPending(t.pending - n) }

// Receive delivers a copy of data to the connected protocol, or holds it while
// reading is paused. It does nothing once the connection ended or when no
// protocol is attached (use Connect).
func (t *StringTransport) Receive(data []byte) {
	if t.proto == nil || t.lost || len(data) == 0 {
		return
	}
	if t.readPaused {
		t.held = append(t.held, data...)
		return
	}
	t.proto.DataReceived(slices.Clone(data))
}

// EndConnection ends the connection as the loop would: it stops a registered
// producer and calls the protocol's ConnectionLost(reason) — reason nil means
// ErrConnectionDone. Only the first call does anything. Held received data is
// dropped. On a transport made by FakeConnector.Succeed, the client factory
// then sees ClientConnectionLost(reason).
func (t *StringTransport) EndConnection(reason error) {
	if t.lost {
		return
	}
	t.lost = true
	if reason == nil {
		reason = transports.ErrConnectionDone
	}
	t.lostReason = reason
	t.held = nil
	if p, _ := t.fc().Producer(); p != nil {
		t.pstopped = true
	}
	t.flow.Stop()
	if t.proto != nil {
		t.proto.ConnectionLost(reason)
	}
	if t.onEnd != nil {
		t.onEnd(reason)
	}
}

// Ended reports whether EndConnection ran, and the reason it delivered.
func (t *StringTransport) Ended() (bool, error) { return t.lost, t.lostReason }
