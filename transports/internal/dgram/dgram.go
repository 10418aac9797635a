// Package dgram is the one datagram-socket machinery behind gyre's datagram
// transports (transports/udp, transports/unixgram): a bound socket driven by
// the loop that receives with one multishot recvmsg into the loop's provided
// buffers (or single-shot into its own buffer for a large MaxPacketSize),
// delivers each datagram to a transports.DatagramProtocolOf, sends with
// sendmsg and queues, up to a bound, what meets a full socket buffer. The
// address family is a Codec: the engine itself only sees raw sockaddrs.
package dgram

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// Codec converts one family's addresses (A) to and from raw sockaddrs.
// Its methods run on the loop (Decode once per datagram: it must not
// allocate in the steady state).
type Codec[A transports.DatagramAddr] interface {
	// Decode is the sender's address in name, a sockaddr as recvmsg wrote
	// it (Decode may modify those bytes).
	Decode(name []byte) A
	// Encode fills raw with a (never the zero A) for sendmsg or connect
	// and returns its length, or an error wrapping
	// transports.ErrBadOptions for an address the socket cannot reach.
	Encode(a A, raw *unix.RawSockaddrAny) (uint32, error)
	// Local is fd's bound address (getsockname).
	Local(fd int) A
}

// Error is an error of a datagram port that stands for a transports
// sentinel: it reads "gyre/NET: [OP: ]MSG" (MSG defaults to the sentinel's
// text less its "gyre: " prefix, so the prefix is not repeated) and
// errors.Is matches Sentinel and Cause (the errno, when there is one).
type Error struct {
	Net, Op, Msg string
	Sentinel     error
	Cause        error
}

func (e *Error) Error() string {
	s := "gyre/" + e.Net + ": "
	if e.Op != "" {
		s += e.Op + ": "
	}
	if e.Msg != "" {
		return s + e.Msg
	}
	return s + strings.TrimPrefix(e.Sentinel.Error(), "gyre: ")
}

func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Sentinel}
	}
	return []error{e.Sentinel, e.Cause}
}

// Also is an error that reads as Err and also matches Sentinel (e.g. a
// connect's "connect: connection refused" that is also
// transports.ErrConnectionRefused), for errors already inside a
// *net.OpError that names the transport and address.
type Also struct{ Err, Sentinel error }

func (e *Also) Error() string   { return e.Err.Error() }
func (e *Also) Unwrap() []error { return []error{e.Sentinel, e.Err} }

// Config shapes a Port.
type Config struct {
	// Net names the transport in errors ("udp", "unixgram").
	Net string
	// MaxPacketSize, QueueDatagrams, QueueBytes: as udp.ListenOptions.
	MaxPacketSize, QueueDatagrams, QueueBytes int
	// ControlRoom is the room for the control messages received with each
	// datagram (0: none; the kernel then discards them, closing any
	// descriptors, and flags MSG_CTRUNC).
	ControlRoom int
	// Control, with ControlRoom, is called with the control messages of
	// each received datagram (ctl valid during the call only) before it is
	// delivered (deliver true), or with deliver false when the datagram is
	// not delivered (truncated, or the port is stopping): whatever the
	// messages hold (descriptors) must then be released. ctrunc: some did
	// not fit ControlRoom.
	Control func(ctl []byte, ctrunc, deliver bool)
	// Closing, if set, runs once inside StopListening (the socket file is
	// removed there, so the address can be bound again once it returns).
	Closing func()
	// NoAddress is Write's error for the zero address on a port that is
	// not connected; nil: transports.ErrNotConnected. It must match
	// transports.ErrNotConnected.
	NoAddress error
}

// MaxPacketSize is the largest datagram a port on loop receives whole with
// the multishot fast path with controlRoom bytes of control room.
func MaxPacketSize(loop *reactor.Loop, controlRoom int) int {
	op := backend.Op{Kind: backend.KindRecvMsg, Addr: new(unix.RawSockaddrAny)}
	if controlRoom > 0 {
		op.Control = make([]byte, controlRoom)
	}
	room, _, _ := backend.MultishotRecvMsgRoom(&op, loop.Sizes().BufferSize)
	return room
}

// Op slots of the port's stream.Owner.
const (
	slotRecv = 0
	slotPoll = 1
)

type queued struct {
	buf     []byte
	addr    unix.RawSockaddrAny
	alen    uint32
	ctl     []byte // control messages to send with it
	release func() // releases what ctl holds (dup'ed descriptors), sent or not
}

