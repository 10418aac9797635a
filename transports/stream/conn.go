package stream

import (
	"errors"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/internal/testhooks"
)

// ReadMode selects how a Conn reads its descriptor.
type ReadMode uint8

const (
	// ReadRecv (the default) keeps one multishot recv with the loop's
	// provided buffers in flight while reading is on: stream sockets.
	ReadRecv ReadMode = iota
	// ReadPlain reads with one single-shot read(2) (KindRead) at a time into
	// a buffer the Conn owns (ConnConfig.ReadBufferSize): pipes, ttys,
	// character devices — descriptors recv(2) refuses.
	ReadPlain
	// ReadNone never reads: a descriptor that carries only the write
	// direction (the write end of a pipe). No end of stream ever arrives;
	// the connection ends by LoseConnection, Abort, CloseWrite (with
	// WriteEndClose) or a write error.
	ReadNone
)

// WriteMode selects the system call a Conn writes with.
type WriteMode uint8

const (
	// WriteSend (the default) sends with send(2) (MSG_NOSIGNAL), and owned
	// buffers of at least ZeroCopyMin bytes with a zero-copy send where the
	// backend has one and the peer is not on this host. It implies a socket: Abort resets the connection
	// (SO_LINGER 0, so the peer gets RST).
	WriteSend WriteMode = iota
	// WritePlain writes with write(2) (KindWrite): pipes, ttys. Abort only
	// drops the queue and closes.
	WritePlain
)

// WriteEnd is what ends a Conn's write direction once its queue has drained
// (Transport.CloseWrite, and the last step of LoseConnection before the
// descriptor is closed): the half-close hook.
type WriteEnd uint8

const (
	// WriteEndShutdown (the default) submits shutdown(SHUT_WR) (KindShutdown):
	// the peer of a stream socket sees end of stream while this side keeps
	// reading. A failed shutdown (ENOTCONN after a reset) loses the
	// connection. HalfCloseableProtocol.WriteConnectionLost follows a
	// successful one.
	WriteEndShutdown WriteEnd = iota
	// WriteEndClose ends the write direction by closing the descriptor: for a
	// descriptor that carries only that direction (the write end of a pipe,
	// with ReadNone) or none at all (the read end of a pipe, where a
	// shutdown would fail with ENOTSOCK). CloseWrite then calls WriteConnectionLost (for a
	// HalfCloseableProtocol) and ends the whole Conn with ErrConnectionDone,
	// since its one descriptor is closed; LoseConnection closes without a
	// separate half-close step.
	WriteEndClose
)

// DefaultReadBufferSize is the ReadPlain buffer size when ConnConfig leaves
// it zero (Twisted's FileDescriptor.bufferSize).
const DefaultReadBufferSize = 64 << 10

// ConnConfig configures a Conn. The zero value is a stream socket with no
// addresses.
type ConnConfig struct {
	// Local and Remote are returned by LocalAddr and RemoteAddr (plain
	// values, given by the transport package: *net.TCPAddr, *net.UnixAddr,
	// …; nil is allowed).
	Local, Remote net.Addr
	// Watermarks for a registered producer (zero fields take the defaults).
	Watermarks transports.Watermarks
	// Read, Write and WriteEnd select the descriptor's system calls (defaults:
	// a stream socket).
	Read     ReadMode
	Write    WriteMode
	WriteEnd WriteEnd
	// ReadBufferSize is the size of the buffer ReadPlain reads into; default
	// DefaultReadBufferSize. Allocated once per Conn, at Init.
	ReadBufferSize int
	// WatchHangup, with ReadNone, keeps a poll for POLLERR on the descriptor
	// in flight while reading would be on, so the connection learns that
	// the other end went away without writing (the write end of a pipe
	// whose reader closed reports POLLERR): it then ends cleanly
	// (ErrConnectionDone) if nothing is queued, else it is lost with EPIPE
	// (ErrConnectionLost).
	// Only for descriptors that can be polled (pipes, sockets; not regular
	// files).
	WatchHangup bool
	// OnLost, if set, runs once on the loop right after the protocol's
	// ConnectionLost (a connector learns the end of its connection this way).
	OnLost func(c *Conn, reason error)
	// Control, if set, carries ancillary data (cmsg(3)) on a socket read
	// with ReadRecv and written with WriteSend (UNIX sockets: SCM_RIGHTS);
	// see ControlHandler.
	Control ControlHandler
}

