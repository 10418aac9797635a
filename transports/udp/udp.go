// Package udp is gyre's UDP transport (Twisted's IReactorUDP.listenUDP,
// udp.Port): a bound datagram socket driven by the loop, delivering each
// datagram to a transports.DatagramProtocol and sending with sendmsg.
//
// Receiving: with a receive room that fits the loop's provided buffers
// (ListenOptions.MaxPacketSize 0, the default, or at most
// MaxPacketSize(loop)) one multishot recvmsg stays armed (io_uring's
// IORING_RECV_MULTISHOT with a buffer ring, Linux 6.0; emulated by the
// epoll backend), each datagram in its own provided buffer, lent to
// DatagramReceived and returned to the pool when it returns. A larger
// MaxPacketSize receives one datagram at a time into the port's own buffer.
// Either way a datagram larger than the room is reported
// (transports.TruncatedReceiver, DatagramStats.Truncated), never delivered
// cut, and a pool that runs dry (ENOBUFS) only re-arms the receive: the
// datagrams stay queued in the socket.
//
// Sending: Write calls sendmsg(2) at once (MSG_DONTWAIT). When the socket
// buffer is full (EAGAIN) the datagram is copied into a bounded queue, sent
// as soon as the socket is writable (a poll op), and once the queue is full
// Write returns transports.ErrQueueFull: a datagram is either sent, queued
// or refused with an error the caller sees, and counted — never dropped
// silently.
//
// Loop goroutine only, like every transport.
package udp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/reactor/backend"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// ListenOptions configure Listen. The zero value is the default.
type ListenOptions struct {
	// MaxPacketSize is the largest datagram delivered whole (Twisted's
	// maxPacketSize). 0: the loop's provided-buffer room, MaxPacketSize(loop)
	// (multishot fast path). Larger values receive one datagram at a time
	// into a buffer of this size; 65507 receives any UDP/IPv4 datagram.
	MaxPacketSize int
	// ReuseAddr and ReusePort set SO_REUSEADDR and SO_REUSEPORT before bind
	// (several sockets on one address: Twisted's listenMultiple).
	ReuseAddr, ReusePort bool
	// QueueDatagrams and QueueBytes bound the send queue used while the
	// socket buffer is full; defaults 256 datagrams and 1 MiB.
	QueueDatagrams int
	QueueBytes     int
}

// Op slots of the port's stream.Owner.
const (
	slotRecv = 0
	slotPoll = 1
)

// MaxPacketSize is the largest datagram a port on loop receives whole with
// the multishot fast path: the loop's provided-buffer size minus the
// receive header and the room for the sender's address.
func MaxPacketSize(loop *reactor.Loop) int {
	room, _, _ := backend.MultishotRecvMsgRoom(&backend.Op{Kind: backend.KindRecvMsg, Addr: new(unix.RawSockaddrAny)}, loop.Sizes().BufferSize)
	return room
}

type queued struct {
	buf  []byte
	addr unix.RawSockaddrAny
	alen uint32
}

// Port is a listening UDP socket; it implements transports.DatagramTransport.
type Port struct {
	loop    *reactor.Loop
	own     stream.Owner
	proto   transports.DatagramProtocol
	trunc   transports.TruncatedReceiver
	local   netip.AddrPort
	v6      bool
	res     int // loop.Track handle
	fd      int
	started bool

	multi   bool
	rbuf    []byte // single-shot receive buffer (MaxPacketSize > the room)
	from    unix.RawSockaddrAny
	paused  bool
	stopped bool
	peer    netip.AddrPort // after Connect
	nobufs  int            // consecutive ENOBUFS without a datagram
	done    []func()

	// Send path scratch (no allocation per Write).
	wraw unix.RawSockaddrAny
	wmsg unix.Msghdr
	wiov unix.Iovec

	q               []queued // FIFO, q[qHead:]
	qHead, qBytes   int
	qMax, qMaxBytes int
	free            [][]byte
	stats           transports.DatagramStats
}

var _ transports.DatagramTransport = (*Port)(nil)

