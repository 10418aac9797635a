// Package sockaddr converts between Go's address types (netip.AddrPort,
// *net.TCPAddr, *net.UDPAddr) and the kernel's socket addresses, for every
// gyre transport that speaks IP (tcp, udp). Zones map to interface indexes
// and back (RFC 4007 scoped addresses); IPv4-mapped IPv6 addresses are kept
// as given when encoding and unmapped by the callers that want it.
package sockaddr

import (
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw fills raw with ap (sockaddr_in for an IPv4 address, sockaddr_in6
// otherwise) and returns its length, for ops that hand the kernel a raw
// address (connect, sendmsg). It allocates nothing unless ap has a zone.
func Raw(ap netip.AddrPort, raw *unix.RawSockaddrAny) uint32 {
	*raw = unix.RawSockaddrAny{}
	a := ap.Addr()
	if a.Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		sa.Family = unix.AF_INET
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
		sa.Addr = a.As4()
		return unix.SizeofSockaddrInet4
	}
	sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(raw))
	sa.Family = unix.AF_INET6
	p := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p[0], p[1] = byte(ap.Port()>>8), byte(ap.Port())
	sa.Addr = a.As16()
	if z := a.Zone(); z != "" {
		sa.Scope_id = zoneIndex(z)
	}
	return unix.SizeofSockaddrInet6
}

// AddrPort decodes the first n bytes of raw (as a recvmsg or accept wrote
// them) into an address; ok is false for a family other than AF_INET and
// AF_INET6 or a short length. A scope id becomes the interface's name as
// zone. It allocates nothing for addresses without a zone.
func AddrPort(raw *unix.RawSockaddrAny, n uint32) (ap netip.AddrPort, ok bool) {
	switch raw.Addr.Family {
	case unix.AF_INET:
		if n < unix.SizeofSockaddrInet4 {
			return ap, false
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1])), true
	case unix.AF_INET6:
		if n < unix.SizeofSockaddrInet6 {
			return ap, false
		}
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(raw))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.Scope_id)); err == nil {
				a = a.WithZone(ifi.Name)
			}
		}
		return netip.AddrPortFrom(a, uint16(p[0])<<8|uint16(p[1])), true
	}
	return ap, false
}

// Sockaddr is ap as a unix.Sockaddr, for bind(2) and friends.
func Sockaddr(ap netip.AddrPort) unix.Sockaddr {
	a := ap.Addr()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		sa.ZoneId = zoneIndex(z)
	}
	return sa
}

// FromSockaddr is the IP address and port of sa; ok is false for another
// family.
func FromSockaddr(sa unix.Sockaddr) (ap netip.AddrPort, ok bool) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), true
	case *unix.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a = a.WithZone(ifi.Name)
			}
		}
		return netip.AddrPortFrom(a, uint16(sa.Port)), true
	}
	return ap, false
}

// TCPAddr is sa as a *net.TCPAddr, or nil for another family.
func TCPAddr(sa unix.Sockaddr) *net.TCPAddr {
	ap, ok := FromSockaddr(sa)
	if !ok {
		return nil
	}
	return net.TCPAddrFromAddrPort(ap)
}

// UDPAddr is sa as a *net.UDPAddr, or nil for another family.
func UDPAddr(sa unix.Sockaddr) *net.UDPAddr {
	ap, ok := FromSockaddr(sa)
	if !ok {
		return nil
	}
	return net.UDPAddrFromAddrPort(ap)
}

// LocalTCP is fd's bound address (getsockname) as a *net.TCPAddr in a
// net.Addr, or an untyped nil — never a typed nil pointer — when it fails.
func LocalTCP(fd int) net.Addr {
	if sa, err := unix.Getsockname(fd); err == nil {
		if a := TCPAddr(sa); a != nil {
			return a
		}
	}
	return nil
}

// RemoteTCP is fd's peer address (getpeername) as a *net.TCPAddr, or an
// untyped nil when it fails (for example after the peer reset).
func RemoteTCP(fd int) net.Addr {
	if sa, err := unix.Getpeername(fd); err == nil {
		if a := TCPAddr(sa); a != nil {
			return a
		}
	}
	return nil
}

// LocalUDP is fd's bound address as a *net.UDPAddr, or an untyped nil.
func LocalUDP(fd int) net.Addr {
	if sa, err := unix.Getsockname(fd); err == nil {
		if a := UDPAddr(sa); a != nil {
			return a
		}
	}
	return nil
}

func zoneIndex(zone string) uint32 {
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}