// ControlHandler is a Conn's hook for ancillary data (cmsg(3)), for a
// transport whose stream sockets pass descriptors (the UNIX transport's
// SCM_RIGHTS). Its methods are called on the loop.
//
// Receiving: a Conn with a handler whose ControlStart returns true reads
// with single-shot recvmsg ops (backend.KindRecvMsg into a provided buffer,
// with a control buffer of ControlSpace bytes allocated once per Conn)
// instead of one multishot recv — one submission per read rather than one
// per burst, the cost of receiving descriptors: a plain recv makes the
// kernel close descriptors attached to the bytes it reads.
//
// Sending: before each send the Conn asks SendControl for the control
// messages to attach to the send's first byte; a send that carries them is a
// sendmsg (backend.KindSendMsg), and never a zero-copy send.
type ControlHandler interface {
	// ControlStart is called once by Start with the protocol, before
	// reading starts: true reads with recvmsg and control (see above).
	ControlStart(proto transports.Protocol) (recvControl bool)
	// ControlReceived is called with the control messages of each recvmsg
	// that carried any, before its bytes are delivered (or held, while
	// reading is paused). ctl is valid only during the call. drop reports
	// that the bytes will not be delivered (LoseConnection was called, or
	// the connection is closing): the handler must release what ctl holds
	// (close the descriptors). trunc reports backend.FlagCtrunc.
	ControlReceived(ctl []byte, drop, trunc bool)
	// SendControl is called before each send; off is the stream offset of
	// the send's first byte (the bytes sent so far, see WriteOffset). It
	// returns the control messages to send with that byte (nil: none; it
	// must stay unchanged until ControlSent or ControlClosed) and, if limit
	// > 0, the most bytes the send may carry, so that the next control
	// message starts a send of its own.
	SendControl(off int64) (ctl []byte, limit int)
	// ControlSent is called after a send carrying the last SendControl
	// answer sent at least one byte: the kernel has taken the messages.
	ControlSent()
	// ControlClosed is called once, after the descriptor was closed and
	// before ConnectionLost: control messages not sent are released.
	ControlClosed()
}

// ControlSpace is the size of the control buffer a Conn receives into:
// room for one SCM_RIGHTS message of SCM_MAX_FD (253) descriptors — the
// most one stream recvmsg delivers (Linux stops a stream read after the
// first message carrying descriptors) — and one SCM_CREDENTIALS message.
var ControlSpace = unix.CmsgSpace(253*4) + unix.CmsgSpace(unix.SizeofUcred)

// The op slots of a Conn's Owner.
const (
	slotRecv = iota
	slotSend
	slotZC
	slotCtl // shutdown(SHUT_WR)
)

// Conn is the stream connection every gyre stream transport is built on
// (Twisted's abstract.FileDescriptor plus the connection parts of
// tcp.Connection): it implements transports.Transport over one descriptor
// on one loop. Transport packages wrap it, usually by embedding it in their
// own connection type and adding their options (tcp.Conn adds SetNoDelay and
// SetKeepAlive); the wrapper is what the protocol sees (see Start).
//
// Reading (ConnConfig.Read): one multishot recv into the loop's provided
// buffers, or one plain read into the Conn's own buffer, is in flight while
// reading is on; PauseReading cancels it and holds whatever still arrives,
// ResumeReading delivers the held bytes first (on the next turn). End of
// stream closes the connection cleanly after flushing, or, for a
// HalfCloseableProtocol, calls ReadConnectionLost.
//
// Writing: Write copies into a WriteQueue; everything queued in one loop
// turn leaves in one send, at most one send is in flight and short sends are
// resumed. WriteOwned queues a caller-owned buffer without copying (owned
// buffers queued back to back leave in one vectored send), and
// KeepReceived lets a protocol forward a received buffer that way. A
// registered producer is driven by a Flow (paused above the high watermark,
// resumed at the low one).
//
// Closing: an Owner holds the recv, send, zero-copy send and shutdown ops; a
// teardown cancels them and closes the descriptor only after their final
// completions, so a completion can never reach a later connection that reuses
// the number; then the producer is stopped, owned buffers are released with
// the reason, and ConnectionLost is called exactly once. A panic in a
// protocol or producer callback aborts this connection only, with the panic
// as the reason (reactor.PanicError), and is reported to the loop.
//
// Loop goroutine only: every method must be called on the connection's loop
// (from a Protocol callback or a function passed to the loop's Call).
type Conn struct {
	own  Owner
	q    WriteQueue
	flow Flow

	loop   *reactor.Loop
	self   transports.Transport
	proto  transports.Protocol
	half   transports.HalfCloseableProtocol
	local  net.Addr
	remote net.Addr
	onLost func(c *Conn, reason error)
	track  int

	read     ReadMode
	write    WriteMode
	writeEnd WriteEnd
	rbuf     []byte // ReadPlain's buffer
	watchHup bool   // ReadNone with ConnConfig.WatchHangup

	ctl     ControlHandler
	recvCtl bool   // read with recvmsg and control (ControlStart)
	cbuf    []byte // the control buffer recvmsg receives into
	ctlOut  bool   // the send in flight carries control messages
	sentOff int64  // bytes sent so far
	localZC bool   // the peer is on this host: no zero-copy sends (sameHost)

	sendBusy    bool // a chunk is out (a send, or a zero-copy send's first completion)
	flushQueued bool
	delivering  bool // inside DataReceived of a ReadPlain buffer: do not re-arm the read into it

	held    []byte // received while reading was paused
	paused  bool
	readEOF bool

	keep keeper   // received buffers kept past DataReceived (keep.go)
	iov  [][]byte // the vectored send's buffers (NextBufs), made at the first gathered send

	writeClosed   bool // CloseWrite asked
	finSent       bool
	disconnecting bool // LoseConnection asked: flush, then close
	lost          bool
	reason        error
}

