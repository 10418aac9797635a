package transporttest

import (
	"net/netip"

	"github.com/gyre-io/gyre/transports"
)

// DatagramCall is one recorded ListenUDP, ListenUNIXDatagram or
// ConnectUNIXDatagram.
type DatagramCall struct {
	// Network is "udp" or "unixgram"; Connect is set for
	// ConnectUNIXDatagram (Addr is then the peer).
	Network string
	Connect bool
	Addr    string
	Options any
	// UDP is the port of a "udp" call, Unix that of a "unixgram" one.
	UDP  *FakeDatagramPort[netip.AddrPort]
	Unix *FakeDatagramPort[string]
}

// ListenUDP records the request and returns a FakeDatagramPort bound to
// addr (a port of 0 is replaced by a fresh fake port number; an address
// that does not parse fails with transports.ErrBadOptions). The protocol's
// StartProtocol runs at the next RunCalls, as a loop's next turn.
func (m *MemoryReactor) ListenUDP(addr string, p transports.DatagramProtocol, opts any) (transports.DatagramTransport, error) {
	if m.ListenErr != nil {
		return nil, m.ListenErr
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, transports.ErrBadOptions
	}
	if ap.Port() == 0 {
		m.nextPort++
		ap = netip.AddrPortFrom(ap.Addr(), uint16(m.nextPort))
	}
	f := newFakeDatagramPort(m, p, ap, netip.AddrPort{})
	m.Datagrams = append(m.Datagrams, &DatagramCall{Network: "udp", Addr: addr, Options: opts, UDP: f})
	return f, nil
}

// ListenUNIXDatagram records the request and returns a FakeDatagramPort
// bound to path; StartProtocol runs at the next RunCalls.
func (m *MemoryReactor) ListenUNIXDatagram(path string, p transports.UnixDatagramProtocol, opts any) (transports.UnixDatagramTransport, error) {
	if m.ListenErr != nil {
		return nil, m.ListenErr
	}
	f := newFakeDatagramPort(m, p, path, "")
	m.Datagrams = append(m.Datagrams, &DatagramCall{Network: "unixgram", Addr: path, Options: opts, Unix: f})
	return f, nil
}

// ConnectUNIXDatagram records the request and returns a FakeDatagramPort
// connected to path (unnamed: LocalAddr ""); StartProtocol runs at the
// next RunCalls. ConnectErr, when set, fails it.
func (m *MemoryReactor) ConnectUNIXDatagram(path string, p transports.UnixDatagramProtocol, opts any) (transports.UnixDatagramTransport, error) {
	if m.ConnectErr != nil {
		return nil, m.ConnectErr
	}
	f := newFakeDatagramPort(m, p, "", path)
	m.Datagrams = append(m.Datagrams, &DatagramCall{Network: "unixgram", Connect: true, Addr: path, Options: opts, Unix: f})
	return f, nil
}

// FakeDatagram is one datagram a FakeDatagramPort was asked to send.
type FakeDatagram[A transports.DatagramAddr] struct {
	Data []byte // a copy
	To   A      // the zero A: the connected peer
}

// FakeDatagramPort is a transports.DatagramTransportOf[A] made by a
// MemoryReactor: it records what the protocol writes (Written) and lets the
// test deliver datagrams (Deliver) and ICMP refusals (Refuse). Test
// goroutine only.
type FakeDatagramPort[A transports.DatagramAddr] struct {
	// Written is every datagram Write accepted, in order.
	Written []FakeDatagram[A]
	// WriteErr, when set, makes Write fail with it (e.g.
	// transports.ErrQueueFull, counted as Refused).
	WriteErr error
	// Started and Stopped report StartProtocol and StopProtocol ran.
	Started, Stopped bool

	m                       *MemoryReactor
	proto                   transports.DatagramProtocolOf[A]
	local, peer             A
	paused, closing         bool
	broadcast               bool
	ReadBuffer, WriteBuffer int // the last SetReadBuffer / SetWriteBuffer
	stats                   transports.DatagramStats
}

var _ transports.DatagramTransport = (*FakeDatagramPort[netip.AddrPort])(nil)
var _ transports.UnixDatagramTransport = (*FakeDatagramPort[string])(nil)