// Listen binds a UDP socket to addr ("host:port"; the host an IP literal,
// empty for 0.0.0.0; port 0 picks one) and starts delivering its datagrams
// to proto: StartProtocol and the first receive run on the loop's next
// turn. Goroutine-safe (the bind is done before Listen returns; LocalAddr
// is valid at once). Errors: a bad address or options (wrapping
// transports.ErrBadOptions), or the socket/bind errno.
func Listen(loop *reactor.Loop, addr string, proto transports.DatagramProtocol, opts ListenOptions) (*Port, error) {
	ap, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	if opts.MaxPacketSize < 0 || opts.MaxPacketSize > 65535 {
		return nil, fmt.Errorf("gyre/udp: MaxPacketSize %d (0..65535): %w", opts.MaxPacketSize, transports.ErrBadOptions)
	}
	fam := unix.AF_INET
	if ap.Addr().Is6() {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("gyre/udp: socket: %w", err)
	}
	fail := func(what string, err error) (*Port, error) {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("gyre/udp: %s %s: %w", what, addr, err)
	}
	if opts.ReuseAddr {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fail("SO_REUSEADDR", err)
		}
	}
	if opts.ReusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail("SO_REUSEPORT", err)
		}
	}
	var raw unix.RawSockaddrAny
	n := rawAddr(ap, &raw, fam == unix.AF_INET6)
	if _, _, e := unix.Syscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&raw)), uintptr(n)); e != 0 {
		return fail("bind", e)
	}
	p := &Port{loop: loop, proto: proto, v6: fam == unix.AF_INET6}
	p.trunc, _ = proto.(transports.TruncatedReceiver)
	if p.local, err = localAddr(fd); err != nil {
		return fail("getsockname", err)
	}
	p.qMax, p.qMaxBytes = opts.QueueDatagrams, opts.QueueBytes
	if p.qMax <= 0 {
		p.qMax = 256
	}
	if p.qMaxBytes <= 0 {
		p.qMaxBytes = 1 << 20
	}
	room := MaxPacketSize(loop)
	p.multi = opts.MaxPacketSize == 0 || opts.MaxPacketSize <= room
	if !p.multi {
		p.rbuf = make([]byte, opts.MaxPacketSize)
	}
	p.fd = fd
	if err := loop.Call(p.start); err != nil {
		return fail("start", err)
	}
	return p, nil
}

// start runs on the loop's next turn after Listen: the port is tracked,
// receiving starts and the protocol is started.
func (p *Port) start() {
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

func parseAddr(addr string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("gyre/udp: address %q: %v: %w", addr, err, transports.ErrBadOptions)
	}
	pn, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("gyre/udp: port %q: %w", port, transports.ErrBadOptions)
	}
	a := netip.IPv4Unspecified()
	if host != "" {
		if a, err = netip.ParseAddr(host); err != nil {
			return netip.AddrPort{}, fmt.Errorf("gyre/udp: host %q is not an IP literal: %w", host, transports.ErrBadOptions)
		}
	}
	return netip.AddrPortFrom(a, uint16(pn)), nil
}

// rawAddr fills raw with ap for a socket of family v6 (an IPv4 address is
// then v4-mapped) and returns its length.
func rawAddr(ap netip.AddrPort, raw *unix.RawSockaddrAny, v6 bool) uint32 {
	*raw = unix.RawSockaddrAny{}
	a := ap.Addr()
	port := ap.Port()
	if a.Is4() && !v6 || a.Is4In6() && !v6 {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		sa.Family = unix.AF_INET
		sa.Port = port>>8 | port<<8
		sa.Addr = a.Unmap().As4()
		return unix.SizeofSockaddrInet4
	}
	sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(raw))
	sa.Family = unix.AF_INET6
	sa.Port = port>>8 | port<<8
	sa.Addr = a.As16()
	if z := a.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.Scope_id = uint32(ifi.Index)
		}
	}
	return unix.SizeofSockaddrInet6
}

// addrOf reads a raw sockaddr (as recvmsg wrote it) without allocating; the
// IPv6 scope is dropped (Twisted strips it too). A v4-mapped address stays
// mapped, so a reply goes back the way the datagram came.
func addrOf(b []byte) netip.AddrPort {
	if len(b) < 2 {
		return netip.AddrPort{}
	}
	switch *(*uint16)(unsafe.Pointer(&b[0])) {
	case unix.AF_INET:
		if len(b) >= unix.SizeofSockaddrInet4 {
			sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&b[0]))
			return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), sa.Port>>8|sa.Port<<8)
		}
	case unix.AF_INET6:
		if len(b) >= unix.SizeofSockaddrInet6 {
			sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&b[0]))
			return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), sa.Port>>8|sa.Port<<8)
		}
	}
	return netip.AddrPort{}
}

func localAddr(fd int) (netip.AddrPort, error) {
	var raw unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	if _, _, e := unix.Syscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&raw)), uintptr(unsafe.Pointer(&n))); e != 0 {
		return netip.AddrPort{}, e
	}
	return addrOf((*[unix.SizeofSockaddrAny]byte)(unsafe.Pointer(&raw))[:n]), nil
}

// arm submits the receive unless it is in flight, paused or stopped.
func (p *Port) arm() {
	if p.paused || p.stopped || !p.started || p.own.InFlight(slotRecv) {
		return
	}
	op := backend.Op{Kind: backend.KindRecvMsg, Addr: &p.from}
	if p.multi {
		op.Multishot, op.BufferSelect = true, true
	} else {
		op.Buf = p.rbuf
	}
	if err := p.own.Submit(slotRecv, op); err != nil && !errors.Is(err, transports.ErrClosed) {
		p.loop.ReportError(fmt.Errorf("gyre/udp: %v: receive: %w", p.local, err))
	}
}