var _ transports.Transport = (*Conn)(nil)

// connOps carries the Conn's methods the loop and the Owner call (OpHandler,
// reactor.Flusher) without exporting them on Conn.
type connOps Conn

// NewConn returns a Conn owning fd (an open, non-blocking descriptor) on
// loop; see Init.
func NewConn(loop *reactor.Loop, fd int, cfg ConnConfig) *Conn {
	c := new(Conn)
	c.Init(loop, fd, cfg)
	return c
}

// Init makes c (the zero value, embedded in a heap-allocated transport that
// will not move) a connection owning fd on loop. Nothing happens on the
// descriptor until Start. If Start is never called, c owns fd anyway: call
// Abort (or close fd yourself) to release it.
func (c *Conn) Init(loop *reactor.Loop, fd int, cfg ConnConfig) {
	*c = Conn{
		loop: loop, local: cfg.Local, remote: cfg.Remote, onLost: cfg.OnLost, track: -1,
		read: cfg.Read, write: cfg.Write, writeEnd: cfg.WriteEnd, ctl: cfg.Control,
		watchHup: cfg.Read == ReadNone && cfg.WatchHangup,
		localZC:  sameHost(cfg.Local, cfg.Remote) && !testhooks.ZeroCopyToLocalPeers.Load(),
	}
	c.self = c
	c.own.Init(loop, fd, (*connOps)(c), c.closed)
	c.flow.Init(cfg.Watermarks, c.protect, c.later)
	if c.read == ReadPlain {
		n := cfg.ReadBufferSize
		if n <= 0 {
			n = DefaultReadBufferSize
		}
		c.rbuf = make([]byte, n)
	}
}

// Start binds proto to the connection, registers it with the loop (a
// reactor.Resource), calls ConnectionMade(self) and starts reading. self is
// the transport the protocol sees (the wrapping transport, e.g. a *tcp.Conn);
// nil means c. Loop goroutine only; call it once.
func (c *Conn) Start(proto transports.Protocol, self transports.Transport) {
	if self != nil {
		c.self = self
	}
	c.proto = proto
	c.half, _ = proto.(transports.HalfCloseableProtocol)
	c.track = c.loop.Track(c)
	c.loop.CountConnOpened()
	if c.ctl != nil && c.read == ReadRecv && c.ctl.ControlStart(proto) {
		c.recvCtl = true
		c.cbuf = make([]byte, ControlSpace)
	}
	if !c.callProto(func() { proto.ConnectionMade(c.self) }) {
		return
	}
	if !c.own.Closing() && !c.paused && !c.disconnecting {
		c.armRecv()
	}
}

// Loop is the connection's loop.
func (c *Conn) Loop() *reactor.Loop { return c.loop }

// Fd is the connection's descriptor, for socket options; -1 once the
// connection is closing or gone (transport packages answer ErrClosed then).
func (c *Conn) Fd() int {
	if c.lost || c.own.Closing() {
		return -1
	}
	return c.own.Fd()
}

// callProto runs f, turning a panic into an abort of this connection only.
func (c *Conn) callProto(f func()) (ok bool) {
	defer func() {
		if err := reactor.Recovered(recover()); err != nil {
			c.loop.ReportError(err)
			c.teardown(transports.Lost(err), true)
			ok = false
		}
	}()
	f()
	return true
}

