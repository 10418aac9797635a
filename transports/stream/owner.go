package stream

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/transports"
)

// MaxOps is the number of op slots an Owner has: enough for a connection's
// recv, send, zero-copy send and shutdown.
const MaxOps = 4

// Errors from Owner.
var (
	// ErrOpBusy: the slot's op has not reached its final completion yet (Submit),
	// or some op is in flight (Release).
	ErrOpBusy = errors.New("gyre/stream: op slot busy")
	// ErrBadSlot: a slot number outside 0..MaxOps-1.
	ErrBadSlot = errors.New("gyre/stream: no such op slot")
)

// Loop is what an Owner needs of a reactor loop; *reactor.Loop implements it.
type Loop interface {
	Submit(op *backend.Op, h reactor.Handler) error
	Cancel(tok backend.Token)
	CallLater(d time.Duration, f func()) clock.Call
}

var _ Loop = (*reactor.Loop)(nil)

// OpHandler receives the completions of an Owner's ops. slot is the slot the
// op was submitted in; c is valid only during the call (c.Buf of a provided
// buffer goes back to the pool when OpComplete returns). The slot is already
// free again when a final completion (no FlagMore) is delivered, so
// OpComplete may resubmit it.
type OpHandler interface {
	OpComplete(slot int, c *backend.Completion)
}

type ownerState uint8

const (
	ownerOpen      ownerState = iota
	ownerClosing              // Close called: waiting for final completions
	ownerCloseSent            // the close op is in flight (or the fd was closed directly)
	ownerClosed               // onClosed ran
	ownerReleased             // Release handed the descriptor away
)

// Owner owns one descriptor and the ops a transport runs on it: a small fixed
// set of op slots (MaxOps), each holding one backend.Op and whether it is in
// flight. It is the one implementation of "close the descriptor only after
// the last final completion", so a completion can never reach a later user of
// a reused descriptor number and the kernel never reads a buffer that was
// given back (the backend contract: cancellation does not end ownership, only
// the final completion does).
//
// Close cancels every op in flight, waits for their final completions, then
// closes the descriptor with a KindClose op through the loop and calls
// onClosed exactly once, on the loop, after the close. If the loop refuses
// the close op (it is closing), the descriptor is closed directly and
// onClosed runs on a later turn — never inside Close.
//
// A connection puts its recv, send, zero-copy send and shutdown in slots; a
// listening port its accept; a connector its connect, then Release hands the
// connected descriptor to the connection.
//
// Loop goroutine only; not goroutine-safe. The Owner is the reactor.Handler
// of its ops, so it must not move while an op is in flight: embed it in a
// heap-allocated transport and call Init once.
type Owner struct {
	loop     Loop
	h        OpHandler
	onClosed func()
	fd       int32
	state    ownerState
	on       uint8 // bit i: slot i is in flight
	ops      [MaxOps]backend.Op
	closeOp  backend.Op
}

// Init makes o the owner of fd (open, non-blocking); completions go to h,
// and onClosed (may be nil) runs once after the descriptor is closed.
func (o *Owner) Init(loop Loop, fd int, h OpHandler, onClosed func()) {
	*o = Owner{loop: loop, h: h, onClosed: onClosed, fd: int32(fd)}
}

// Fd is the descriptor (-1 after Release).
func (o *Owner) Fd() int { return int(o.fd) }

// Submit puts op in slot and submits it, with Fd set to the owned descriptor.
// The Owner, and through it the backend, owns the Op and every buffer it names
// (Buf, Bufs, Addr) until the slot's final completion. Errors: ErrBadSlot,
// ErrOpBusy while the slot's previous op is in flight, transports.ErrClosed
// once Close or Release was called, or the loop's error (the op was not
// accepted and produces no completion).
func (o *Owner) Submit(slot int, op backend.Op) error {
	if slot < 0 || slot >= MaxOps {
		return ErrBadSlot
	}
	if o.state != ownerOpen {
		return transports.ErrClosed
	}
	if o.on&(1<<slot) != 0 {
		return ErrOpBusy
	}
	p := &o.ops[slot]
	*p = op
	p.Fd = o.fd
	if err := o.loop.Submit(p, o); err != nil {
		return err
	}
	o.on |= 1 << slot
	return nil
}