// Port is one datagram socket; it implements
// transports.DatagramTransportOf[A] (and stream.OpHandler and
// reactor.Resource for the loop). Loop goroutine only, except New.
type Port[A transports.DatagramAddr, C Codec[A]] struct {
	loop    *reactor.Loop
	own     stream.Owner
	codec   C
	cfg     Config
	proto   transports.DatagramProtocolOf[A]
	trunc   transports.TruncatedReceiverOf[A]
	local   A
	res     int // loop.Track handle
	fd      int
	started bool

	multi   bool
	rbuf    []byte // single-shot receive buffer (MaxPacketSize > the room)
	rctl    []byte // control room of the receive op
	from    unix.RawSockaddrAny
	paused  bool
	stopped bool
	held    []heldDatagram[A] // received after PauseReading (the cancel raced), delivered at ResumeReading
	peer    A                 // after Connect
	nobufs  int               // consecutive ENOBUFS without a datagram
	done    []func()

	// Send path scratch (no allocation per Write).
	wraw unix.RawSockaddrAny
	wmsg unix.Msghdr
	wiov unix.Iovec

	q               []queued // FIFO, q[qHead:]
	qHead, qBytes   int
	qMax, qMaxBytes int
	free            [][]byte
	retry           clock.Call    // a flush after a spurious POLLOUT
	backoff         time.Duration // its delay, doubled while nothing goes
	wakes           int           // flushes a POLLOUT or retry started (tests)
	stats           transports.DatagramStats
}

// New takes fd (bound, non-blocking, close-on-exec; owned from now on, also
// on error; already connected to peer unless peer is the zero A) and starts delivering its datagrams to proto: StartProtocol and
// the first receive run on the loop's next turn. Goroutine-safe. Errors: bad
// options (wrapping transports.ErrBadOptions), or the loop stopped.
func New[A transports.DatagramAddr, C Codec[A]](loop *reactor.Loop, fd int, proto transports.DatagramProtocolOf[A], codec C, peer A, cfg Config) (*Port[A, C], error) {
	if cfg.MaxPacketSize < 0 || cfg.MaxPacketSize > 65535 {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("gyre/%s: MaxPacketSize %d (0..65535): %w", cfg.Net, cfg.MaxPacketSize, transports.ErrBadOptions)
	}
	p := &Port[A, C]{loop: loop, proto: proto, codec: codec, cfg: cfg, fd: fd, peer: peer}
	p.trunc, _ = proto.(transports.TruncatedReceiverOf[A])
	p.local = codec.Local(fd)
	p.qMax, p.qMaxBytes = cfg.QueueDatagrams, cfg.QueueBytes
	if p.qMax <= 0 {
		p.qMax = 256
	}
	if p.qMaxBytes <= 0 {
		p.qMaxBytes = 1 << 20
	}
	if cfg.ControlRoom > 0 {
		p.rctl = make([]byte, cfg.ControlRoom)
	}
	room := MaxPacketSize(loop, cfg.ControlRoom)
	p.multi = room > 0 && (cfg.MaxPacketSize == 0 || cfg.MaxPacketSize <= room)
	if !p.multi {
		n := cfg.MaxPacketSize
		if n == 0 {
			n = 65535
		}
		p.rbuf = make([]byte, n)
	}
	if err := loop.Call(p.start); err != nil {
		_ = unix.Close(fd)
		if cfg.Closing != nil {
			cfg.Closing()
		}
		return nil, fmt.Errorf("gyre/%s: start: %w", cfg.Net, err)
	}
	return p, nil
}

// start runs on the loop's next turn after New: the port is tracked,
// receiving starts and the protocol is started.
func (p *Port[A, C]) start() {
	if p.stopped { // StopListening came first: StartProtocol never ran
		_ = unix.Close(p.fd)
		p.runDone()
		return
	}
	p.started = true
	p.own.Init(p.loop, p.fd, p, p.closed)
	p.res = p.loop.Track(p)
	p.proto.StartProtocol(p)
	p.arm()
}

// Fd is the socket while the port is open, else -1.
func (p *Port[A, C]) Fd() int {
	if p.stopped {
		return -1
	}
	return p.fd
}

// Loop is the port's loop.
func (p *Port[A, C]) Loop() *reactor.Loop { return p.loop }