// protect is the Flow's callback guard.
func (c *Conn) protect(f func()) { c.callProto(f) }

// later is the Flow's next-turn scheduler.
func (c *Conn) later(f func()) { c.loop.CallLater(0, f) }

func (c *Conn) deliver(p []byte) {
	defer func() {
		if err := reactor.Recovered(recover()); err != nil {
			c.loop.ReportError(err)
			c.teardown(transports.Lost(err), true)
		}
	}()
	c.loop.CountBytesIn(len(p))
	c.proto.DataReceived(p)
}

func (c *Conn) armRecv() {
	if c.read == ReadNone && !c.watchHup || c.own.InFlight(slotRecv) || c.own.Closing() || c.disconnecting || c.delivering {
		// After LoseConnection, reading is stopped for good. While a
		// ReadPlain buffer is lent to DataReceived, the read is re-armed
		// when it returns.
		return
	}
	op := backend.Op{Kind: backend.KindRecv, Multishot: true, BufferSelect: true}
	if c.read == ReadPlain {
		op = backend.Op{Kind: backend.KindRead, Buf: c.rbuf}
	} else if c.read == ReadNone {
		op = hangupOp
	} else if c.recvCtl {
		op = backend.Op{Kind: backend.KindRecvMsg, BufferSelect: true, Control: c.cbuf}
	}
	if err := c.own.Submit(slotRecv, op); err != nil {
		c.teardown(transports.Lost(err), false)
	}
}

// OpComplete implements OpHandler.
func (o *connOps) OpComplete(slot int, comp *backend.Completion) {
	c := (*Conn)(o)
	switch slot {
	case slotRecv:
		c.recvDone(comp)
	case slotSend:
		c.sendDone(comp)
	case slotZC:
		c.zcDone(comp)
	case slotCtl:
		c.ctlDone(comp)
	}
}

func (c *Conn) recvDone(comp *backend.Completion) {
	if len(comp.Control) > 0 && c.ctl != nil {
		drop := c.own.Closing() || c.lost || c.disconnecting
		trunc := comp.Flags&backend.FlagCtrunc != 0
		if !c.callProto(func() { c.ctl.ControlReceived(comp.Control, drop, trunc) }) {
			return
		}
	}
	if c.own.Closing() || c.lost {
		return
	}
	if c.read == ReadNone {
		c.hangupDone(comp)
		return
	}
	switch {
	case comp.Res > 0:
		data := comp.Buf
		if comp.Flags&backend.FlagBuffer == 0 {
			data = c.own.Op(slotRecv).Buf[:comp.Res]
		}
		if c.disconnecting {
			// Received before the recv's cancellation (LoseConnection)
			// took effect: the protocol gets nothing after LoseConnection.
		} else if c.paused || len(c.held) > 0 {
			c.held = append(c.held, data...)
		} else if c.read == ReadPlain {
			c.delivering = true
			c.deliver(data)
			c.delivering = false
		} else {
			c.keep.cur = comp
			c.deliver(data)
			c.keep.endDelivery()
		}
		if !c.paused {
			c.armRecv()
		}
	case comp.Res == 0:
		if c.paused || len(c.held) > 0 {
			// Bytes are held for a paused protocol: the end of stream
			// follows them, from deliverHeld after ResumeReading.
			c.readEOF = true
			return
		}
		c.eof()
	default:
		switch err := comp.Err(); err {
		case syscall.ENOBUFS, syscall.EINTR, syscall.EAGAIN:
			if err == syscall.ENOBUFS {
				c.loop.CountBufferExhausted()
			}
			// The pool ran dry (data stays in the socket) or a retryable
			// interruption: re-arm. Buffers return as soon as each
			// DataReceived returns, and kept ones (KeepReceived) are capped
			// at half the pool, so a dry pool is refilled by the
			// completions of this very batch and this does not spin.
			if !c.paused {
				c.armRecv()
			}
		case syscall.ECANCELED:
			if !c.paused {
				c.armRecv() // a Resume raced with the cancel of a Pause
			}
		default:
			call := "recv"
			if c.read == ReadPlain {
				call = "read"
			}
			c.teardown(transports.Lost(os.NewSyscallError(call, err)), false)
		}
	}
}

func (c *Conn) eof() {
	c.readEOF = true
	if c.half != nil && !c.disconnecting {
		c.callProto(c.half.ReadConnectionLost)
		if c.finSent && !c.own.Closing() {
			c.teardown(transports.ErrConnectionDone, false)
		}
		return
	}
	// Flush whatever was accepted for writing, then close cleanly.
	c.loseConnection(transports.ErrConnectionDone)
}

