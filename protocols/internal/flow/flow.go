// Package flow is the read-side flow control the shipped protocols share:
// a protocol that writes in answer to what it reads stops reading while its
// transport's write queue is above the high watermark, and starts again once
// the queue is back at the low one. This is Twisted's pattern of a protocol
// registering itself as the streaming producer of its own transport
// (transport.registerProducer(self, True), with pauseProducing calling
// transport.pauseReading), written once.
//
// Reading may be paused for several independent reasons (Reason bits); the
// transport's reading resumes only once none is left, so one reason ending
// never undoes another's pause.
package flow

import "github.com/gyre-io/gyre/transports"

// Reason is one cause for pausing reading, a bit of a set.
type Reason uint8

const (
	// WriteQueue: the transport's write queue is above its high watermark
	// (set by PauseProducing, cleared by ResumeProducing).
	WriteQueue Reason = 1 << iota
	// Custom is the first bit free for a protocol's own reasons (Custom,
	// Custom<<1, …).
	Custom
)

// Gate pauses a transport's reading while any Reason holds it, and is the
// transports.PushProducer a protocol registers on its transport so that the
// write queue's watermarks pause and resume reading. The zero value is
// inactive; Start it from ConnectionMade. Embed it by value: it allocates
// nothing after Start.
//
// A protocol that keeps input of its own (pipelined requests already read)
// must also stop handling it while Held, and handle it from the drain
// callback given to Start.
//
// Loop goroutine only, like the transport.
type Gate struct {
	t       transports.Transport
	onDrain func()
	held    Reason
	told    bool // the transport was told PauseReading
	closed  bool
	reg     bool // g is the transport's registered producer
}

var _ transports.PushProducer = (*Gate)(nil)

// Start binds g to t and registers g as t's streaming producer. onDrain, if
// not nil, runs when the write queue has drained (ResumeProducing) and no
// other reason holds reading, before reading resumes: the place to handle
// input the protocol kept while paused. If it holds the gate again (its
// answers filled the queue), reading stays paused.
//
// The error is RegisterProducer's (transports.ErrClosed,
// transports.ErrProducerRegistered); reading is then never paused for the
// write queue, but Hold still works.
func (g *Gate) Start(t transports.Transport, onDrain func()) error {
	*g = Gate{t: t, onDrain: onDrain}
	if err := t.RegisterProducer(g, true); err != nil {
		return err
	}
	g.reg = true
	return nil
}

// Hold pauses reading for r (one or more Reason bits) until Release(r).
// Holding a reason already held does nothing. After Close it does nothing.
func (g *Gate) Hold(r Reason) {
	if g.closed {
		return
	}
	g.held |= r
	g.sync()
}

// Release ends the hold of r. Reading resumes if no reason is left.
func (g *Gate) Release(r Reason) {
	g.held &^= r
	g.sync()
}

// Held reports whether any reason holds reading: while it does, a protocol
// must not start work that writes (handle more buffered requests).
func (g *Gate) Held() bool { return g.held != 0 }

// Holds reports the reasons currently held.
func (g *Gate) Holds() Reason { return g.held }

// Close ends flow control for good: every hold is released (reading resumes
// if it was paused), later holds are ignored, and g is unregistered as the
// transport's producer (if Start registered it). For a protocol that closes
// but still reads (and drops) what its peer sends, and from ConnectionLost.
// Idempotent.
func (g *Gate) Close() {
	if g.closed || g.t == nil {
		g.closed = true
		return
	}
	g.closed = true
	g.held = 0
	g.sync()
	if g.reg {
		g.t.UnregisterProducer()
	}
	g.t, g.onDrain, g.reg = nil, nil, false
}

// sync tells the transport what the holds ask for, if that changed. The
// state is updated before the call, so a re-entrant Hold or Release (a
// transport delivering held data from ResumeReading) sees it.
func (g *Gate) sync() {
	want := g.held != 0
	if want == g.told || g.t == nil {
		return
	}
	g.told = want
	if want {
		g.t.PauseReading()
	} else {
		g.t.ResumeReading()
	}
}

// PauseProducing implements transports.PushProducer: the transport's write
// queue passed its high watermark.
func (g *Gate) PauseProducing() { g.Hold(WriteQueue) }

// ResumeProducing implements transports.PushProducer: the queue drained to
// the low watermark. The drain callback runs first (with reading still
// paused), then reading resumes unless something holds it again.
func (g *Gate) ResumeProducing() {
	if g.closed {
		return
	}
	g.held &^= WriteQueue
	if g.held == 0 && g.onDrain != nil {
		g.onDrain()
	}
	g.sync()
}

// StopProducing implements transports.Producer: the connection is gone.
func (g *Gate) StopProducing() {
	g.closed = true
	g.held = 0
	g.t, g.onDrain = nil, nil
}