// arm submits the receive unless it is in flight, paused or stopped, or
// held datagrams are still to be delivered first.
func (p *Port[A, C]) arm() {
	if p.paused || p.stopped || !p.started || len(p.held) > 0 || p.own.InFlight(slotRecv) {
		return
	}
	op := backend.Op{Kind: backend.KindRecvMsg, Addr: &p.from, Control: p.rctl}
	if p.multi {
		op.Multishot, op.BufferSelect = true, true
	} else {
		op.Buf = p.rbuf
	}
	if err := p.own.Submit(slotRecv, op); err != nil && !errors.Is(err, transports.ErrClosed) {
		p.loop.ReportError(fmt.Errorf("gyre/%s: %v: receive: %w", p.cfg.Net, p.local, err))
	}
}

// OpComplete implements stream.OpHandler.
func (p *Port[A, C]) OpComplete(slot int, c *backend.Completion) {
	if slot == slotPoll {
		if c.Res >= 0 && !p.stopped {
			p.flushQueue(true)
		}
		return
	}
	if c.Res >= 0 {
		switch {
		case p.stopped:
			p.control(c, false)
		case p.paused || len(p.held) > 0:
			p.nobufs = 0
			p.hold(c)
		default:
			p.nobufs = 0
			p.deliver(c)
		}
	}
	if c.More() {
		return
	}
	switch {
	case c.Res >= 0, c.Res == -int32(unix.ECANCELED):
		p.arm()
	case c.Res == -int32(unix.ECONNREFUSED):
		// ICMP port unreachable for an earlier datagram of a connected
		// socket: the socket keeps working.
		p.arm()
		if !p.stopped && p.peer != *new(A) {
			p.refused()
		}
	case c.Res == -int32(unix.EINTR), c.Res == -int32(unix.EAGAIN):
		// Retryable: nothing was received and nothing is wrong.
		p.arm()
	case c.Res == -int32(unix.ENOBUFS):
		// The pool ran dry; the datagrams wait in the socket. Re-arm at
		// once the first time, then give the pool a moment.
		p.stats.NoBuffers++
		p.nobufs++
		if p.nobufs == 1 {
			p.arm()
		} else {
			p.loop.CallLater(time.Millisecond, p.arm)
		}
	default:
		p.loop.ReportError(fmt.Errorf("gyre/%s: %v: receive: %w", p.cfg.Net, p.local, syscall.Errno(-c.Res)))
		p.loop.CallLater(10*time.Millisecond, p.arm)
	}
}

// control hands c's control messages to Config.Control.
func (p *Port[A, C]) control(c *backend.Completion, deliver bool) {
	if p.cfg.Control != nil && (len(c.Control) > 0 || c.Flags&backend.FlagCtrunc != 0) {
		p.cfg.Control(c.Control, c.Flags&backend.FlagCtrunc != 0, deliver)
	}
}

// heldDatagram is a datagram received while reading was paused (the
// receive's cancel raced with its arrival): copied, delivered in order at
// ResumeReading. Rare, so the copy's allocation does not matter.
type heldDatagram[A comparable] struct {
	data, ctl []byte
	ctrunc    bool
	addr      A
}

// hold keeps c for delivery after ResumeReading (PauseReading's contract:
// no DatagramReceived while paused, nothing lost).
func (p *Port[A, C]) hold(c *backend.Completion) {
	if c.Flags&backend.FlagTrunc != 0 {
		p.deliver(c) // a truncation report: counted and reported, nothing delivered
		return
	}
	data := c.Buf
	if !p.multi {
		data = p.rbuf[:c.Res]
	}
	h := heldDatagram[A]{data: append([]byte(nil), data...), addr: p.codec.Decode(c.Name), ctrunc: c.Flags&backend.FlagCtrunc != 0}
	if len(c.Control) > 0 {
		h.ctl = append([]byte(nil), c.Control...)
	}
	p.held = append(p.held, h)
}

