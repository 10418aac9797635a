package transporttest

import (
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// ErrPumpLimit is returned by Pair.Flush when the pair was still busy after
// the round limit: the two protocols probably ping-pong forever.
var ErrPumpLimit = errors.New("transporttest: pair still busy after the pump limit")

// Addresses of a Pair's two ends.
var (
	PairClientAddr net.Addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	PairServerAddr net.Addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
)

// Pair is a client and a server protocol connected in memory (Twisted's
// iosim.connectedServerAndClient). Writes queue on the writer's end and reach
// the other protocol only when the test calls Pump or Flush, so the test
// decides when bytes move, relative to the clock too.
//
// Closing follows TCP: LoseConnection flushes the writer's queue, then both
// protocols get ConnectionLost(ErrConnectionDone); Abort drops the queue and
// the aborting side gets Lost(ErrAborted), its peer Lost(ECONNRESET), both
// matching ErrConnectionLost; CloseWrite delivers end-of-stream after the
// queue (ReadConnectionLost for a HalfCloseableProtocol peer, otherwise the
// peer closes). All of these are delivered by a pump, never inside the call.
//
// Flow control is the real transports' (stream.Flow) over each end's queue.
// Each end is also a push producer (PauseProducing pauses its reading,
// StopProducing is LoseConnection). Both ends' Reactor is the pair's: the one
// given to SetReactor, or a MemoryReactor on the pair's clock made on first
// use; each Pump runs the calls queued on that MemoryReactor.
//
// Not goroutine-safe.
type Pair struct {
	// Client and Server are the two ends; Client is the client protocol's
	// transport.
	Client, Server *PipeTransport
	// Chunk, when > 0, splits each delivery into DataReceived calls of at most
	// Chunk bytes (checking pause and close between them).
	Chunk int
	// MaxRounds bounds Flush (10000 when <= 0).
	MaxRounds int

	clk     clock.Clock
	reactor transports.Reactor
}

// NewPair connects client and server: it calls server.ConnectionMade, then
// client.ConnectionMade. Both transports' Clock is clk (a fresh clock.Fake
// when nil). When the clock is a *clock.Fake, each Pump first runs one turn of
// it (Advance(0)), as a loop turn would.
func NewPair(client, server transports.Protocol, clk clock.Clock) *Pair {
	if clk == nil {
		clk = clock.NewFake()
	}
	p := &Pair{clk: clk}
	p.Client = &PipeTransport{pair: p, proto: client, local: PairClientAddr, remote: PairServerAddr}
	p.Server = &PipeTransport{pair: p, proto: server, local: PairServerAddr, remote: PairClientAddr}
	p.Client.peer, p.Server.peer = p.Server, p.Client
	for _, t := range []*PipeTransport{p.Server, p.Client} {
		t.half, _ = t.proto.(transports.HalfCloseableProtocol)
	}
	server.ConnectionMade(p.Server)
	client.ConnectionMade(p.Client)
	return p
}

// Clock is the pair's clock.
func (p *Pair) Clock() clock.Clock { return p.clk }

// Reactor is both ends' reactor: the one given to SetReactor, or a
// MemoryReactor on the pair's clock made on the first call.
func (p *Pair) Reactor() transports.Reactor {
	if p.reactor == nil {
		p.reactor = NewMemoryReactor(p.clk)
	}
	return p.reactor
}

// SetReactor sets what Reactor (and both ends' Reactor) returns.
func (p *Pair) SetReactor(r transports.Reactor) { p.reactor = r }

// Pump runs one round: a fake clock turn, the calls queued on the pair's
// MemoryReactor, then the client's queue to the server, the server's queue to the client, then pending closes. It reports
// whether any bytes or close events moved.
func (p *Pair) Pump() bool {
	if f, ok := p.clk.(*clock.Fake); ok {
		f.Advance(0)
	}
	moved := false
	if m, ok := p.reactor.(*MemoryReactor); ok {
		moved = m.RunCalls() > 0
	}
	moved = p.deliver(p.Client, p.Server) || moved
	moved = p.deliver(p.Server, p.Client) || moved
	moved = p.closeStep(p.Client) || moved
	moved = p.closeStep(p.Server) || moved
	return moved
}

// Flush pumps until a round moves nothing (Twisted's IOPump.flush). It returns
// ErrPumpLimit after MaxRounds busy rounds.
func (p *Pair) Flush() error {
	limit := p.MaxRounds
	if limit <= 0 {
		limit = 10000
	}
	for range limit {
		if !p.Pump() {
			return nil
		}
	}
	return ErrPumpLimit
}

func (p *Pair) deliver(from, to *PipeTransport) bool {
	moved := false
	for len(from.out) > 0 && !to.readPaused && !to.lost && !from.lost {
		n := len(from.out)
		if p.Chunk > 0 && n > p.Chunk {
			n = p.Chunk
		}
		data := make([]byte, n)
		copy(data, from.out)
		from.out = from.out[n:]
		if len(from.out) == 0 {
			from.out = nil
		}
		moved = true
		to.proto.DataReceived(data)
	}
	if moved {
		from.delivered()
	}
	return moved
}

func (p *Pair) closeStep(s *PipeTransport) bool {
	if s.lost {
		return false
	}
	peer := s.peer
	switch {
	case s.aborted:
		s.out = nil
		s.lose(transports.Lost(transports.ErrAborted))
		peer.out = nil
		peer.lose(transports.Lost(syscall.ECONNRESET))
		return true
	case s.disconnecting && len(s.out) == 0:
		s.lose(transports.ErrConnectionDone)
		peer.out = nil
		peer.lose(transports.ErrConnectionDone)
		return true
	case s.writeClosed && !s.eofSent && len(s.out) == 0:
		s.eofSent = true
		if s.half != nil {
			s.half.WriteConnectionLost()
		}
		switch {
		case peer.lost:
		case peer.eofSent:
			// Both directions are shut: the connection is over.
			s.lose(transports.ErrConnectionDone)
			peer.lose(transports.ErrConnectionDone)
		case peer.half != nil:
			peer.half.ReadConnectionLost()
		default:
			// Without half-close support, end of stream closes the peer.
			peer.disconnecting = true
		}
		return true
	}
	return false
}

// PipeTransport is one end of a Pair; it implements transports.TCPTransport.
// Not goroutine-safe.
type PipeTransport struct {
	pair  *Pair
	peer  *PipeTransport
	proto transports.Protocol
	half  transports.HalfCloseableProtocol

	local, remote net.Addr
	out           []byte

	disconnecting, aborted, writeClosed bool
	eofSent                             bool
	lost                                bool
	reason                              error
	readPaused                          bool

	flow   stream.Flow
	flowOn bool // flow.Init ran (lazily, so Watermarks can be set first)

	// Watermarks bound the queue for producer flow control (zero: defaults).
	// Set them before the first RegisterProducer.
	Watermarks transports.Watermarks

	noDelay       bool
	keepAlive     bool
	keepAliveIdle time.Duration
}

var (
	_ transports.TCPTransport = (*PipeTransport)(nil)
	_ transports.PushProducer = (*PipeTransport)(nil)
)

// Write queues a copy of p for the peer. ErrClosed after LoseConnection, Abort
// or CloseWrite, or once the connection ended.
func (t *PipeTransport) Write(p []byte) error {
	if t.closedForWrite() {
		return transports.ErrClosed
	}
	t.out = append(t.out, p...)
	t.queued()
	return nil
}

// WriteBuffers queues a copy of each buffer.
func (t *PipeTransport) WriteBuffers(bufs [][]byte) error {
	if t.closedForWrite() {
		return transports.ErrClosed
	}
	for _, b := range bufs {
		t.out = append(t.out, b...)
	}
	t.queued()
	return nil
}

func (t *PipeTransport) closedForWrite() bool {
	return t.disconnecting || t.aborted || t.writeClosed || t.lost
}

// LoseConnection closes after the queue is delivered (on a pump). Idempotent.
func (t *PipeTransport) LoseConnection() error {
	t.disconnecting = true
	return nil
}

// Abort drops the queue; both sides get ConnectionLost on the next pump.
// Idempotent.
func (t *PipeTransport) Abort() error {
	if !t.lost {
		t.aborted = true
		t.out = nil
	}
	return nil
}

// CloseWrite sends end-of-stream after the queue (on a pump).
func (t *PipeTransport) CloseWrite() error {
	if t.lost || t.aborted {
		return transports.ErrClosed
	}
	t.writeClosed = true
	return nil
}

// LocalAddr is this end's address (PairClientAddr or PairServerAddr).
func (t *PipeTransport) LocalAddr() net.Addr { return t.local }

// RemoteAddr is the other end's address.
func (t *PipeTransport) RemoteAddr() net.Addr { return t.remote }

// PauseReading stops delivery to this end; the peer's bytes stay queued.
func (t *PipeTransport) PauseReading() { t.readPaused = true }

// ResumeReading lets the next pump deliver to this end again.
func (t *PipeTransport) ResumeReading() { t.readPaused = false }

// RegisterProducer attaches a producer with stream.Flow, as the real
// transports do: a streaming one is paused while the queue is above the high
// watermark and resumed once a pump brings it to the low one; a pull one is
// asked for a chunk on the clock's next turn and then whenever a pump
// empties the queue. ErrClosed after Abort or once the connection ended;
// ErrProducerRegistered if one is registered.
func (t *PipeTransport) RegisterProducer(p transports.Producer, streaming bool) error {
	if t.lost || t.aborted {
		return transports.ErrClosed
	}
	return t.fc().Register(p, streaming)
}

// UnregisterProducer detaches the producer (without calling it).
func (t *PipeTransport) UnregisterProducer() { t.fc().Unregister() }

// fc is the flow control, initialised on first use with Watermarks.
func (t *PipeTransport) fc() *stream.Flow {
	if !t.flowOn {
		t.flowOn = true
		t.flow.Init(t.Watermarks, nil, func(f func()) { t.pair.clk.CallLater(0, f) })
		t.flow.Update(len(t.out))
	} else if wm := t.Watermarks.WithDefaults(); wm != t.flow.Watermarks() {
		t.flow.SetWatermarks(wm) // changed after the first use
	}
	return &t.flow
}

// Reactor is the pair's reactor (Pair.Reactor).
func (t *PipeTransport) Reactor() transports.Reactor { return t.pair.Reactor() }

// PauseProducing implements transports.PushProducer: PauseReading.
func (t *PipeTransport) PauseProducing() { t.PauseReading() }

// ResumeProducing implements transports.PushProducer: ResumeReading.
func (t *PipeTransport) ResumeProducing() { t.ResumeReading() }

// StopProducing implements transports.Producer: LoseConnection.
func (t *PipeTransport) StopProducing() { _ = t.LoseConnection() }

// Clock is the pair's clock.
func (t *PipeTransport) Clock() transports.Clock { return t.pair.clk }

// SetNoDelay records on (see NoDelay).
func (t *PipeTransport) SetNoDelay(on bool) error {
	if t.lost {
		return transports.ErrClosed
	}
	t.noDelay = on
	return nil
}

// SetKeepAlive records its arguments (see KeepAlive).
func (t *PipeTransport) SetKeepAlive(on bool, idle time.Duration) error {
	if t.lost {
		return transports.ErrClosed
	}
	t.keepAlive, t.keepAliveIdle = on, idle
	return nil
}

// NoDelay is the last SetNoDelay value.
func (t *PipeTransport) NoDelay() bool { return t.noDelay }

// KeepAlive is the last SetKeepAlive call's arguments.
func (t *PipeTransport) KeepAlive() (on bool, idle time.Duration) {
	return t.keepAlive, t.keepAliveIdle
}

// Queued is the number of bytes written and not yet delivered.
func (t *PipeTransport) Queued() int { return len(t.out) }

// Disconnecting reports whether LoseConnection was called (or the peer's
// end-of-stream closed this end).
func (t *PipeTransport) Disconnecting() bool { return t.disconnecting }

// Aborted reports whether Abort was called.
func (t *PipeTransport) Aborted() bool { return t.aborted }

// WriteClosed reports whether CloseWrite was called.
func (t *PipeTransport) WriteClosed() bool { return t.writeClosed }

// ReadingPaused reports whether this end paused reading.
func (t *PipeTransport) ReadingPaused() bool { return t.readPaused }

// ProducerPaused reports whether the registered streaming producer is paused.
func (t *PipeTransport) ProducerPaused() bool { return t.fc().Paused() }

// Protocol is this end's protocol.
func (t *PipeTransport) Protocol() transports.Protocol { return t.proto }

// Ended reports whether this end's protocol got ConnectionLost, and the reason.
func (t *PipeTransport) Ended() (bool, error) { return t.lost, t.reason }

// queued and delivered tell flow control the queue's new length.
func (t *PipeTransport) queued() {
	if !t.lost {
		t.fc().Update(len(t.out))
	}
}

func (t *PipeTransport) delivered() { t.queued() }

// lose delivers ConnectionLost once, stopping the producer first.
func (t *PipeTransport) lose(reason error) {
	if t.lost {
		return
	}
	t.lost, t.reason = true, reason
	t.out = nil
	t.fc().Stop()
	t.proto.ConnectionLost(reason)
}
