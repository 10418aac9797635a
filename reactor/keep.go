package reactor

import "github.com/gyre-io/gyre/reactor/backend"

// KeepBuffer takes the provided buffer of c out of the loop's automatic
// release: called inside a Handler's Complete for a completion with
// backend.FlagBuffer, it clears that flag, so the loop does not give the
// buffer back when Complete returns, and c.Buf stays valid (and unmodified:
// the kernel never writes a buffer handed out) until ReleaseKept(id) —
// the zero-copy forwarding of stream.Conn.KeepReceived is built on it.
//
// At most MaxKept buffers are kept on a loop at once: half the provided
// buffers stream receives draw from, so the other half always
// serves receives — a protocol that keeps buffers and never releases them
// cannot dry the pool out for the loop's other connections, nor make their
// receives fail with ENOBUFS round after round. ok is false (and nothing is
// kept) past that cap, or when c has no provided buffer: the caller copies
// instead.
//
// With an incrementally consumed ring (io_uring, IOU_PBUF_RING_INC) a
// completion's bytes are a slice of a buffer the kernel goes on filling
// for later receives: keeping the completion keeps the whole buffer out of
// the ring until every completion using it is released (the kernel only
// writes beyond the kept bytes, and c.Buf's capacity ends at its length),
// so one kept small message may hold a whole buffer of the pool
// (BufferSize bytes, or Features.RecvBufferSize where the backend uses
// larger buffers for stream receives).
//
// A buffer still kept when the backend closes (after Run's shutdown) is
// invalid from then on; ReleaseKept after that does nothing. Loop
// goroutine only.
func (l *Loop) KeepBuffer(c *backend.Completion) (id uint16, ok bool) {
	if c.Flags&backend.FlagBuffer == 0 || l.kept >= l.MaxKept() {
		return 0, false
	}
	c.Flags &^= backend.FlagBuffer
	l.kept++
	return c.BufID, true
}

// ReleaseKept gives back a buffer kept with KeepBuffer: call it exactly
// once per kept id (the loop cannot tell a second call from the release of
// a later completion that reused the id). Loop goroutine only.
func (l *Loop) ReleaseKept(id uint16) {
	if l.kept > 0 {
		l.kept--
	}
	l.be.ReleaseBuffer(id)
}

// KeptBuffers is the number of buffers kept with KeepBuffer and not yet
// released (a gauge). Loop goroutine only.
func (l *Loop) KeptBuffers() int { return l.kept }

// MaxKept is the most buffers the loop lets KeepBuffer keep at once: half
// of the buffers stream receives draw from (backend.Features.RecvBuffers,
// else backend.Config.BufferCount; at least 1).
func (l *Loop) MaxKept() int {
	if n := l.feat.RecvBuffers; n > 0 {
		return max(n/2, 1)
	}
	return max(l.cfg.Sizes.BufferCount/2, 1)
}

// warnKept logs buffers still kept as the backend closes: a protocol kept
// received bytes past its connection's end without releasing them.
func (l *Loop) warnKept() {
	if l.kept > 0 {
		l.log.Warn("gyre/reactor: received buffers still kept as the loop closes; their bytes become invalid",
			"kept", l.kept)
	}
}
