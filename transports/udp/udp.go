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
// The default room is 3968 bytes with the loop's default 4 KiB provided
// buffers (4096 less a 16-byte receive header and 112 bytes for the
// sender's address) — less than Twisted's maxPacketSize default of 8192,
// and a 9000-byte (jumbo frame) or 65,507-byte datagram is then only
// counted as truncated. To receive larger datagrams whole, either raise
// the loop's buffers (reactor.Config.Sizes.BufferSize: 16384 gives a room
// of 16,256 bytes, still multishot and allocation-free, but the whole
// pool, which the loop's stream reads share, grows with it), or set
// MaxPacketSize (65507 for any UDP/IPv4 datagram): one receive op per
// datagram into one buffer the port allocates at Listen, also
// allocation-free per datagram, but one completion and re-arm per
// datagram instead of one armed op for all.
//
// Sending: Write calls sendmsg(2) at once (MSG_DONTWAIT). When the socket
// buffer is full (EAGAIN) the datagram is copied into a bounded queue, sent
// as soon as the socket is writable (a poll op), and once the queue is full
// Write returns transports.ErrQueueFull: a datagram is either sent, queued
// or refused with an error the caller sees, and counted — never dropped
// silently.
//
// Multicast (Twisted's IMulticastTransport): *Port implements
// MulticastTransport — join and leave groups on IPv4 and IPv6 on a given
// interface, TTL / hop limit, loopback mode, outgoing interface; several
// ports share one group and port with ListenOptions.ReuseAddr
// (listenMultiple).
//
// The receive/send machinery is shared with transports/unixgram
// (transports/internal/dgram). Importing the package registers the "udp"
// datagram network (transports.ReactorUDP). Loop goroutine only, like
// every transport.
package udp

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/internal/dgram"
)

// ListenOptions configure Listen. The zero value is the default.
type ListenOptions struct {
	// MaxPacketSize is the largest datagram delivered whole, in bytes
	// (Twisted's maxPacketSize, whose default is 8192); a longer one is
	// counted and reported truncated, never delivered cut. 0 (the default)
	// is the loop's provided-buffer room, MaxPacketSize(loop): 3968 bytes
	// with the default 4 KiB buffers, received on the multishot fast path.
	// A value up to that room keeps the fast path; a larger one receives
	// one datagram at a time into a buffer of this size allocated at
	// Listen (65507 receives any UDP/IPv4 datagram). To keep the fast path
	// for larger datagrams, raise the loop's reactor.Config.Sizes.BufferSize
	// instead (see the package doc). Range 0..65535.
	MaxPacketSize int
	// ReuseAddr and ReusePort set SO_REUSEADDR and SO_REUSEPORT before bind
	// (several sockets on one address: Twisted's listenMultiple).
	ReuseAddr, ReusePort bool
	// QueueDatagrams and QueueBytes bound the send queue used while the
	// socket buffer is full; defaults 256 datagrams and 1 MiB.
	QueueDatagrams int
	QueueBytes     int
}

// MaxPacketSize is the largest datagram a port on loop receives whole with
// the multishot fast path: the loop's provided-buffer size minus the
// receive header (16 bytes) and the room for the sender's address (112):
// 3968 bytes with the default 4096-byte buffers.
func MaxPacketSize(loop *reactor.Loop) int { return dgram.MaxPacketSize(loop, 0) }

// codec is the UDP dgram.Codec: netip.AddrPort, v4-mapped on an IPv6
// socket.
type codec struct{ v6 bool }

func (c *codec) Decode(name []byte) netip.AddrPort { return addrOf(name) }

func (c *codec) Encode(a netip.AddrPort, raw *unix.RawSockaddrAny) (uint32, error) {
	if a.Addr().Is6() && !a.Addr().Is4In6() && !c.v6 {
		return 0, fmt.Errorf("gyre/udp: %v is IPv6, the socket IPv4: %w", a, transports.ErrBadOptions)
	}
	return rawAddr(a, raw, c.v6), nil
}

func (c *codec) Local(fd int) netip.AddrPort {
	a, _ := localAddr(fd)
	return a
}

// Port is a listening UDP socket; it implements transports.DatagramTransport.
// Loop goroutine only, except where noted.
type Port struct {
	d    *dgram.Port[netip.AddrPort, *codec]
	mcIf int // SetOutgoingInterface's index
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
	d, err := dgram.New(loop, fd, proto, &codec{v6: fam == unix.AF_INET6}, netip.AddrPort{}, dgram.Config{
		Net: "udp", MaxPacketSize: opts.MaxPacketSize,
		QueueDatagrams: opts.QueueDatagrams, QueueBytes: opts.QueueBytes,
	})
	if err != nil {
		return nil, err
	}
	return &Port{d: d}, nil
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

// Write implements transports.DatagramTransport.
func (p *Port) Write(b []byte, addr netip.AddrPort) error { return p.d.Write(b, addr) }

// Connect implements transports.DatagramTransport.
func (p *Port) Connect(addr netip.AddrPort) error { return p.d.Connect(addr) }

// LocalAddr implements transports.DatagramTransport. Goroutine-safe until
// Connect (which may change the local address).
func (p *Port) LocalAddr() netip.AddrPort { return p.d.LocalAddr() }

// Addr is LocalAddr as a *net.UDPAddr.
func (p *Port) Addr() net.Addr { return net.UDPAddrFromAddrPort(p.d.LocalAddr()) }

// SetBroadcast implements transports.DatagramTransport.
func (p *Port) SetBroadcast(on bool) error { return p.d.SetBroadcast(on) }

// Broadcast implements transports.DatagramTransport.
func (p *Port) Broadcast() (bool, error) { return p.d.Broadcast() }

// SetReadBuffer implements transports.DatagramTransport.
func (p *Port) SetReadBuffer(n int) error { return p.d.SetReadBuffer(n) }

// SetWriteBuffer implements transports.DatagramTransport.
func (p *Port) SetWriteBuffer(n int) error { return p.d.SetWriteBuffer(n) }

// PauseReading implements transports.DatagramTransport.
func (p *Port) PauseReading() { p.d.PauseReading() }

// ResumeReading implements transports.DatagramTransport.
func (p *Port) ResumeReading() { p.d.ResumeReading() }

// Stats implements transports.DatagramTransport.
func (p *Port) Stats() transports.DatagramStats { return p.d.Stats() }

// StopListening implements transports.DatagramTransport.
func (p *Port) StopListening(done func()) error { return p.d.StopListening(done) }

// Close is StopListening(nil) (transports.Port).
func (p *Port) Close() error { return p.d.StopListening(nil) }