// deliverHeld delivers the held datagrams in order while reading stays on,
// then re-arms the receive.
func (p *Port[A, C]) deliverHeld() {
	for len(p.held) > 0 && !p.paused && !p.stopped {
		h := p.held[0]
		p.held[0] = heldDatagram[A]{}
		p.held = p.held[1:]
		func() {
			defer func() {
				if err := reactor.Recovered(recover()); err != nil {
					p.loop.ReportError(err)
				}
			}()
			if p.cfg.Control != nil && (len(h.ctl) > 0 || h.ctrunc) {
				p.cfg.Control(h.ctl, h.ctrunc, true)
			}
			p.stats.Received++
			p.proto.DatagramReceived(h.data, h.addr)
		}()
	}
	if len(p.held) == 0 {
		p.held = nil
	}
	if p.stopped {
		for _, h := range p.held {
			if p.cfg.Control != nil && len(h.ctl) > 0 {
				p.cfg.Control(h.ctl, h.ctrunc, false) // descriptors closed
			}
		}
		p.held = nil
		return
	}
	if !p.paused {
		p.arm()
	}
}

// deliver hands one received datagram to the protocol; a panic there is
// reported and receiving goes on (Twisted logs and continues).
func (p *Port[A, C]) deliver(c *backend.Completion) {
	defer func() {
		if err := reactor.Recovered(recover()); err != nil {
			p.loop.ReportError(err)
		}
	}()
	if c.Flags&backend.FlagTrunc != 0 {
		p.control(c, false)
		p.stats.Truncated++
		if p.trunc != nil {
			p.trunc.DatagramTruncated(int(c.Res), p.codec.Decode(c.Name))
		}
		return
	}
	addr := p.codec.Decode(c.Name)
	p.control(c, true)
	data := c.Buf
	if !p.multi {
		data = p.rbuf[:c.Res]
	}
	p.stats.Received++
	p.proto.DatagramReceived(data, addr)
}

func (p *Port[A, C]) refused() {
	defer func() {
		if err := reactor.Recovered(recover()); err != nil {
			p.loop.ReportError(err)
		}
	}()
	p.proto.ConnectionRefused()
}

// sendNow is one non-blocking sendmsg of b (with control messages ctl) to
// raw[:alen] (alen 0: the peer).
func (p *Port[A, C]) sendNow(b []byte, raw *unix.RawSockaddrAny, alen uint32, ctl []byte) unix.Errno {
	p.wmsg = unix.Msghdr{}
	p.wiov = unix.Iovec{}
	if len(b) > 0 {
		p.wiov.Base = unsafe.SliceData(b)
		p.wiov.SetLen(len(b))
		p.wmsg.Iov = &p.wiov
		p.wmsg.SetIovlen(1)
	}
	if alen > 0 {
		p.wmsg.Name = (*byte)(unsafe.Pointer(raw))
		p.wmsg.Namelen = alen
	}
	if len(ctl) > 0 {
		p.wmsg.Control = unsafe.SliceData(ctl)
		p.wmsg.SetControllen(len(ctl))
	}
	for {
		_, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(p.fd), uintptr(unsafe.Pointer(&p.wmsg)), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if e != unix.EINTR {
			p.wmsg.Iov, p.wmsg.Name, p.wmsg.Control = nil, nil, nil
			return e
		}
	}
}

// Write implements transports.DatagramTransportOf.
func (p *Port[A, C]) Write(b []byte, addr A) error { return p.WriteControl(b, addr, nil, nil) }

// WriteControl is Write with control messages ctl sent along (nil: none).
// hold, called only when the datagram must be queued, returns the control
// messages to keep with it (ctl must not be kept: the caller may reuse it,
// and the descriptors it names may close once WriteControl returns) and a
// release run once the queued datagram was sent or dropped.
func (p *Port[A, C]) WriteControl(b []byte, addr A, ctl []byte, hold func() ([]byte, func(), error)) error {
	if p.stopped {
		return transports.ErrClosed
	}
	var alen uint32
	if addr != *new(A) {
		var err error
		if alen, err = p.codec.Encode(addr, &p.wraw); err != nil {
			return err
		}
	} else if p.peer == *new(A) {
		if p.cfg.NoAddress != nil {
			return p.cfg.NoAddress
		}
		return transports.ErrNotConnected
	}
	if p.qHead < len(p.q) {
		return p.enqueue(b, alen, ctl, hold) // keep the order behind queued datagrams
	}
	switch e := p.sendNow(b, &p.wraw, alen, ctl); e {
	case 0:
		p.stats.Sent++
		return nil
	case unix.EAGAIN, unix.ENOBUFS:
		return p.enqueue(b, alen, ctl, hold)
	default:
		return p.sendErr(e)
	}
}