func (c *Conn) writable() bool {
	return !c.own.Closing() && !c.disconnecting && !c.writeClosed && !c.lost
}

// Write implements transports.Transport: p is copied; the caller may reuse it.
func (c *Conn) Write(p []byte) error {
	c.loop.AssertOnLoop("Transport.Write")
	if !c.writable() {
		return transports.ErrClosed
	}
	if len(p) == 0 {
		return nil
	}
	c.q.Write(p)
	c.queued()
	return nil
}

// WriteBuffers implements transports.Transport: every buffer is copied.
func (c *Conn) WriteBuffers(bufs [][]byte) error {
	c.loop.AssertOnLoop("Transport.WriteBuffers")
	if !c.writable() {
		return transports.ErrClosed
	}
	c.q.WriteBuffers(bufs)
	c.queued()
	return nil
}

// WriteOwned queues p without copying it: the connection owns p until done
// is called (on the loop) — after the kernel's zero-copy notification when a
// zero-copy send was used — and the caller must not modify p before then.
// Buffers of at least ZeroCopyMin bytes go out with zero-copy sends where the
// backend supports them and the peer is on another host (WriteSend only; to
// a peer on this host the kernel copies anyway). done (may be nil) receives nil once
// every byte was sent, or the connection's end reason if it ended first; it
// is called exactly once, never inside WriteOwned (for an empty p, on the
// next loop turn). Order with Write is kept. ErrClosed as for Write.
func (c *Conn) WriteOwned(p []byte, done func(error)) error {
	c.loop.AssertOnLoop("Transport.WriteOwned")
	if !c.writable() {
		return transports.ErrClosed
	}
	if !c.q.WriteOwned(p, done) {
		if done != nil {
			c.loop.CallLater(0, func() { done(nil) })
		}
		return nil
	}
	c.queued()
	return nil
}

func (c *Conn) queued() {
	if !c.flushQueued && !c.sendBusy {
		c.flushQueued = true
		c.loop.FlushLater((*connOps)(c))
	}
	c.flow.Update(c.q.Buffered())
}

// Buffered is the number of bytes accepted by Write, WriteBuffers and
// WriteOwned and not yet sent.
func (c *Conn) Buffered() int { return c.q.Buffered() }

// WriteOffset is the stream offset the next byte accepted for writing will
// have: the bytes sent so far plus Buffered (ControlHandler.SendControl is
// given the offsets the same way).
func (c *Conn) WriteOffset() int64 { return c.sentOff + int64(c.q.Buffered()) }

// Flush implements reactor.Flusher; the loop calls it before it waits.
func (o *connOps) Flush() {
	c := (*Conn)(o)
	c.flushQueued = false
	if !c.sendBusy && !c.own.Closing() {
		c.startSend()
	}
}

func (c *Conn) startSend() {
	if c.write == WritePlain {
		chunk, _ := c.q.Next()
		if chunk == nil {
			c.drained()
			return
		}
		if err := c.own.Submit(slotSend, backend.Op{Kind: backend.KindWrite, Buf: chunk}); err != nil {
			c.teardown(transports.Lost(err), false)
			return
		}
		c.sendBusy = true
		return
	}
	var ctl []byte
	limit := 0
	if c.ctl != nil && c.q.Buffered() > 0 {
		ctl, limit = c.ctl.SendControl(c.sentOff)
	}
	var chunk []byte
	var zc bool
	if ctl == nil && limit <= 0 && c.q.OwnedQueued() > 0 {
		// Owned buffers (forwarded received buffers above all) go out
		// gathered: one sendmsg for what one turn queued.
		if c.iov == nil {
			c.iov = make([][]byte, 0, maxGather)
		}
		c.iov, zc = c.q.NextBufs(c.iov[:0])
		if len(c.iov) > 1 {
			if err := c.own.Submit(slotSend, backend.Op{Kind: backend.KindSendv, Bufs: c.iov}); err != nil {
				c.teardown(transports.Lost(err), false)
				return
			}
			c.sendBusy = true
			return
		}
		if len(c.iov) == 1 {
			chunk = c.iov[0]
		}
	} else {
		chunk, zc = c.q.Next()
	}
	if chunk == nil {
		c.drained()
		return
	}
	if limit > 0 && len(chunk) > limit {
		chunk, zc = chunk[:limit], false
	}
	if ctl != nil {
		if err := c.own.Submit(slotSend, backend.Op{Kind: backend.KindSendMsg, Buf: chunk, Control: ctl}); err != nil {
			c.teardown(transports.Lost(err), false)
			return
		}
		c.sendBusy, c.ctlOut = true, true
		return
	}
	if zc && !c.localZC && !c.own.InFlight(slotZC) {
		if err := c.own.Submit(slotZC, backend.Op{Kind: backend.KindSendZC, Buf: chunk}); err == nil {
			c.sendBusy = true
			return
		}
	}
	if err := c.own.Submit(slotSend, backend.Op{Kind: backend.KindSend, Buf: chunk}); err != nil {
		c.teardown(transports.Lost(err), false)
		return
	}
	c.sendBusy = true
}

