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

// DatagramProtocol handles the datagrams of one datagram transport
// (Twisted's DatagramProtocol). Every method runs on the transport's loop
// goroutine.
//
// The sender's address is a netip.AddrPort, a plain value: delivering it
// allocates nothing, where a net.Addr (*net.UDPAddr) would cost an
// allocation per datagram.
type DatagramProtocol interface {
	// StartProtocol is called once, when the transport starts listening,
	// before any datagram (Twisted's startProtocol after makeConnection).
	StartProtocol(t DatagramTransport)
	// DatagramReceived is one datagram p from addr. p is borrowed: it is
	// valid only until DatagramReceived returns (copy what you keep). An
	// empty datagram is delivered with len(p) == 0. A datagram larger than
	// the transport's receive room is never delivered cut: see
	// TruncatedReceiver.
	DatagramReceived(p []byte, addr netip.AddrPort)
	// ConnectionRefused is called when a connected transport's peer is not
	// listening (ICMP port unreachable: ECONNREFUSED on a receive or a
	// send). The transport keeps working.
	ConnectionRefused()
	// StopProtocol is called once, after the transport stopped listening
	// and its socket is closed.
	StopProtocol()
}

// TruncatedReceiver is optionally implemented by a DatagramProtocol: a
// datagram larger than the transport's receive room (MSG_TRUNC) is reported
// here with the bytes that fit (at least that many were sent) instead of
// being delivered cut. Without it the datagram is only counted
// (DatagramStats.Truncated).
type TruncatedReceiver interface {
	DatagramTruncated(fit int, addr netip.AddrPort)
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

// DatagramTransport is a datagram socket as a protocol sees it (Twisted's
// IUDPTransport). Loop goroutine only.
type DatagramTransport interface {
	// Write sends p as one datagram to addr, or to the connected peer when
	// addr is the zero netip.AddrPort. p is copied or sent before Write
	// returns. When the socket buffer is full the datagram is queued (a
	// bounded queue) and sent when there is room; when that queue is full
	// too, Write returns ErrQueueFull. Other errors: ErrNotConnected
	// (zero addr, not connected), ErrMessageTooLong, ErrConnectionRefused
	// (connected, peer not listening: ConnectionRefused is called too),
	// ErrClosed after StopListening, or the errno.
	Write(p []byte, addr netip.AddrPort) error
	// Connect fixes the peer (Twisted's connect): only its datagrams are
	// received, Write with a zero address goes to it, and ICMP errors reach
	// ConnectionRefused. Once only: ErrAlreadyConnected.
	Connect(addr netip.AddrPort) error
	// LocalAddr is the bound address (with the real port when 0 was asked).
	LocalAddr() netip.AddrPort
	// SetBroadcast allows or forbids sending to broadcast addresses
	// (SO_BROADCAST); Broadcast reports it.
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