func (p *Port[A, C]) sendErr(e unix.Errno) error {
	switch e {
	case unix.EMSGSIZE:
		return &Error{Net: p.cfg.Net, Sentinel: transports.ErrMessageTooLong, Cause: e}
	case unix.ECONNREFUSED:
		if p.peer != *new(A) {
			p.loop.CallLater(0, func() {
				if !p.stopped {
					p.refused()
				}
			})
		}
		return &Error{Net: p.cfg.Net, Sentinel: transports.ErrConnectionRefused, Cause: e}
	}
	return fmt.Errorf("gyre/%s: sendmsg: %w", p.cfg.Net, e)
}

func (p *Port[A, C]) enqueue(b []byte, alen uint32, ctl []byte, hold func() ([]byte, func(), error)) error {
	if len(p.q)-p.qHead >= p.qMax || p.qBytes+len(b) > p.qMaxBytes {
		p.stats.Refused++
		return transports.ErrQueueFull
	}
	var kept []byte
	var release func()
	if len(ctl) > 0 {
		if hold == nil {
			kept = append([]byte(nil), ctl...)
		} else {
			var err error
			if kept, release, err = hold(); err != nil {
				return err
			}
		}
	}
	var buf []byte
	if n := len(p.free); n > 0 && cap(p.free[n-1]) >= len(b) {
		buf, p.free = p.free[n-1][:len(b)], p.free[:n-1]
	} else {
		buf = make([]byte, len(b))
	}
	copy(buf, b)
	p.q = append(p.q, queued{buf: buf, addr: p.wraw, alen: alen, ctl: kept, release: release})
	p.qBytes += len(b)
	p.stats.Queued++
	p.armPoll()
	return nil
}

func (p *Port[A, C]) armPoll() {
	if p.own.InFlight(slotPoll) || p.retry.Active() || p.stopped || !p.started {
		return
	}
	if err := p.own.Submit(slotPoll, backend.Op{Kind: backend.KindPoll, Events: unix.POLLOUT}); err != nil && !errors.Is(err, transports.ErrClosed) {
		p.loop.ReportError(fmt.Errorf("gyre/%s: %v: poll: %w", p.cfg.Net, p.local, err))
	}
}

// flushQueue sends queued datagrams while the socket takes them. woken: a
// POLLOUT or retry brought us here. An unconnected AF_UNIX socket polls
// writable while the receiver's queue is full (poll only sees our own
// buffer), so a wake-up that sends nothing retries on a timer, backing off
// from 1 ms to 64 ms, instead of polling again at once.
func (p *Port[A, C]) flushQueue(woken bool) {
	if woken {
		p.wakes++
	}
	sent := 0
	for p.qHead < len(p.q) {
		d := &p.q[p.qHead]
		e := p.sendNow(d.buf, &d.addr, d.alen, d.ctl)
		if e == unix.EAGAIN || e == unix.ENOBUFS {
			if woken && sent == 0 {
				p.backoff = min(max(2*p.backoff, time.Millisecond), 64*time.Millisecond)
				p.retry = p.loop.CallLater(p.backoff, func() {
					if !p.stopped {
						p.flushQueue(true)
					}
				})
				return
			}
			p.backoff = 0
			p.armPoll()
			return
		}
		sent++
		if e == 0 {
			p.stats.Sent++
		} else {
			// Accepted earlier, now failing (the peer went away): the caller
			// cannot be told any more; report it.
			p.loop.ReportError(fmt.Errorf("gyre/%s: %v: queued datagram: %w", p.cfg.Net, p.local, p.sendErr(e)))
		}
		p.popQueue()
	}
	p.backoff = 0
	p.q, p.qHead = p.q[:0], 0
}

func (p *Port[A, C]) popQueue() {
	d := &p.q[p.qHead]
	p.qBytes -= len(d.buf)
	if d.release != nil {
		d.release()
	}
	if len(p.free) < 16 {
		p.free = append(p.free, d.buf[:0])
	}
	*d = queued{}
	p.qHead++
}