// sameHost reports whether the peer at remote is on this host (a loopback
// or this very address, or a UNIX socket). The kernel copies zero-copy data
// when it delivers it to a local socket (Documentation/networking/
// msg_zerocopy.rst, "Loopback"), so there a zero-copy send only adds the
// pinning of pages and a notification to a copy.
func sameHost(local, remote net.Addr) bool {
	switch r := remote.(type) {
	case *net.TCPAddr:
		if r.IP.IsLoopback() {
			return true
		}
		l, ok := local.(*net.TCPAddr)
		return ok && l.IP.Equal(r.IP)
	case *net.UnixAddr:
		return true
	}
	return false
}

// maxGather bounds the buffers of one vectored send (NextBufs).
const maxGather = 64

func (c *Conn) sendDone(comp *backend.Completion) {
	c.sendBusy = false
	if c.ctlOut {
		c.ctlOut = false
		if comp.Res > 0 {
			c.ctl.ControlSent()
		}
	}
	if comp.Res > 0 {
		c.sentOff += int64(comp.Res)
		c.loop.CountBytesOut(int(comp.Res))
	}
	if c.own.Closing() {
		return
	}
	if comp.Res < 0 {
		switch err := comp.Err(); err {
		case syscall.EINTR, syscall.EAGAIN:
			c.q.Sent(0)
			c.startSend()
		default:
			call := "send"
			if c.write == WritePlain {
				call = "write"
			}
			c.teardown(transports.Lost(os.NewSyscallError(call, err)), false)
		}
		return
	}
	c.q.Sent(int(comp.Res))
	c.afterSend()
}

// afterSend goes on with the queue after a send was accounted and tells the
// flow control the new count (a push producer resumes at the low watermark,
// a pull producer is asked for more once the queue drained).
func (c *Conn) afterSend() {
	c.startSend()
	if !c.lost {
		c.flow.Update(c.q.Buffered())
	}
}

func (c *Conn) zcDone(comp *backend.Completion) {
	if comp.Flags&backend.FlagNotif != 0 {
		c.q.Notified()
		return
	}
	c.sendBusy = false
	if comp.Res < 0 {
		c.q.SentZeroCopy(0, comp.More())
		if c.own.Closing() {
			return
		}
		switch err := comp.Err(); err {
		case syscall.EOPNOTSUPP, syscall.ENOMEM, syscall.ENOBUFS:
			c.q.ZeroCopyRefused() // the rest goes out with copying sends
			c.startSend()
		case syscall.EINTR, syscall.EAGAIN:
			c.startSend()
		default:
			c.teardown(transports.Lost(os.NewSyscallError("sendzc", err)), false)
		}
		return
	}
	c.q.SentZeroCopy(int(comp.Res), comp.More())
	c.sentOff += int64(comp.Res)
	c.loop.CountBytesOut(int(comp.Res))
	if c.own.Closing() {
		return
	}
	c.afterSend()
}

// drained runs when everything queued has been sent.
func (c *Conn) drained() {
	if c.disconnecting {
		c.finish()
		return
	}
	if c.writeClosed && !c.finSent && !c.own.InFlight(slotCtl) {
		c.endWrite()
	}
}

// endWrite ends the write direction (the WriteEnd hook).
func (c *Conn) endWrite() {
	if c.writeEnd == WriteEndClose {
		c.writeEnded(true)
		return
	}
	if err := c.own.Submit(slotCtl, backend.Op{Kind: backend.KindShutdown, How: unix.SHUT_WR}); err != nil {
		c.teardown(transports.Lost(err), false)
	}
}

func (c *Conn) ctlDone(comp *backend.Completion) {
	if c.own.Closing() || c.lost {
		return
	}
	if comp.Res < 0 {
		// No FIN went out (ENOTCONN: the peer reset the connection
		// meanwhile): the end is not clean, and no WriteConnectionLost.
		c.teardown(transports.Lost(os.NewSyscallError("shutdown", comp.Err())), false)
		return
	}
	c.writeEnded(false)
}