// OpComplete implements stream.OpHandler.
func (p *Port) OpComplete(slot int, c *backend.Completion) {
	if slot == slotPoll {
		if c.Res >= 0 && !p.stopped {
			p.flushQueue()
		}
		return
	}
	if c.Res >= 0 && !p.stopped {
		p.nobufs = 0
		p.deliver(c)
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
		if !p.stopped && p.peer.IsValid() {
			p.refused()
		}
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
		p.loop.ReportError(fmt.Errorf("gyre/udp: %v: receive: %w", p.local, syscall.Errno(-c.Res)))
		p.loop.CallLater(10*time.Millisecond, p.arm)
	}
}

// deliver hands one received datagram to the protocol; a panic there is
// reported and receiving goes on (Twisted logs and continues).
func (p *Port) deliver(c *backend.Completion) {
	defer func() {
		if err := reactor.Recovered(recover()); err != nil {
			p.loop.ReportError(err)
		}
	}()
	addr := addrOf(c.Name)
	if c.Flags&backend.FlagTrunc != 0 {
		p.stats.Truncated++
		if p.trunc != nil {
			p.trunc.DatagramTruncated(int(c.Res), addr)
		}
		return
	}
	data := c.Buf
	if !p.multi {
		data = p.rbuf[:c.Res]
	}
	p.stats.Received++
	p.proto.DatagramReceived(data, addr)
}

func (p *Port) refused() {
	defer func() {
		if err := reactor.Recovered(recover()); err != nil {
			p.loop.ReportError(err)
		}
	}()
	p.proto.ConnectionRefused()
}

// sendNow is one non-blocking sendmsg of p to raw[:alen] (alen 0: the peer).
func (p *Port) sendNow(b []byte, raw *unix.RawSockaddrAny, alen uint32) unix.Errno {
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
	for {
		_, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(p.fd), uintptr(unsafe.Pointer(&p.wmsg)), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if e != unix.EINTR {
			p.wmsg.Iov, p.wmsg.Name = nil, nil
			return e
		}
	}
}

// Write implements transports.DatagramTransport.
func (p *Port) Write(b []byte, addr netip.AddrPort) error {
	if p.stopped {
		return transports.ErrClosed
	}
	var alen uint32
	if addr.IsValid() {
		if addr.Addr().Is6() && !addr.Addr().Is4In6() && !p.v6 {
			return fmt.Errorf("gyre/udp: %v is IPv6, the socket IPv4: %w", addr, transports.ErrBadOptions)
		}
		alen = rawAddr(addr, &p.wraw, p.v6)
	} else if !p.peer.IsValid() {
		return transports.ErrNotConnected
	}
	if p.qHead < len(p.q) {
		return p.enqueue(b, alen) // keep the order behind queued datagrams
	}
	switch e := p.sendNow(b, &p.wraw, alen); e {
	case 0:
		p.stats.Sent++
		return nil
	case unix.EAGAIN, unix.ENOBUFS:
		return p.enqueue(b, alen)
	default:
		return p.sendErr(e)
	}
}

func (p *Port) sendErr(e unix.Errno) error {
	switch e {
	case unix.EMSGSIZE:
		return fmt.Errorf("gyre/udp: %w", transports.ErrMessageTooLong)
	case unix.ECONNREFUSED:
		if p.peer.IsValid() {
			p.loop.CallLater(0, func() {
				if !p.stopped {
					p.refused()
				}
			})
		}
		return fmt.Errorf("gyre/udp: %w", transports.ErrConnectionRefused)
	}
	return fmt.Errorf("gyre/udp: sendmsg: %w", e)
}

func (p *Port) enqueue(b []byte, alen uint32) error {
	if len(p.q)-p.qHead >= p.qMax || p.qBytes+len(b) > p.qMaxBytes {
		p.stats.Refused++
		return transports.ErrQueueFull
	}
	var buf []byte
	if n := len(p.free); n > 0 && cap(p.free[n-1]) >= len(b) {
		buf, p.free = p.free[n-1][:len(b)], p.free[:n-1]
	} else {
		buf = make([]byte, len(b))
	}
	copy(buf, b)
	p.q = append(p.q, queued{buf: buf, addr: p.wraw, alen: alen})
	p.qBytes += len(b)
	p.stats.Queued++
	p.armPoll()
	return nil
}

