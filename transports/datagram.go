package transports

import (
	"errors"
	"net/netip"
)

// Errors of datagram transports (errors.Is-able).
var (
	// ErrQueueFull: the socket's send buffer was full and the datagram
	// could not be queued either (the bounded send queue is full); the
	// datagram was not sent and is counted (DatagramStats.Refused).
	ErrQueueFull = errors.New("gyre: datagram send queue full")
	// ErrConnectionRefused: a connected datagram socket's peer answered
	// with ICMP port unreachable (ECONNREFUSED).
	ErrConnectionRefused = errors.New("gyre: connection refused")
	// ErrMessageTooLong: the datagram is larger than the socket can send
	// (EMSGSIZE; 65,507 bytes of payload for UDP over IPv4).
	ErrMessageTooLong = errors.New("gyre: datagram too long")
	// ErrAlreadyConnected: Connect on a datagram transport already
	// connected (Twisted raises RuntimeError).
	ErrAlreadyConnected = errors.New("gyre: datagram transport already connected")
)

// DatagramAddr is the type of a datagram socket's addresses: a
// netip.AddrPort for UDP, a string (a path, "@name" for a Linux abstract
// name, "" for an unnamed socket) for UNIX datagram sockets.
//
// Both are plain values, so delivering a sender's address allocates
// nothing (a UNIX transport keeps the string of its last sender and hands
// it out again while the sender stays the same), where a net.Addr
// (*net.UDPAddr, *net.UnixAddr) would cost an allocation per datagram; and
// both have a zero value ("no address": the connected peer) that no sender
// has. One contract, DatagramProtocolOf, serves both families.
type DatagramAddr interface{ netip.AddrPort | string }

// DatagramProtocol handles UDP datagrams (Twisted's DatagramProtocol):
// DatagramProtocolOf with netip.AddrPort addresses.
type DatagramProtocol = DatagramProtocolOf[netip.AddrPort]

// DatagramTransport is a UDP socket as a protocol sees it (Twisted's
// IUDPTransport): DatagramTransportOf with netip.AddrPort addresses.
type DatagramTransport = DatagramTransportOf[netip.AddrPort]

// TruncatedReceiver is TruncatedReceiverOf for UDP.
type TruncatedReceiver = TruncatedReceiverOf[netip.AddrPort]

// UnixDatagramProtocol handles UNIX datagrams (Twisted's DatagramProtocol
// on listenUNIXDatagram): DatagramProtocolOf with string addresses — the
// sender's path, "@name", or "" for an unnamed sender (which cannot be
// answered).
type UnixDatagramProtocol = DatagramProtocolOf[string]

// UnixDatagramTransport is a UNIX datagram socket as a protocol sees it
// (Twisted's unix.DatagramPort): DatagramTransportOf with string
// addresses.
type UnixDatagramTransport = DatagramTransportOf[string]

// DatagramProtocolOf handles the datagrams of one datagram transport
// (Twisted's DatagramProtocol), with addresses of type A (DatagramAddr).
// Every method runs on the transport's loop goroutine.
type DatagramProtocolOf[A DatagramAddr] interface {
	// StartProtocol is called once, when the transport starts listening,
	// before any datagram (Twisted's startProtocol after makeConnection).
	StartProtocol(t DatagramTransportOf[A])
	// DatagramReceived is one datagram p from addr. p is borrowed: it is
	// valid only until DatagramReceived returns (copy what you keep). An
	// empty datagram is delivered with len(p) == 0. A datagram larger than
	// the transport's receive room is never delivered cut: see
	// TruncatedReceiver.
	DatagramReceived(p []byte, addr A)
	// ConnectionRefused is called when a connected transport's peer is not
	// listening (ICMP port unreachable: ECONNREFUSED on a receive or a
	// send). The transport keeps working.
	ConnectionRefused()
	// StopProtocol is called once, after the transport stopped listening
	// and its socket is closed.
	StopProtocol()
}

// TruncatedReceiverOf is optionally implemented by a DatagramProtocolOf: a
// datagram larger than the transport's receive room (MSG_TRUNC) is reported
// here with the bytes that fit (at least that many were sent) instead of
// being delivered cut. Without it the datagram is only counted
// (DatagramStats.Truncated).
type TruncatedReceiverOf[A DatagramAddr] interface {
	DatagramTruncated(fit int, addr A)
}

// DatagramStats counts a datagram transport's traffic since it started.
type DatagramStats struct {
	Received  uint64 // datagrams delivered to DatagramReceived
	Sent      uint64 // datagrams handed to the kernel
	Queued    uint64 // datagrams that met a full socket buffer (EAGAIN) and were queued
	Refused   uint64 // datagrams refused with ErrQueueFull (never sent)
	Truncated uint64 // datagrams larger than the receive room (not delivered)
	NoBuffers uint64 // receives the provided-buffer pool ran dry for (re-armed; nothing lost)
}

// DatagramTransportOf is a datagram socket as a protocol sees it (Twisted's
// IUDPTransport), with addresses of type A. Loop goroutine only.
type DatagramTransportOf[A DatagramAddr] interface {
	// Write sends p as one datagram to addr, or to the connected peer when
	// addr is the zero A (netip.AddrPort{}, ""). p is copied or sent before Write
	// returns. When the socket buffer is full the datagram is queued (a
	// bounded queue) and sent when there is room; when that queue is full
	// too, Write returns ErrQueueFull. Other errors: ErrNotConnected
	// (zero addr, not connected), ErrMessageTooLong, ErrConnectionRefused
	// (peer not listening; when connected, ConnectionRefused is called
	// too),
	// ErrClosed after StopListening, or the errno.
	Write(p []byte, addr A) error
	// Connect fixes the peer (Twisted's connect): only its datagrams are
	// received, Write with a zero address goes to it, and ICMP errors reach
	// ConnectionRefused. Once only: ErrAlreadyConnected.
	Connect(addr A) error
	// LocalAddr is the bound address (with the real port when 0 was asked).
	LocalAddr() A
	// SetBroadcast allows or forbids sending to broadcast addresses
	// (SO_BROADCAST); Broadcast reports it. (A UNIX socket accepts the
	// option, which has no effect there.)
	SetBroadcast(on bool) error
	Broadcast() (bool, error)
	// SetReadBuffer and SetWriteBuffer size the socket buffers (SO_RCVBUF,
	// SO_SNDBUF; the kernel doubles the value and caps it at
	// net.core.rmem_max / wmem_max).
	SetReadBuffer(bytes int) error
	SetWriteBuffer(bytes int) error
	// PauseReading stops delivering datagrams (they wait in the socket
	// buffer, where the kernel drops what does not fit); ResumeReading
	// starts again.
	PauseReading()
	ResumeReading()
	// StopListening closes the transport: no datagram is delivered after
	// it returns, queued datagrams are dropped (counted in Refused), and
	// done (may be nil) runs on the loop after the receive op has fully
	// ended and the socket is closed, right after StopProtocol. A second
	// call returns ErrClosed.
	StopListening(done func()) error
	// Stats returns the counters.
	Stats() DatagramStats
}