// writeEnded: the write direction has ended (the FIN went out, or, with
// fdGone, the descriptor is to be closed). LoseConnection closes now; else
// WriteConnectionLost, and the connection ends cleanly if the read
// direction has ended too (or cannot go on).
func (c *Conn) writeEnded(fdGone bool) {
	c.finSent = true
	if c.disconnecting {
		c.teardown(c.reason, false)
		return
	}
	if c.half != nil {
		c.callProto(c.half.WriteConnectionLost)
	}
	if (fdGone || c.readEOF) && !c.own.Closing() {
		c.teardown(transports.ErrConnectionDone, false)
	}
}

// finish ends a LoseConnection once the queue is empty: end of stream first,
// so the peer sees every byte followed by an orderly end, then close.
func (c *Conn) finish() {
	switch {
	case c.own.InFlight(slotCtl): // a CloseWrite shutdown is in flight; ctlDone goes on
	case c.finSent:
		c.teardown(c.reason, false)
	default:
		c.endWrite()
	}
}

// LoseConnection implements transports.Transport.
func (c *Conn) LoseConnection() error {
	c.loop.AssertOnLoop("Transport.LoseConnection")
	c.loseConnection(transports.ErrConnectionDone)
	return nil
}

func (c *Conn) loseConnection(reason error) {
	if c.own.Closing() || c.disconnecting || c.lost {
		return
	}
	c.disconnecting = true
	c.reason = reason
	// Stop reading (Twisted's stopReading in loseConnection): what the peer
	// sends from now on stays in the socket.
	c.own.Cancel(slotRecv)
	if !c.sendBusy && c.q.Buffered() == 0 {
		c.finish()
		return
	}
	if !c.sendBusy && !c.flushQueued {
		c.flushQueued = true
		c.loop.FlushLater((*connOps)(c))
	}
}

// Abort implements transports.Transport: the queue is dropped and, for a
// socket (WriteSend), the peer gets a reset; ConnectionLost
// (ErrConnectionLost wrapping ErrAborted) follows on a later loop turn.
func (c *Conn) Abort() error {
	c.loop.AssertOnLoop("Transport.Abort")
	c.teardown(transports.Lost(transports.ErrAborted), true)
	return nil
}

// CloseWrite implements transports.Transport: flush, then end the write
// direction (ConnConfig.WriteEnd); reading goes on.
func (c *Conn) CloseWrite() error {
	c.loop.AssertOnLoop("Transport.CloseWrite")
	if c.own.Closing() || c.lost {
		return transports.ErrClosed
	}
	if c.writeClosed || c.disconnecting {
		return nil
	}
	c.writeClosed = true
	if !c.sendBusy && c.q.Buffered() == 0 && !c.own.InFlight(slotCtl) {
		c.endWrite()
	}
	return nil
}

// Shutdown implements reactor.Resource: the loop is stopping. The first stage
// is LoseConnection: stop reading, flush, end of stream, close; the protocol
// gets ConnectionLost with a reason matching ErrConnectionDone and the loop's
// reason (reactor.ErrStopped). If that has not finished by the loop's
// DrainTimeout, the second stage (reason matching reactor.ErrDrainTimeout)
// aborts: the queue is dropped, the peer gets a reset, and the reason matches
// ErrConnectionLost and reactor.ErrDrainTimeout.
func (c *Conn) Shutdown(reason error) {
	if errors.Is(reason, reactor.ErrDrainTimeout) {
		c.teardown(transports.Lost(reason), true)
		return
	}
	c.loseConnection(transports.Done(reason))
}

