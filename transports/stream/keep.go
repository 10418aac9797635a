package stream

import (
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/transports"
)

// MaxKeptPerConn is the most received buffers one Conn keeps at once
// (KeepReceived); past it KeepReceived answers false and the protocol
// copies. With the loop's own cap (half its provided buffers,
// reactor.Loop.MaxKept) it bounds what keeping takes from the receive pool:
// one connection holds at most min(MaxKeptPerConn, Loop.MaxKept()) buffers
// of the size stream receives use (Loop.Features().RecvBufferSize when the
// pool is regrouped into 64 KiB buffers, the default: at most 32 × 64 KiB =
// 2 MiB; else BufferSize: 64 × 4 KiB = 256 KiB with GYRE_URING_DISABLE=
// largeinc), and never more than half the pool together with every other
// connection of the loop — the other half keeps serving receives, so a
// protocol that
// never releases cannot starve the loop's other connections or make their
// receives spin on ENOBUFS.
const MaxKeptPerConn = 64

var _ transports.BufferKeeper = (*Conn)(nil)

// keeper is a Conn's bookkeeping of kept received buffers.
type keeper struct {
	cur     *backend.Completion // the completion whose bytes DataReceived has now
	heldNow bool                // DataReceived has held bytes now (never rewritten)
	curRel  func(error)         // the release KeepReceived gave out for them
	n       int                 // buffers kept and not released
	free    []*keptBuf          // released records, reused (their funcs are bound once)
}

// keptBuf is one kept provided buffer; release is its bound method value,
// made once per record so that keeping allocates nothing.
type keptBuf struct {
	c       *Conn
	id      uint16
	live    bool
	release func(error)
}

// keepNothing is the release of bytes that need none (held bytes).
var keepNothing = func(error) {}

func (k *keeper) endDelivery() { k.cur, k.heldNow, k.curRel = nil, false, nil }

// KeepReceived implements transports.BufferKeeper: inside DataReceived it
// keeps the provided receive buffer the bytes are in out of the pool until
// release is called (release(nil) by hand, or as WriteOwned's done), so the
// protocol can send the same bytes on with no copy.
//
// Bytes that were held while reading was paused are kept at no cost (they
// are already the Conn's own copy: release does nothing). ok is false for a
// ReadPlain connection (it reads into one buffer it reuses), outside
// DataReceived, past MaxKeptPerConn kept buffers on this connection or past
// the loop's cap (reactor.Loop.MaxKept); the protocol then copies (Write).
//
// Lifetimes: the bytes stay valid until release, also after LoseConnection,
// Abort or ConnectionLost — a WriteOwned queue that is dropped calls its
// done (the release) with the reason at the connection's end, so a
// forwarding protocol leaks nothing — but never after the loop's Run has
// returned (the pool is unmapped; a release after that does nothing). With
// an incrementally consumed buffer ring, a kept slice holds the whole
// provided buffer it is part of (see reactor.Loop.KeepBuffer). release must
// be called on the loop, exactly once (see transports.BufferKeeper). Loop
// goroutine only; allocates nothing once the connection has kept as many
// buffers at once as it will.
func (c *Conn) KeepReceived() (release func(error), ok bool) {
	c.loop.AssertOnLoop("Transport.KeepReceived")
	k := &c.keep
	switch {
	case k.curRel != nil:
		return k.curRel, true
	case k.heldNow:
		k.curRel = keepNothing
		return keepNothing, true
	case k.cur == nil || k.n >= MaxKeptPerConn:
		return nil, false
	}
	id, ok := c.loop.KeepBuffer(k.cur)
	if !ok {
		return nil, false
	}
	var b *keptBuf
	if n := len(k.free); n > 0 {
		b = k.free[n-1]
		k.free[n-1] = nil
		k.free = k.free[:n-1]
	} else {
		b = &keptBuf{c: c}
		b.release = b.done
	}
	b.id, b.live = id, true
	k.n++
	k.curRel = b.release
	return b.release, true
}

// done gives the kept buffer back to the loop's pool (once; later calls
// while the record is free are ignored).
func (b *keptBuf) done(error) {
	if !b.live {
		return
	}
	c := b.c
	c.loop.AssertOnLoop("KeepReceived release")
	b.live = false
	c.keep.n--
	c.keep.free = append(c.keep.free, b)
	c.loop.ReleaseKept(b.id)
}

// Kept is the number of received buffers this connection keeps now
// (KeepReceived without release yet). Loop goroutine only.
func (c *Conn) Kept() int { return c.keep.n }
