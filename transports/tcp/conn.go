package tcp

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/transports"
)

// Conn is the TCP transport of one connection. It implements
// transports.TCPTransport. Every method must be called on the connection's
// loop (from a Protocol callback or a function passed to the loop's Call).
//
// Reading: one multishot recv into the loop's provided buffers is in flight
// while reading is on. Writing: Write copies into an outbound queue; everything
// queued in one loop turn leaves in one send; at most one send is in flight and
// short sends are resumed from where they stopped. Closing: in-flight ops are
// cancelled and their final completions awaited before the descriptor is closed,
// so a completion can never reach a later connection that reuses the number.
type Conn struct {
	loop   *reactor.Loop
	fd     int32
	proto  transports.Protocol
	half   transports.HalfCloseableProtocol
	local  net.Addr
	remote net.Addr
	wm     transports.Watermarks
	onLost func(c *Conn, reason error)
	track  int

	recvOp backend.Op
	sendOp backend.Op
	ctlOp  backend.Op
	recvOn bool
	sendOn bool
	ctlOn  bool

	zcOp    backend.Op
	zcOn    bool        // the zero-copy op is owned by the backend (until its notification)
	zcFor   *ownedBuf   // the buffer zcOp sends
	sendZ   *ownedBuf   // the owned buffer sendOp/zcOp is sending; nil: copied bytes
	zq      []*ownedBuf // owned buffers not fully sent, in order
	zqLen   int         // their unsent bytes
	copyIn  int64       // copied bytes accepted so far
	copyOut int64       // copied bytes sent so far

	pending     []byte // queued by Write, not yet handed to the kernel
	sending     []byte // handed to the kernel, sendOff bytes of it sent
	sendOff     int
	flushQueued bool

	held    []byte // received while reading was paused
	paused  bool
	readEOF bool

	writeClosed   bool // CloseWrite asked
	finSent       bool
	disconnecting bool // LoseConnection asked: flush, then close
	closing       bool // teardown begun
	closeQueued   bool
	lost          bool
	reason        error

	producer       transports.Producer
	streaming      bool
	producerPaused bool
}

var _ transports.TCPTransport = (*Conn)(nil)

func newConn(loop *reactor.Loop, fd int, wm transports.Watermarks) *Conn {
	c := &Conn{loop: loop, fd: int32(fd), wm: wm.WithDefaults(), track: -1}
	return c
}

