package stream

import (
	"errors"

	"github.com/gyre-io/gyre/transports"
)

// ErrNilProducer is returned by Flow.Register for a nil producer.
var ErrNilProducer = errors.New("gyre/stream: nil producer")

// Flow is the consumer side of producer flow control (Twisted's IConsumer as
// implemented by abstract.FileDescriptor: registerProducer,
// unregisterProducer, and the pause/resume decisions its write buffer makes).
// It is the one implementation every stream transport and test double uses.
//
// The transport tells Flow how many bytes are buffered (Update) whenever that
// figure changes; Flow decides what to tell the producer:
//
//   - a streaming (push, IPushProducer) producer gets PauseProducing once
//     when the count rises above Watermarks.High, and ResumeProducing once
//     when it falls to Watermarks.Low or below — one call per crossing, never
//     two of the same in a row;
//   - a non-streaming (pull, IPullProducer) producer gets ResumeProducing
//     once after Register (on the transport's next turn, if nothing is
//     buffered by then) and then each time the count falls to zero: it is
//     asked for the next chunk when the buffer has drained;
//   - Stop (the connection ended) calls StopProducing once and refuses
//     further registrations with transports.ErrClosed.
//
// Producer callbacks run through the protect function given to Init, so a
// panicking producer is handled by the transport (tcp aborts the
// connection). Callbacks may re-enter: a producer may Write (the transport's
// Update calls are recorded and acted on after the callback returns, so
// PauseProducing that writes more is not paused twice), and may Unregister,
// or Register another producer, from inside a callback. One callback nests,
// as in Twisted's FileDescriptor.write: a ResumeProducing that writes past
// High gets PauseProducing inside that write, so a producer that loops
// ("while not paused: produce") stops at the watermark instead of running
// through everything it has.
//
// A streaming producer that implements only Producer (no PauseProducing) is
// tracked but never called except StopProducing; likewise for a pull
// producer without ResumeProducing.
//
// Loop goroutine only; not goroutine-safe. Embed it by value and call Init
// before use.
type Flow struct {
	wm      transports.Watermarks
	protect func(func())
	later   func(func())

	p         transports.Producer
	streaming bool
	paused    bool // push: PauseProducing was the last thing said
	wantMore  bool // pull: owed a ResumeProducing
	gen       uint64
	n         int // the buffered count last given to Update
	stopped   bool
	busy      bool // inside settle: nested updates are picked up by its loop
}

// Init configures f: wm are the watermarks (WithDefaults is applied);
// protect runs a producer callback, handling a panic (nil: call directly);
// later runs a function on the transport's next turn (the loop's CallLater(0,
// …); nil: the first ResumeProducing of a pull producer is called inside
// Register, as Twisted does). Init resets f.
func (f *Flow) Init(wm transports.Watermarks, protect func(func()), later func(func())) {
	*f = Flow{wm: wm.WithDefaults(), protect: protect, later: later}
}

// Watermarks are the watermarks in use (defaults filled in).
func (f *Flow) Watermarks() transports.Watermarks { return f.wm }

// SetWatermarks changes the watermarks (WithDefaults is applied); they take
// effect at the next Update. A transport whose watermarks can be changed
// after its producer registered (a test double's Watermarks field) calls it.
func (f *Flow) SetWatermarks(wm transports.Watermarks) { f.wm = wm.WithDefaults() }

// Register attaches p (Transport.RegisterProducer). streaming selects push
// (PushProducer) or pull (PullProducer) semantics. A push producer
// registered while more than High bytes are buffered is paused at once. A
// pull producer is asked for its first chunk on the next turn (see Init).
// Errors: transports.ErrClosed after Stop, transports.ErrProducerRegistered
// while another is registered, ErrNilProducer for nil.
func (f *Flow) Register(p transports.Producer, streaming bool) error {
	switch {
	case f.stopped:
		return transports.ErrClosed
	case f.p != nil:
		return transports.ErrProducerRegistered
	case p == nil:
		return ErrNilProducer
	}
	f.gen++
	f.p, f.streaming, f.paused, f.wantMore = p, streaming, false, false
	if streaming {
		f.settle()
		return nil
	}
	if f.later == nil {
		f.wantMore = true
		f.settle()
		return nil
	}
	gen := f.gen
	f.later(func() {
		if f.gen == gen && f.p != nil && !f.stopped && f.n == 0 {
			f.wantMore = true
			f.settle()
		}
	})
	return nil
}

// Unregister detaches the producer, if any, without calling it
// (Transport.UnregisterProducer). A paused push producer stays paused: it is
// no longer this transport's business.
func (f *Flow) Unregister() {
	f.gen++
	f.p, f.streaming, f.paused, f.wantMore = nil, false, false, false
}

// Producer is the registered producer (nil if none) and whether it streams.
func (f *Flow) Producer() (p transports.Producer, streaming bool) { return f.p, f.streaming }

// Paused reports whether the registered push producer was last told to pause.
func (f *Flow) Paused() bool { return f.p != nil && f.paused }

// Stopped reports whether Stop was called.
func (f *Flow) Stopped() bool { return f.stopped }

// Update tells f the transport's buffered byte count (WriteQueue.Buffered,
// or what stands for it). Call it whenever the count changes: after a write
// is accepted and after a send is accounted. Calling it with an unchanged
// count is harmless.
func (f *Flow) Update(n int) {
	prev := f.n
	f.n = n
	if f.p == nil || f.stopped {
		return
	}
	if !f.streaming {
		if n == 0 && prev > 0 {
			f.wantMore = true
		} else if n > 0 {
			f.wantMore = false // the producer wrote; it is asked again at the next drain
		}
	} else if f.busy && !f.paused && n > f.wm.High {
		// A write inside a callback (ResumeProducing) crossed High: pause now,
		// nested, as Twisted does. It cannot recurse further: paused is set.
		f.paused = true
		if pp, ok := f.p.(transports.PushProducer); ok {
			f.call(pp.PauseProducing)
		}
		return
	}
	f.settle()
}

// Stop ends flow control for good (the connection is lost): the producer,
// if any, gets StopProducing once, and Register returns ErrClosed from now
// on. Idempotent.
func (f *Flow) Stop() {
	if f.stopped {
		return
	}
	f.stopped = true
	p := f.p
	f.Unregister()
	if p != nil {
		f.call(p.StopProducing)
	}
}

// settle makes what the producer was told agree with the buffered count,
// one callback at a time, until nothing changes (a callback may change the
// count, the producer, or stop the flow).
func (f *Flow) settle() {
	if f.busy {
		return
	}
	f.busy = true
	defer func() { f.busy = false }()
	for f.p != nil && !f.stopped {
		p := f.p
		if !f.streaming {
			if !f.wantMore {
				return
			}
			f.wantMore = false
			if pp, ok := p.(transports.PullProducer); ok {
				f.call(pp.ResumeProducing)
			}
			continue
		}
		pp, ok := p.(transports.PushProducer)
		switch {
		case !f.paused && f.n > f.wm.High:
			f.paused = true
			if ok {
				f.call(pp.PauseProducing)
			}
		case f.paused && f.n <= f.wm.Low:
			f.paused = false
			if ok {
				f.call(pp.ResumeProducing)
			}
		default:
			return
		}
	}
}

func (f *Flow) call(fn func()) {
	if f.protect != nil {
		f.protect(fn)
		return
	}
	fn()
}
