package policies

import (
	"net"
	"net/netip"

	"github.com/gyre-io/gyre/transports"
)

// LimitTotalConnectionsFactory caps the number of live connections (Twisted's
// LimitTotalConnectionsFactory). Up to Limit, protocols come from Wrapped;
// beyond it they come from Overflow (a "too busy" protocol, say), or the
// connection is refused when Overflow is nil. Overflow connections count too.
// A connection counts from BuildProtocol until its ConnectionLost.
//
// Goroutine-safe: one factory may serve listeners on several loops.
type LimitTotalConnectionsFactory struct {
	WrappingFactory
	// Limit is the most connections served by Wrapped; <= 0 means no limit.
	Limit int
	// Overflow, if set, builds the protocols for connections over Limit.
	Overflow transports.Factory

	count int // guarded by WrappingFactory.mu
}

// NewLimitTotalConnectionsFactory wraps f with a limit of n connections and
// an optional overflow factory.
func NewLimitTotalConnectionsFactory(f transports.Factory, n int, overflow transports.Factory) *LimitTotalConnectionsFactory {
	return &LimitTotalConnectionsFactory{WrappingFactory: WrappingFactory{Wrapped: f}, Limit: n, Overflow: overflow}
}

// Count is the number of live connections (overflow ones included).
func (f *LimitTotalConnectionsFactory) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

// BuildProtocol implements transports.Factory.
func (f *LimitTotalConnectionsFactory) BuildProtocol(addr net.Addr) transports.Protocol {
	f.mu.Lock()
	over := f.Limit > 0 && f.count >= f.Limit
	if over && f.Overflow == nil {
		f.mu.Unlock()
		return nil
	}
	f.count++ // reserve the slot before building, so concurrent loops agree
	f.mu.Unlock()

	var inner transports.Protocol
	if over {
		inner = f.Overflow.BuildProtocol(addr)
	} else {
		inner = f.Wrapped.BuildProtocol(addr)
	}
	p := f.wrap(inner, f.Setup, f.setup)
	if p == nil {
		f.release()
	}
	return p
}

func (f *LimitTotalConnectionsFactory) setup(w *ProtocolWrapper) {
	w.addHooks(hooks{lost: func(error) { f.release() }})
}

func (f *LimitTotalConnectionsFactory) release() {
	f.mu.Lock()
	f.count--
	f.mu.Unlock()
}

// DefaultMaxPerPeer is LimitConnectionsByPeer's MaxPerPeer when left at zero.
const DefaultMaxPerPeer = 5

// LimitConnectionsByPeer caps the live connections from each peer host
// (Twisted's LimitConnectionsByPeer); over the cap, BuildProtocol refuses.
// Peers are told apart by IP address (IPv4-mapped IPv6 counts as IPv4; port
// and zone ignored); addresses that are not IP-based are keyed by network and
// address string.
//
// Goroutine-safe: one factory may serve listeners on several loops.
type LimitConnectionsByPeer struct {
	WrappingFactory
	// MaxPerPeer is the cap per host; <= 0 means DefaultMaxPerPeer.
	MaxPerPeer int

	peers map[peerKey]int // guarded by WrappingFactory.mu
}

// NewLimitConnectionsByPeer wraps f with a cap of n connections per peer.
func NewLimitConnectionsByPeer(f transports.Factory, n int) *LimitConnectionsByPeer {
	return &LimitConnectionsByPeer{WrappingFactory: WrappingFactory{Wrapped: f}, MaxPerPeer: n}
}

type peerKey struct {
	ip    netip.Addr
	other string
}

func keyOf(addr net.Addr) peerKey {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.IPAddr:
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return peerKey{ip: ip.Unmap()}
		}
	case nil:
		return peerKey{}
	default:
		if p, err := netip.ParseAddrPort(addr.String()); err == nil {
			ap = p
		}
	}
	if ap.Addr().IsValid() {
		return peerKey{ip: ap.Addr().Unmap().WithZone("")}
	}
	return peerKey{other: addr.Network() + "|" + addr.String()}
}

// Count is the number of live connections from addr's host.
func (f *LimitConnectionsByPeer) Count(addr net.Addr) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peers[keyOf(addr)]
}

// BuildProtocol implements transports.Factory.
func (f *LimitConnectionsByPeer) BuildProtocol(addr net.Addr) transports.Protocol {
	limit := f.MaxPerPeer
	if limit <= 0 {
		limit = DefaultMaxPerPeer
	}
	k := keyOf(addr)
	f.mu.Lock()
	if f.peers[k] >= limit {
		f.mu.Unlock()
		return nil
	}
	if f.peers == nil {
		f.peers = make(map[peerKey]int)
	}
	f.peers[k]++
	f.mu.Unlock()

	p := f.wrap(f.Wrapped.BuildProtocol(addr), f.Setup, func(w *ProtocolWrapper) {
		w.addHooks(hooks{lost: func(error) { f.release(k) }})
	})
	if p == nil {
		f.release(k)
	}
	return p
}

func (f *LimitConnectionsByPeer) release(k peerKey) {
	f.mu.Lock()
	if f.peers[k]--; f.peers[k] <= 0 {
		delete(f.peers, k)
	}
	f.mu.Unlock()
}