func (p *Port) armPoll() {
	if p.own.InFlight(slotPoll) || p.stopped || !p.started {
		return
	}
	if err := p.own.Submit(slotPoll, backend.Op{Kind: backend.KindPoll, Events: unix.POLLOUT}); err != nil && !errors.Is(err, transports.ErrClosed) {
		p.loop.ReportError(fmt.Errorf("gyre/udp: %v: poll: %w", p.local, err))
	}
}

// flushQueue sends queued datagrams while the socket takes them.
func (p *Port) flushQueue() {
	for p.qHead < len(p.q) {
		d := &p.q[p.qHead]
		e := p.sendNow(d.buf, &d.addr, d.alen)
		if e == unix.EAGAIN || e == unix.ENOBUFS {
			p.armPoll()
			return
		}
		if e == 0 {
			p.stats.Sent++
		} else {
			// Accepted earlier, now failing (the peer went away): the caller
			// cannot be told any more; report it.
			p.loop.ReportError(fmt.Errorf("gyre/udp: %v: queued datagram: %w", p.local, p.sendErr(e)))
		}
		p.popQueue()
	}
	p.q, p.qHead = p.q[:0], 0
}

func (p *Port) popQueue() {
	d := &p.q[p.qHead]
	p.qBytes -= len(d.buf)
	if len(p.free) < 16 {
		p.free = append(p.free, d.buf[:0])
	}
	*d = queued{}
	p.qHead++
}

// Connect implements transports.DatagramTransport.
func (p *Port) Connect(addr netip.AddrPort) error {
	if p.stopped {
		return transports.ErrClosed
	}
	if p.peer.IsValid() {
		return transports.ErrAlreadyConnected
	}
	var raw unix.RawSockaddrAny
	n := rawAddr(addr, &raw, p.v6)
	if _, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(p.fd), uintptr(unsafe.Pointer(&raw)), uintptr(n)); e != 0 {
		return fmt.Errorf("gyre/udp: connect %v: %w", addr, e)
	}
	p.peer = addr
	if l, err := localAddr(p.fd); err == nil {
		p.local = l
	}
	return nil
}

// LocalAddr implements transports.DatagramTransport.
func (p *Port) LocalAddr() netip.AddrPort { return p.local }

// Addr is LocalAddr as a *net.UDPAddr.
func (p *Port) Addr() net.Addr { return net.UDPAddrFromAddrPort(p.local) }

func (p *Port) setInt(level, opt, v int) error {
	if p.stopped {
		return transports.ErrClosed
	}
	return unix.SetsockoptInt(p.fd, level, opt, v)
}

// SetBroadcast implements transports.DatagramTransport.
func (p *Port) SetBroadcast(on bool) error {
	v := 0
	if on {
		v = 1
	}
	return p.setInt(unix.SOL_SOCKET, unix.SO_BROADCAST, v)
}

// Broadcast implements transports.DatagramTransport.
func (p *Port) Broadcast() (bool, error) {
	if p.stopped {
		return false, transports.ErrClosed
	}
	v, err := unix.GetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_BROADCAST)
	return v != 0, err
}

// SetReadBuffer implements transports.DatagramTransport.
func (p *Port) SetReadBuffer(n int) error { return p.setInt(unix.SOL_SOCKET, unix.SO_RCVBUF, n) }

// SetWriteBuffer implements transports.DatagramTransport.
func (p *Port) SetWriteBuffer(n int) error { return p.setInt(unix.SOL_SOCKET, unix.SO_SNDBUF, n) }

// PauseReading implements transports.DatagramTransport.
func (p *Port) PauseReading() {
	if p.paused || p.stopped {
		return
	}
	p.paused = true
	p.own.Cancel(slotRecv)
}

// ResumeReading implements transports.DatagramTransport.
func (p *Port) ResumeReading() {
	if !p.paused || p.stopped {
		return
	}
	p.paused = false
	p.arm()
}

// Stats implements transports.DatagramTransport.
func (p *Port) Stats() transports.DatagramStats { return p.stats }

// StopListening implements transports.DatagramTransport.
func (p *Port) StopListening(done func()) error {
	if p.stopped {
		return transports.ErrClosed
	}
	p.stopped = true
	if done != nil {
		p.done = append(p.done, done)
	}
	for p.qHead < len(p.q) {
		p.stats.Refused++
		p.popQueue()
	}
	if p.started {
		p.loop.Untrack(p.res)
		p.own.Close()
	}
	return nil
}

// Close is StopListening(nil) (transports.Port).
func (p *Port) Close() error { return p.StopListening(nil) }

// Shutdown implements reactor.Resource: the loop is stopping.
func (p *Port) Shutdown(error) { _ = p.StopListening(nil) }

// closed runs once the receive op has ended and the socket is closed.
func (p *Port) closed() {
	defer p.runDone()
	p.proto.StopProtocol()
}

func (p *Port) runDone() {
	for _, f := range p.done {
		f()
	}
	p.done = nil
}