// Connect implements transports.DatagramTransportOf.
func (p *Port[A, C]) Connect(addr A) error {
	if p.stopped {
		return transports.ErrClosed
	}
	if p.peer != *new(A) {
		return transports.ErrAlreadyConnected
	}
	if addr == *new(A) {
		return fmt.Errorf("gyre/%s: connect to no address: %w", p.cfg.Net, transports.ErrBadOptions)
	}
	var raw unix.RawSockaddrAny
	n, err := p.codec.Encode(addr, &raw)
	if err != nil {
		return err
	}
	if _, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(p.fd), uintptr(unsafe.Pointer(&raw)), uintptr(n)); e != 0 {
		if e == unix.ECONNREFUSED {
			return &Error{Net: p.cfg.Net, Op: fmt.Sprintf("connect %v", addr), Sentinel: transports.ErrConnectionRefused, Cause: e}
		}
		return fmt.Errorf("gyre/%s: connect %v: %w", p.cfg.Net, addr, e)
	}
	p.peer = addr
	p.local = p.codec.Local(p.fd)
	return nil
}

// Peer is the address given to Connect, or the zero A.
func (p *Port[A, C]) Peer() A { return p.peer }

// LocalAddr implements transports.DatagramTransportOf.
func (p *Port[A, C]) LocalAddr() A { return p.local }

// SetInt is setsockopt(level, opt, v); ErrClosed once stopped.
func (p *Port[A, C]) SetInt(level, opt, v int) error {
	if p.stopped {
		return transports.ErrClosed
	}
	if err := unix.SetsockoptInt(p.fd, level, opt, v); err != nil {
		return fmt.Errorf("gyre/%s: setsockopt: %w", p.cfg.Net, err)
	}
	return nil
}

// GetInt is getsockopt(level, opt); ErrClosed once stopped.
func (p *Port[A, C]) GetInt(level, opt int) (int, error) {
	if p.stopped {
		return 0, transports.ErrClosed
	}
	v, err := unix.GetsockoptInt(p.fd, level, opt)
	if err != nil {
		return 0, fmt.Errorf("gyre/%s: getsockopt: %w", p.cfg.Net, err)
	}
	return v, nil
}

// SetBroadcast implements transports.DatagramTransportOf.
func (p *Port[A, C]) SetBroadcast(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return p.SetInt(unix.SOL_SOCKET, unix.SO_BROADCAST, v)
}

// Broadcast implements transports.DatagramTransportOf.
func (p *Port[A, C]) Broadcast() (bool, error) {
	v, err := p.GetInt(unix.SOL_SOCKET, unix.SO_BROADCAST)
	return v != 0, err
}

// SetReadBuffer implements transports.DatagramTransportOf.
func (p *Port[A, C]) SetReadBuffer(n int) error { return p.SetInt(unix.SOL_SOCKET, unix.SO_RCVBUF, n) }

// SetWriteBuffer implements transports.DatagramTransportOf.
func (p *Port[A, C]) SetWriteBuffer(n int) error { return p.SetInt(unix.SOL_SOCKET, unix.SO_SNDBUF, n) }

// PauseReading implements transports.DatagramTransportOf.
func (p *Port[A, C]) PauseReading() {
	if p.paused || p.stopped {
		return
	}
	p.paused = true
	p.own.Cancel(slotRecv)
}

// ResumeReading implements transports.DatagramTransportOf.
func (p *Port[A, C]) ResumeReading() {
	if !p.paused || p.stopped {
		return
	}
	p.paused = false
	if len(p.held) > 0 {
		p.loop.CallLater(0, p.deliverHeld) // on a later turn, never inside ResumeReading
		return
	}
	p.arm()
}

// Stats implements transports.DatagramTransportOf.
func (p *Port[A, C]) Stats() transports.DatagramStats { return p.stats }

// StopListening implements transports.DatagramTransportOf.
func (p *Port[A, C]) StopListening(done func()) error {
	if p.stopped {
		return transports.ErrClosed
	}
	p.stopped = true
	if done != nil {
		p.done = append(p.done, done)
	}
	p.retry.Cancel()
	for p.qHead < len(p.q) {
		p.stats.Refused++
		p.popQueue()
	}
	if p.cfg.Closing != nil {
		p.cfg.Closing()
	}
	if p.started {
		p.loop.Untrack(p.res)
		p.own.Close()
	}
	return nil
}

// Shutdown implements reactor.Resource: the loop is stopping.
func (p *Port[A, C]) Shutdown(error) { _ = p.StopListening(nil) }

// closed runs once the receive op has ended and the socket is closed.
func (p *Port[A, C]) closed() {
	defer p.runDone()
	p.proto.StopProtocol()
}

func (p *Port[A, C]) runDone() {
	for _, f := range p.done {
		f()
	}
	p.done = nil
}
