package udp

import (
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/gyre-io/gyre/transports"
)

// ErrMulticastJoin is returned (wrapped, with the errno) when joining or
// leaving a group fails (Twisted's MulticastJoinError): not a multicast
// address, a family the socket cannot take, no such interface (ENODEV), an
// interface without multicast, or a group not joined (EADDRNOTAVAIL on
// leave).
var ErrMulticastJoin = errors.New("gyre/udp: multicast join/leave failed")

// MulticastTransport is a UDP socket's multicast control (Twisted's
// IMulticastTransport), implemented by *Port. Interfaces are given by index
// (net.Interface.Index; 0 lets the kernel choose by the routing table),
// which works for IPv4 and IPv6 alike and needs no lookup. The IPv4 or
// IPv6 socket option is used by the group's family (and, for the other
// settings, the socket's). Loop goroutine only; after StopListening every
// method returns transports.ErrClosed.
type MulticastTransport interface {
	transports.DatagramTransport
	// JoinGroup joins group on interface ifindex (IP_ADD_MEMBERSHIP with
	// ip_mreqn, IPV6_JOIN_GROUP); LeaveGroup leaves it. Errors wrap
	// ErrMulticastJoin.
	JoinGroup(group netip.Addr, ifindex int) error
	LeaveGroup(group netip.Addr, ifindex int) error
	// SetTTL sets the TTL (IPv4) or hop limit (IPv6) of multicast datagrams
	// sent (0..255; default 1: the local network only); TTL reports it.
	SetTTL(ttl int) error
	TTL() (int, error)
	// SetLoopback sets whether multicast datagrams sent are also delivered
	// to this host's members (IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP;
	// default on); Loopback reports it.
	SetLoopback(on bool) error
	Loopback() (bool, error)
	// SetOutgoingInterface sets the interface multicast datagrams leave by
	// (IP_MULTICAST_IF with ip_mreqn, IPV6_MULTICAST_IF; 0: the routing
	// table's choice); OutgoingInterface reports it.
	SetOutgoingInterface(ifindex int) error
	OutgoingInterface() (int, error)
}

var _ MulticastTransport = (*Port)(nil)

// JoinGroup implements MulticastTransport.
func (p *Port) JoinGroup(group netip.Addr, ifindex int) error {
	return p.membership(group, ifindex, true)
}

// LeaveGroup implements MulticastTransport.
func (p *Port) LeaveGroup(group netip.Addr, ifindex int) error {
	return p.membership(group, ifindex, false)
}

func (p *Port) membership(group netip.Addr, ifindex int, join bool) error {
	fd := p.d.Fd()
	if fd < 0 {
		return transports.ErrClosed
	}
	what := "leave"
	if join {
		what = "join"
	}
	group = group.Unmap()
	if !group.IsMulticast() {
		return fmt.Errorf("%w: %s %v: not a multicast address (%w)", ErrMulticastJoin, what, group, transports.ErrBadOptions)
	}
	var err error
	if group.Is4() {
		opt := unix.IP_ADD_MEMBERSHIP
		if !join {
			opt = unix.IP_DROP_MEMBERSHIP
		}
		err = unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, opt, &unix.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(ifindex)})
	} else {
		opt := unix.IPV6_JOIN_GROUP
		if !join {
			opt = unix.IPV6_LEAVE_GROUP
		}
		err = unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, opt, &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(ifindex)})
	}
	if err != nil {
		return fmt.Errorf("%w: %s %v on interface %d: %w", ErrMulticastJoin, what, group, ifindex, err)
	}
	return nil
}

// v6 reports whether the socket is IPv6.
func (p *Port) v6() bool { return p.d.LocalAddr().Addr().Is6() && !p.d.LocalAddr().Addr().Is4In6() }

// SetTTL implements MulticastTransport.
func (p *Port) SetTTL(ttl int) error {
	if ttl < 0 || ttl > 255 {
		return fmt.Errorf("gyre/udp: TTL %d (0..255): %w", ttl, transports.ErrBadOptions)
	}
	if p.v6() {
		return p.d.SetInt(unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, ttl)
	}
	return p.d.SetInt(unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, ttl)
}

// TTL implements MulticastTransport.
func (p *Port) TTL() (int, error) {
	if p.v6() {
		return p.d.GetInt(unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS)
	}
	return p.d.GetInt(unix.IPPROTO_IP, unix.IP_MULTICAST_TTL)
}

// SetLoopback implements MulticastTransport.
func (p *Port) SetLoopback(on bool) error {
	v := 0
	if on {
		v = 1
	}
	if p.v6() {
		return p.d.SetInt(unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, v)
	}
	return p.d.SetInt(unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, v)
}

// Loopback implements MulticastTransport.
func (p *Port) Loopback() (bool, error) {
	var v int
	var err error
	if p.v6() {
		v, err = p.d.GetInt(unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP)
	} else {
		v, err = p.d.GetInt(unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP)
	}
	return v != 0, err
}

// SetOutgoingInterface implements MulticastTransport.
func (p *Port) SetOutgoingInterface(ifindex int) error {
	fd := p.d.Fd()
	if fd < 0 {
		return transports.ErrClosed
	}
	var err error
	if p.v6() {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifindex)
	} else {
		err = unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifindex)})
	}
	if err != nil {
		return fmt.Errorf("gyre/udp: multicast interface %d: %w", ifindex, err)
	}
	p.mcIf = ifindex
	return nil
}

// OutgoingInterface implements MulticastTransport: the index last set
// (0 if none; Linux's getsockopt(IP_MULTICAST_IF) reports an address, not
// the index, so the port remembers it).
func (p *Port) OutgoingInterface() (int, error) {
	if p.d.Fd() < 0 {
		return 0, transports.ErrClosed
	}
	return p.mcIf, nil
}
