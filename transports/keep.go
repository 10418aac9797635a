package transports

// OwnedWriter is a transport that can send a caller-owned buffer without
// copying it (stream transports: tcp, unix and the pipes of a process).
type OwnedWriter interface {
	// WriteOwned queues p without copying it: the transport owns p until
	// done is called (on the loop, exactly once, never inside WriteOwned:
	// nil once every byte was sent, else the connection's end reason), and
	// the caller must not modify p before then. Order with Write is kept.
	// An error (ErrClosed) means p was not queued and done will not be
	// called.
	WriteOwned(p []byte, done func(error)) error
}

// BufferKeeper is a transport whose received bytes can outlive
// DataReceived, for zero-copy forwarding: a protocol keeps the buffer it
// was handed and sends it on with WriteOwned, so the bytes are never
// copied in user space. Both are optional interfaces of the Transport a
// protocol is given; find them once, in ConnectionMade:
//
//	func (e *Echo) ConnectionMade(t transports.Transport) {
//		e.t = t
//		e.keeper, _ = t.(transports.BufferKeeper)
//		e.owned, _ = t.(transports.OwnedWriter)
//	}
//
//	func (e *Echo) DataReceived(p []byte) {
//		if e.keeper == nil || e.owned == nil {
//			_ = e.t.Write(p)
//			return
//		}
//		if release, ok := e.keeper.KeepReceived(); ok {
//			if e.owned.WriteOwned(p, release) == nil {
//				return
//			}
//			release(nil)
//		}
//		_ = e.t.Write(p) // not kept: copy
//	}
//
// Transports built on transports/stream reading a socket (tcp, unix)
// implement it; the TLS transport does not (its DataReceived hands out
// plaintext decrypted into a scratch buffer, and its WriteOwned would
// encrypt, which copies anyway), nor do pipes read into a buffer the
// connection reuses at once (KeepReceived answers false there). There is no
// Twisted counterpart.
type BufferKeeper interface {
	// KeepReceived keeps the bytes of the DataReceived call in progress
	// valid after it returns, until release is called (on the loop). It
	// must be called inside DataReceived; the kept bytes are exactly the
	// slice DataReceived was given (sub-slices may be used; the slice must
	// not be appended to or written). Calling it again in the same
	// DataReceived returns the same release.
	//
	// release has WriteOwned's done signature (its argument is ignored) so
	// it can be passed as is; it must be called exactly once per keep — a
	// second call is ignored only until the transport hands the same
	// function out for a later keep, after which it would release that
	// buffer instead (the function is reused so that keeping allocates
	// nothing). Not calling it holds a receive buffer for good.
	//
	// ok is false, and nothing is kept, when the bytes cannot be kept: the
	// connection keeps too many already (stream.MaxKeptPerConn), the loop
	// does (half its receive buffer pool, reactor.Loop.MaxKept), the bytes
	// are in a buffer the transport reuses at once, or the call is outside
	// DataReceived. The caller then copies (Write). Kept bytes stay valid
	// after the connection is lost until released, but never past the end
	// of the loop's Run.
	KeepReceived() (release func(error), ok bool)
}