func newFakeDatagramPort[A transports.DatagramAddr](m *MemoryReactor, p transports.DatagramProtocolOf[A], local, peer A) *FakeDatagramPort[A] {
	f := &FakeDatagramPort[A]{m: m, proto: p, local: local, peer: peer}
	_ = m.Call(func() {
		if !f.closing {
			f.Started = true
			p.StartProtocol(f)
		}
	})
	return f
}

// Deliver hands p from the protocol's DatagramReceived, as a datagram
// arriving would, and reports whether it was delivered: not before
// StartProtocol, while paused, or once stopping. A connected port only
// takes its peer's datagrams.
func (f *FakeDatagramPort[A]) Deliver(p []byte, from A) bool {
	if !f.Started || f.paused || f.closing || (f.peer != *new(A) && from != f.peer) {
		return false
	}
	f.stats.Received++
	f.proto.DatagramReceived(p, from)
	return true
}

// Refuse reports ICMP port unreachable: ConnectionRefused, on a connected
// port only (the call reports whether it ran).
func (f *FakeDatagramPort[A]) Refuse() bool {
	if !f.Started || f.closing || f.peer == *new(A) {
		return false
	}
	f.proto.ConnectionRefused()
	return true
}

// Write records p (implements transports.DatagramTransportOf).
func (f *FakeDatagramPort[A]) Write(p []byte, addr A) error {
	switch {
	case f.closing:
		return transports.ErrClosed
	case addr == *new(A) && f.peer == *new(A):
		return transports.ErrNotConnected
	case f.WriteErr != nil:
		f.stats.Refused++
		return f.WriteErr
	}
	f.Written = append(f.Written, FakeDatagram[A]{Data: append([]byte(nil), p...), To: addr})
	f.stats.Sent++
	return nil
}

// Connect fixes the peer (implements transports.DatagramTransportOf).
func (f *FakeDatagramPort[A]) Connect(addr A) error {
	switch {
	case f.closing:
		return transports.ErrClosed
	case f.peer != *new(A):
		return transports.ErrAlreadyConnected
	case addr == *new(A):
		return transports.ErrBadOptions
	}
	f.peer = addr
	return nil
}

// Peer is the connected peer, or the zero A.
func (f *FakeDatagramPort[A]) Peer() A { return f.peer }

// LocalAddr is the bound address.
func (f *FakeDatagramPort[A]) LocalAddr() A { return f.local }

// SetBroadcast records the flag.
func (f *FakeDatagramPort[A]) SetBroadcast(on bool) error {
	if f.closing {
		return transports.ErrClosed
	}
	f.broadcast = on
	return nil
}

// Broadcast reports the flag.
func (f *FakeDatagramPort[A]) Broadcast() (bool, error) {
	if f.closing {
		return false, transports.ErrClosed
	}
	return f.broadcast, nil
}

// SetReadBuffer records n in ReadBuffer.
func (f *FakeDatagramPort[A]) SetReadBuffer(n int) error {
	if f.closing {
		return transports.ErrClosed
	}
	f.ReadBuffer = n
	return nil
}

// SetWriteBuffer records n in WriteBuffer.
func (f *FakeDatagramPort[A]) SetWriteBuffer(n int) error {
	if f.closing {
		return transports.ErrClosed
	}
	f.WriteBuffer = n
	return nil
}

// PauseReading stops Deliver; ResumeReading starts it again.
func (f *FakeDatagramPort[A]) PauseReading() { f.paused = true }

// ResumeReading implements transports.DatagramTransportOf.
func (f *FakeDatagramPort[A]) ResumeReading() { f.paused = false }

// Paused reports PauseReading without ResumeReading.
func (f *FakeDatagramPort[A]) Paused() bool { return f.paused }

// Stats counts Deliver, Write and refused Writes.
func (f *FakeDatagramPort[A]) Stats() transports.DatagramStats { return f.stats }

// StopListening stops the port: StopProtocol (if StartProtocol ran) and
// then done run at the next RunCalls, as after a real port's receive op
// ended. A second call returns transports.ErrClosed.
func (f *FakeDatagramPort[A]) StopListening(done func()) error {
	if f.closing {
		return transports.ErrClosed
	}
	f.closing = true
	_ = f.m.Call(func() {
		if f.Started {
			f.Stopped = true
			f.proto.StopProtocol()
		}
		if done != nil {
			done()
		}
	})
	return nil
}