// Op is slot's op: its fields as submitted (and as the backend left them,
// e.g. Buf of a recv without provided buffers). Read it only; it belongs to
// the backend while the slot is in flight.
func (o *Owner) Op(slot int) *backend.Op { return &o.ops[slot] }

// InFlight reports whether slot's op has not reached its final completion.
func (o *Owner) InFlight(slot int) bool {
	return slot >= 0 && slot < MaxOps && o.on&(1<<slot) != 0
}

// Busy reports whether any op is in flight.
func (o *Owner) Busy() bool { return o.on != 0 }

// Cancel asks the backend to end slot's op early; its final completion still
// comes (usually -ECANCELED, or its result if it won the race). Nothing if
// the slot is not in flight.
func (o *Owner) Cancel(slot int) {
	if o.InFlight(slot) {
		o.loop.Cancel(o.ops[slot].Token)
	}
}

// Close starts closing: every op in flight is cancelled, and once the last
// one has finally completed the descriptor is closed and onClosed called.
// Idempotent; it never calls onClosed itself.
func (o *Owner) Close() {
	if o.state != ownerOpen {
		return
	}
	o.state = ownerClosing
	for i := range MaxOps {
		o.Cancel(i)
	}
	o.maybeClose()
}

// Closing reports whether Close was called (the descriptor may still be open
// while ops drain).
func (o *Owner) Closing() bool { return o.state != ownerOpen && o.state != ownerReleased }

// Closed reports whether the descriptor is closed and onClosed has run.
func (o *Owner) Closed() bool { return o.state == ownerClosed }

// Release gives the descriptor up without closing it and returns it (a
// connector hands its connected socket to a connection this way; a failed
// attempt closes it directly with unix.Close, which is safe since no op is in
// flight). Errors: ErrOpBusy while an op is in flight, transports.ErrClosed
// after Close or Release.
func (o *Owner) Release() (int, error) {
	if o.state != ownerOpen {
		return -1, transports.ErrClosed
	}
	if o.on != 0 {
		return -1, ErrOpBusy
	}
	fd := int(o.fd)
	o.state, o.fd = ownerReleased, -1
	return fd, nil
}

// Complete implements reactor.Handler: the slot is freed on a final
// completion, the completion goes to the OpHandler, and a closing Owner
// closes the descriptor once nothing is in flight (even if OpComplete
// panics).
func (o *Owner) Complete(op *backend.Op, c *backend.Completion) {
	if op == &o.closeOp {
		o.closed()
		return
	}
	slot := -1
	for i := range o.ops {
		if op == &o.ops[i] {
			slot = i
			break
		}
	}
	if slot < 0 {
		return
	}
	if !c.More() {
		o.on &^= 1 << slot
	}
	defer o.maybeClose()
	o.h.OpComplete(slot, c)
}

func (o *Owner) maybeClose() {
	if o.state != ownerClosing || o.on != 0 {
		return
	}
	o.state = ownerCloseSent
	o.closeOp = backend.Op{Kind: backend.KindClose, Fd: o.fd}
	if err := o.loop.Submit(&o.closeOp, o); err != nil {
		// The loop refused (it is closing): close directly and report on a
		// later turn, never inside the caller.
		_ = unix.Close(int(o.fd))
		o.loop.CallLater(0, o.closed)
	}
}

func (o *Owner) closed() {
	if o.state == ownerClosed {
		return
	}
	o.state = ownerClosed
	o.fd = -1
	if o.onClosed != nil {
		o.onClosed()
	}
}