// start binds proto to the connection, calls ConnectionMade and starts reading.
func (c *Conn) start(proto transports.Protocol) {
	c.proto = proto
	c.half, _ = proto.(transports.HalfCloseableProtocol)
	c.track = c.loop.Track(c)
	if !c.callProto(func() { proto.ConnectionMade(c) }) {
		return
	}
	if !c.closing && !c.paused && !c.disconnecting {
		c.armRecv()
	}
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

func (c *Conn) deliver(p []byte) {
	defer func() {
		if err := reactor.Recovered(recover()); err != nil {
			c.loop.ReportError(err)
			c.teardown(transports.Lost(err), true)
		}
	}()
	c.proto.DataReceived(p)
}

func (c *Conn) armRecv() {
	if c.recvOn || c.closing || c.disconnecting {
		return // after LoseConnection, reading is stopped for good
	}
	c.recvOp = backend.Op{Kind: backend.KindRecv, Fd: c.fd, Multishot: true, BufferSelect: true}
	if err := c.loop.Submit(&c.recvOp, c); err != nil {
		c.teardown(transports.Lost(err), false)
		return
	}
	c.recvOn = true
}

// Complete implements reactor.Handler.
func (c *Conn) Complete(op *backend.Op, comp *backend.Completion) {
	switch op {
	case &c.recvOp:
		c.recvDone(comp)
	case &c.sendOp:
		c.sendDone(comp)
	case &c.ctlOp:
		c.ctlDone(comp)
	case &c.zcOp:
		c.zcDone(comp)
	}
}

func (c *Conn) recvDone(comp *backend.Completion) {
	if !comp.More() {
		c.recvOn = false
	}
	if c.closing || c.lost {
		c.maybeClose()
		return
	}
	switch {
	case comp.Res > 0:
		data := comp.Buf
		if comp.Flags&backend.FlagBuffer == 0 {
			data = c.recvOp.Buf[:comp.Res]
		}
		if c.disconnecting {
			// Received before the recv's cancellation (LoseConnection)
			// took effect: the protocol gets nothing after LoseConnection.
		} else if c.paused || len(c.held) > 0 {
			c.held = append(c.held, data...)
		} else {
			c.deliver(data)
		}
		if !c.recvOn && !c.paused {
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
			// The pool ran dry (data stays in the socket) or a retryable
			// interruption: re-arm. Buffers return as soon as each
			// DataReceived returns, so this does not spin.
			if !c.recvOn && !c.paused {
				c.armRecv()
			}
		case syscall.ECANCELED:
			if !c.recvOn && !c.paused {
				c.armRecv() // a Resume raced with the cancel of a Pause
			}
		default:
			c.teardown(transports.Lost(os.NewSyscallError("recv", err)), false)
		}
	}
}

func (c *Conn) eof() {
	c.readEOF = true
	if c.half != nil && !c.disconnecting {
		c.callProto(c.half.ReadConnectionLost)
		if c.finSent && !c.closing {
			c.teardown(transports.ErrConnectionDone, false)
		}
		return
	}
	// Flush whatever was accepted for writing, then close cleanly.
	c.loseConnection(transports.ErrConnectionDone)
}

// Write implements transports.Transport: p is copied; the caller may reuse it.
func (c *Conn) Write(p []byte) error {
	if c.closing || c.disconnecting || c.writeClosed || c.lost {
		return transports.ErrClosed
	}
	if len(p) == 0 {
		return nil
	}
	c.pending = append(c.pending, p...)
	c.copyIn += int64(len(p))
	c.queued()
	return nil
}

// WriteBuffers implements transports.Transport: every buffer is copied.
func (c *Conn) WriteBuffers(bufs [][]byte) error {
	if c.closing || c.disconnecting || c.writeClosed || c.lost {
		return transports.ErrClosed
	}
	for _, b := range bufs {
		c.pending = append(c.pending, b...)
		c.copyIn += int64(len(b))
	}
	c.queued()
	return nil
}

func (c *Conn) queued() {
	if !c.flushQueued && !c.sendOn {
		c.flushQueued = true
		c.loop.FlushLater(c)
	}
	if c.producer != nil && c.streaming && !c.producerPaused && c.Buffered() > c.wm.High {
		c.producerPaused = true
		if pp, ok := c.producer.(transports.PushProducer); ok {
			c.callProto(pp.PauseProducing)
		}
	}
}

// Buffered is the number of bytes accepted by Write and not yet sent.
func (c *Conn) Buffered() int { return len(c.pending) + len(c.sending) - c.sendOff + c.zqLen }

// Flush implements reactor.Flusher; the loop calls it before it waits.
func (c *Conn) Flush() {
	c.flushQueued = false
	if !c.sendOn && !c.closing {
		c.startSend()
	}
}

func (c *Conn) startSend() {
	limit := -1
	if len(c.zq) > 0 {
		z := c.zq[0]
		if c.copyOut >= z.copyBefore {
			c.sendOwned(z)
			return
		}
		limit = int(z.copyBefore - c.copyOut)
	}
	if c.sendOff >= len(c.sending) {
		if len(c.pending) == 0 {
			c.drained()
			return
		}
		c.sending, c.pending = c.pending, c.sending[:0]
		c.sendOff = 0
	}
	b := c.sending[c.sendOff:]
	if limit >= 0 && len(b) > limit {
		b = b[:limit]
	}
	c.sendZ = nil
	c.sendOp = backend.Op{Kind: backend.KindSend, Fd: c.fd, Buf: b}
	if err := c.loop.Submit(&c.sendOp, c); err != nil {
		c.teardown(transports.Lost(err), false)
		return
	}
	c.sendOn = true
}

func (c *Conn) sendDone(comp *backend.Completion) {
	c.sendOn = false
	if c.closing {
		c.maybeClose()
		return
	}
	if comp.Res < 0 {
		switch err := comp.Err(); err {
		case syscall.EINTR, syscall.EAGAIN:
			c.startSend()
		default:
			c.teardown(transports.Lost(os.NewSyscallError("send", err)), false)
		}
		return
	}
	c.sent(int(comp.Res))
	c.startSend()
}

// zeroCopyMin is the size from which an owned buffer goes out with SEND_ZC;
// below it a copying send is cheaper.
const zeroCopyMin = 16 << 10

func (c *Conn) sendOwned(z *ownedBuf) {
	c.sendZ = z
	rest := z.buf[z.off:]
	if !c.zcOn && len(rest) >= zeroCopyMin {
		c.zcOp = backend.Op{Kind: backend.KindSendZC, Fd: c.fd, Buf: rest}
		if err := c.loop.Submit(&c.zcOp, c); err == nil {
			c.zcOn, c.zcFor, c.sendOn = true, z, true
			return
		}
	}
	c.sendOp = backend.Op{Kind: backend.KindSend, Fd: c.fd, Buf: rest}
	if err := c.loop.Submit(&c.sendOp, c); err != nil {
		c.teardown(transports.Lost(err), false)
		return
	}
	c.sendOn = true
}

// sent accounts n bytes sent by sendOp or zcOp.
func (c *Conn) sent(n int) {
	z := c.sendZ
	if z == nil {
		c.sendOff += n
		c.copyOut += int64(n)
		return
	}
	z.off += n
	c.zqLen -= n
	if z.off == len(z.buf) {
		c.zq[0] = nil
		c.zq = c.zq[1:]
		if len(c.zq) == 0 {
			c.zq = c.zq[:0:0]
		}
		c.sendZ = nil
		if !z.notifPending {
			z.release(nil)
		}
	}
}

func (c *Conn) zcDone(comp *backend.Completion) {
	if comp.Flags&backend.FlagNotif != 0 {
		c.zcOn = false
		z := c.zcFor
		c.zcFor = nil
		if z != nil {
			z.notifPending = false
			if z.off == len(z.buf) {
				z.release(nil)
			}
		}
		if c.closing {
			c.maybeClose()
		}
		return
	}
	c.sendOn = false
	if comp.More() {
		c.zcFor.notifPending = true
	} else {
		c.zcOn = false
		c.zcFor = nil
	}
	if c.closing {
		c.maybeClose()
		return
	}
	if comp.Res < 0 {
		switch err := comp.Err(); err {
		case syscall.EINTR, syscall.EAGAIN, syscall.EOPNOTSUPP, syscall.ENOMEM, syscall.ENOBUFS:
			c.startSend() // retried, as a copying send when zero copy is refused
		default:
			c.teardown(transports.Lost(os.NewSyscallError("sendzc", err)), false)
		}
		return
	}
	c.sent(int(comp.Res))
	c.startSend()
}

// ownedBuf is a caller-owned buffer queued by WriteOwned.
type ownedBuf struct {
	buf          []byte
	off          int
	copyBefore   int64 // copied bytes queued before it
	done         func(error)
	notifPending bool
	released     bool
}

func (z *ownedBuf) release(err error) {
	if z.released {
		return
	}
	z.released = true
	if z.done != nil {
		z.done(err)
	}
}

// WriteOwned queues p without copying it: the connection owns p until done
// is called (on the loop) — after the kernel's zero-copy notification when
// SEND_ZC was used — and the caller must not modify p before then. Buffers of
// at least 16 KiB go out with zero-copy sends where the backend supports them.
// done receives nil once every byte was sent, or the connection's end reason
// if it ended first; it is called exactly once. Order with Write is kept.
func (c *Conn) WriteOwned(p []byte, done func(error)) error {
	if c.closing || c.disconnecting || c.writeClosed || c.lost {
		return transports.ErrClosed
	}
	if len(p) == 0 {
		if done != nil {
			c.loop.CallLater(0, func() { done(nil) })
		}
		return nil
	}
	c.zq = append(c.zq, &ownedBuf{buf: p, copyBefore: c.copyIn, done: done})
	c.zqLen += len(p)
	c.queued()
	return nil
}

// drained runs when everything queued has been sent.
func (c *Conn) drained() {
	c.sending, c.sendOff = c.sending[:0], 0
	if cap(c.sending) > 4<<20 {
		c.sending = nil // do not keep a huge buffer for an idle connection
	}
	if c.disconnecting {
		c.finish()
		return
	}
	if c.writeClosed && !c.finSent && !c.ctlOn {
		c.submitCtl(backend.KindShutdown)
	}
	if c.producer != nil {
		if c.streaming {
			if c.producerPaused {
				c.producerPaused = false
				if pp, ok := c.producer.(transports.PushProducer); ok {
					c.callProto(pp.ResumeProducing)
				}
			}
		} else if pp, ok := c.producer.(transports.PullProducer); ok {
			c.callProto(pp.ResumeProducing)
		}
	}
}

func (c *Conn) submitCtl(kind backend.Kind) {
	c.ctlOp = backend.Op{Kind: kind, Fd: c.fd, How: unix.SHUT_WR}
	if err := c.loop.Submit(&c.ctlOp, c); err != nil {
		if kind == backend.KindClose {
			// The backend refused (it is closing): close directly and report
			// on a later turn.
			_ = unix.Close(int(c.fd))
			c.loop.CallLater(0, c.lose)
			return
		}
		c.teardown(transports.Lost(err), false)
		return
	}
	c.ctlOn = true
}

func (c *Conn) ctlDone(comp *backend.Completion) {
	c.ctlOn = false
	switch c.ctlOp.Kind {
	case backend.KindShutdown:
		if c.closing {
			c.maybeClose()
			return
		}
		if comp.Res < 0 {
			// No FIN went out (ENOTCONN: the peer reset the connection
			// meanwhile): the end is not clean, and no WriteConnectionLost.
			c.teardown(transports.Lost(os.NewSyscallError("shutdown", comp.Err())), false)
			return
		}
		c.finSent = true
		if c.disconnecting {
			c.teardown(c.reason, false)
			return
		}
		if c.half != nil {
			c.callProto(c.half.WriteConnectionLost)
		}
		if c.readEOF && !c.closing {
			c.teardown(transports.ErrConnectionDone, false)
		}
	case backend.KindClose:
		c.lose()
	}
}

// finish ends a LoseConnection once the queue is empty: FIN first, so the
// peer sees every byte followed by an orderly end, then close.
func (c *Conn) finish() {
	switch {
	case c.ctlOn: // a CloseWrite shutdown is in flight; ctlDone goes on
	case c.finSent:
		c.teardown(c.reason, false)
	default:
		c.submitCtl(backend.KindShutdown)
	}
}

// LoseConnection implements transports.Transport.
func (c *Conn) LoseConnection() error {
	c.loseConnection(transports.ErrConnectionDone)
	return nil
}

func (c *Conn) loseConnection(reason error) {
	if c.closing || c.disconnecting || c.lost {
		return
	}
	c.disconnecting = true
	c.reason = reason
	if c.recvOn {
		// Stop reading (Twisted's stopReading in loseConnection): what the
		// peer sends from now on stays in the socket.
		c.loop.Cancel(c.recvOp.Token)
	}
	if !c.sendOn && c.Buffered() == 0 {
		c.finish()
		return
	}
	if !c.sendOn && !c.flushQueued {
		c.flushQueued = true
		c.loop.FlushLater(c)
	}
}

// Abort implements transports.Transport: the queue is dropped and the peer gets
// a reset; ConnectionLost (ErrConnectionLost wrapping ErrAborted) follows on a
// later loop turn.
func (c *Conn) Abort() error {
	c.teardown(transports.Lost(transports.ErrAborted), true)
	return nil
}

// CloseWrite implements transports.Transport: flush, then FIN; reading goes on.
func (c *Conn) CloseWrite() error {
	if c.closing || c.lost {
		return transports.ErrClosed
	}
	if c.writeClosed || c.disconnecting {
		return nil
	}
	c.writeClosed = true
	if !c.sendOn && c.Buffered() == 0 && !c.ctlOn {
		c.submitCtl(backend.KindShutdown)
	}
	return nil
}

// Shutdown implements reactor.Resource: the loop is stopping. The first stage
// is LoseConnection: stop reading, flush, FIN, close; the protocol gets
// ConnectionLost with a reason matching ErrConnectionDone and the loop's
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
// completions, then close the descriptor, then ConnectionLost.
func (c *Conn) teardown(reason error, abort bool) {
	if c.closing || c.lost {
		return
	}
	c.closing = true
	c.reason = reason
	if abort {
		_ = unix.SetsockoptLinger(int(c.fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		c.pending, c.sending, c.sendOff = nil, nil, 0
	}
	if c.recvOn {
		c.loop.Cancel(c.recvOp.Token)
	}
	if c.sendOn {
		c.loop.Cancel(c.sendOp.Token)
	}
	if c.zcOn {
		c.loop.Cancel(c.zcOp.Token)
	}
	c.maybeClose()
}

func (c *Conn) maybeClose() {
	if !c.closing || c.recvOn || c.sendOn || c.zcOn || c.ctlOn || c.closeQueued {
		return
	}
	c.closeQueued = true
	c.submitCtl(backend.KindClose)
}

// lose delivers ConnectionLost, exactly once, and forgets the protocol.
func (c *Conn) lose() {
	if c.lost {
		return
	}
	c.lost = true
	c.loop.Untrack(c.track)
	reason := c.reason
	if reason == nil {
		reason = transports.ErrConnectionDone
	}
	if c.producer != nil {
		p := c.producer
		c.producer = nil
		c.callProtoQuiet(p.StopProducing)
	}
	proto := c.proto
	c.proto, c.half = nil, nil
	c.pending, c.sending, c.held = nil, nil, nil
	for _, z := range c.zq {
		z.release(reason)
	}
	c.zq, c.zqLen, c.sendZ = nil, 0, nil
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
	if c.paused || c.closing || c.lost {
		return
	}
	c.paused = true
	if c.recvOn {
		c.loop.Cancel(c.recvOp.Token)
	}
}

// ResumeReading implements transports.Transport. Bytes that arrived while
// paused are delivered on the next loop turn, before any newer ones.
func (c *Conn) ResumeReading() {
	if !c.paused || c.closing || c.lost || c.disconnecting {
		return // after LoseConnection, reading is stopped for good
	}
	c.paused = false
	if len(c.held) > 0 || c.readEOF {
		c.loop.CallLater(0, c.deliverHeld)
		return
	}
	c.armRecv()
}

func (c *Conn) deliverHeld() {
	for len(c.held) > 0 && !c.paused && !c.closing && !c.lost && !c.disconnecting {
		p := c.held
		c.held = nil
		c.deliver(p)
	}
	if !c.paused && !c.closing && !c.lost && c.readEOF {
		c.eof()
		return
	}
	if !c.paused && !c.closing && !c.lost {
		c.armRecv()
	}
}

// RegisterProducer implements transports.Transport.
func (c *Conn) RegisterProducer(p transports.Producer, streaming bool) error {
	if c.lost || c.closing {
		return transports.ErrClosed
	}
	if c.producer != nil {
		return transports.ErrProducerRegistered
	}
	c.producer, c.streaming, c.producerPaused = p, streaming, false
	if !streaming {
		if pp, ok := p.(transports.PullProducer); ok {
			c.loop.CallLater(0, func() {
				if c.producer == p && !c.closing {
					c.callProto(pp.ResumeProducing)
				}
			})
		}
	} else if c.Buffered() > c.wm.High {
		c.producerPaused = true
		if pp, ok := p.(transports.PushProducer); ok {
			c.callProto(pp.PauseProducing)
		}
	}
	return nil
}

// UnregisterProducer implements transports.Transport.
func (c *Conn) UnregisterProducer() { c.producer = nil }

// Clock implements transports.Transport.
func (c *Conn) Clock() transports.Clock { return c.loop }

// SetNoDelay implements transports.TCPTransport.
func (c *Conn) SetNoDelay(on bool) error {
	if c.lost || c.closing {
		return transports.ErrClosed
	}
	v := 0
	if on {
		v = 1
	}
	return os.NewSyscallError("setsockopt", unix.SetsockoptInt(int(c.fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, v))
}

// SetKeepAlive implements transports.TCPTransport.
func (c *Conn) SetKeepAlive(on bool, idle time.Duration) error {
	if c.lost || c.closing {
		return transports.ErrClosed
	}
	return setKeepAlive(int(c.fd), on, idle)
}

func setKeepAlive(fd int, on bool, idle time.Duration) error {
	v := 0
	if on {
		v = 1
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, v); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	if on && idle > 0 {
		secs := int((idle + time.Second - 1) / time.Second)
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	return nil
}

// Disconnecting reports whether LoseConnection or Abort has been called (or
// the connection is already gone): framers use it to stop delivering frames
// from the rest of a chunk.
func (c *Conn) Disconnecting() bool { return c.disconnecting || c.closing || c.lost }