// teardown starts closing: cancel in-flight ops, wait for their final
// completions, then close the descriptor, then ConnectionLost (closed).
func (c *Conn) teardown(reason error, abort bool) {
	if c.own.Closing() || c.lost {
		return
	}
	c.reason = reason
	if abort && c.write == WriteSend {
		_ = unix.SetsockoptLinger(c.own.Fd(), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	c.own.Close()
}

// closed runs once the descriptor is closed: ConnectionLost, exactly once, and
// the protocol is forgotten.
func (c *Conn) closed() {
	if c.lost {
		return
	}
	c.lost = true
	if c.track >= 0 { // started
		c.loop.CountConnClosed()
	}
	c.loop.Untrack(c.track)
	reason := c.reason
	if reason == nil {
		reason = transports.ErrConnectionDone
	}
	c.flow.Stop()
	if c.ctl != nil {
		c.ctl.ControlClosed()
	}
	proto := c.proto
	c.proto, c.half, c.held, c.rbuf = nil, nil, nil, nil
	c.q.Drop(reason)
	if proto != nil {
		c.callProtoQuiet(func() { proto.ConnectionLost(reason) })
	}
	if c.onLost != nil {
		c.onLost(c, reason)
	}
}

func (c *Conn) callProtoQuiet(f func()) {
	defer func() {
		if err := reactor.Recovered(recover()); err != nil {
			c.loop.ReportError(err)
		}
	}()
	f()
}

// LocalAddr implements transports.Transport.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr implements transports.Transport.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// PauseReading implements transports.Transport.
func (c *Conn) PauseReading() {
	c.loop.AssertOnLoop("Transport.PauseReading")
	if c.paused || c.own.Closing() || c.lost {
		return
	}
	c.paused = true
	c.own.Cancel(slotRecv)
}

// ResumeReading implements transports.Transport. Bytes that arrived while
// paused are delivered on the next loop turn, before any newer ones.
func (c *Conn) ResumeReading() {
	c.loop.AssertOnLoop("Transport.ResumeReading")
	if !c.paused || c.own.Closing() || c.lost || c.disconnecting {
		return // after LoseConnection, reading is stopped for good
	}
	c.paused = false
	if len(c.held) > 0 || c.readEOF {
		c.loop.CallLater(0, c.deliverHeld)
		return
	}
	c.armRecv()
}

// heldChunk bounds one DataReceived of bytes held while reading was paused.
const heldChunk = 64 << 10

func (c *Conn) deliverHeld() {
	// In slices of at most heldChunk, so a protocol that pauses again (its
	// write queue filled) is not handed everything held at once.
	for len(c.held) > 0 && !c.paused && !c.own.Closing() && !c.lost && !c.disconnecting {
		n := min(len(c.held), heldChunk)
		p := c.held[:n:n]
		if c.held = c.held[n:]; len(c.held) == 0 {
			c.held = nil
		}
		// Held bytes are never written again (later ones are appended
		// beyond them, or to a new array): keeping them costs nothing.
		c.keep.heldNow = true
		c.deliver(p)
		c.keep.endDelivery()
	}
	if c.paused || c.own.Closing() || c.lost {
		return
	}
	if c.readEOF {
		c.eof()
		return
	}
	c.armRecv()
}

// RegisterProducer implements transports.Transport (flow control by Flow:
// a push producer is paused above the high watermark and resumed at the low
// one; a pull producer is asked for more each time the queue drains).
// Errors: transports.ErrClosed once the connection is closing or gone,
// transports.ErrProducerRegistered, ErrNilProducer.
func (c *Conn) RegisterProducer(p transports.Producer, streaming bool) error {
	c.loop.AssertOnLoop("Transport.RegisterProducer")
	if c.lost || c.own.Closing() {
		return transports.ErrClosed
	}
	return c.flow.Register(p, streaming)
}

// UnregisterProducer implements transports.Transport.
func (c *Conn) UnregisterProducer() { c.flow.Unregister() }

// Clock implements transports.Transport.
func (c *Conn) Clock() transports.Clock { return c.loop }

// Reactor implements transports.Transport: the connection's loop as a
// transports.Reactor (stream.Reactor), so a protocol can open further
// connections (Twisted's transport.reactor). Loop only.
func (c *Conn) Reactor() transports.Reactor { return Reactor(c.loop) }

// Conn is a push producer (Twisted's transports are IPushProducers), so
// proxying one connection into another is two RegisterProducer calls:
// b.RegisterProducer(a, true) pauses reading a while b's write queue is above
// its high watermark.
var _ transports.PushProducer = (*Conn)(nil)

// PauseProducing implements transports.PushProducer: PauseReading.
func (c *Conn) PauseProducing() { c.PauseReading() }

// ResumeProducing implements transports.PushProducer: ResumeReading.
func (c *Conn) ResumeProducing() { c.ResumeReading() }

// StopProducing implements transports.Producer: the consumer is gone, so
// the connection is closed after its queue is flushed (LoseConnection).
func (c *Conn) StopProducing() { _ = c.LoseConnection() }

// Disconnecting reports whether LoseConnection or Abort has been called (or
// the connection is already gone): framers use it to stop delivering frames
// from the rest of a chunk.
func (c *Conn) Disconnecting() bool { return c.disconnecting || c.own.Closing() || c.lost }
