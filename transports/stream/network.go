package stream

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gyre-io/gyre/clock"
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
)

// Network is one stream network ("tcp", "unix", …) as the real reactor
// reaches it: the transport package's Listen and Connect behind a common
// shape, with its own options type passed as opts (nil: the defaults; see
// Options). Both must be goroutine-safe, like tcp.Listen and tcp.Connect.
type Network interface {
	Listen(loop *reactor.Loop, addr string, f transports.Factory, opts any) (transports.Port, error)
	Connect(loop *reactor.Loop, addr string, f transports.ClientFactory, opts any) (transports.Connector, error)
}

var networks struct {
	sync.RWMutex
	m map[string]Network
	d map[string]any // DatagramNetwork[A] by name
}

// DatagramNetwork is one datagram network ("udp" with netip.AddrPort
// addresses, "unixgram" with string ones) as the real reactor reaches it:
// the transport package's Listen behind a common shape, with its own
// options type as opts (see Options). Goroutine-safe, like udp.Listen.
type DatagramNetwork[A transports.DatagramAddr] interface {
	Listen(loop *reactor.Loop, addr string, p transports.DatagramProtocolOf[A], opts any) (transports.DatagramTransportOf[A], error)
}

// DatagramConnector is optionally implemented by a DatagramNetwork whose
// sockets can be made connected (unixgram: ConnectUNIXDatagram).
type DatagramConnector[A transports.DatagramAddr] interface {
	Connect(loop *reactor.Loop, addr string, p transports.DatagramProtocolOf[A], opts any) (transports.DatagramTransportOf[A], error)
}

// RegisterDatagramNetwork is RegisterNetwork for a datagram network; it
// panics the same way (nil n, name registered twice).
func RegisterDatagramNetwork[A transports.DatagramAddr](name string, n DatagramNetwork[A]) {
	if n == nil {
		panic("gyre/stream: RegisterDatagramNetwork of a nil network for " + name)
	}
	networks.Lock()
	defer networks.Unlock()
	if _, dup := networks.d[name]; dup {
		panic("gyre/stream: RegisterDatagramNetwork called twice for " + name)
	}
	if networks.d == nil {
		networks.d = make(map[string]any)
	}
	networks.d[name] = n
}

// LookupDatagramNetwork returns the datagram network registered as name
// with addresses of type A, or an error matching
// transports.ErrUnsupportedNetwork (naming the package to import).
// Goroutine-safe.
func LookupDatagramNetwork[A transports.DatagramAddr](name string) (DatagramNetwork[A], error) {
	networks.RLock()
	n, _ := networks.d[name].(DatagramNetwork[A])
	networks.RUnlock()
	if n == nil {
		return nil, fmt.Errorf("%w: datagram network %q is not linked into this program (import _ \"github.com/gyre-io/gyre/transports/%s\")",
			transports.ErrUnsupportedNetwork, name, name)
	}
	return n, nil
}

// RegisterNetwork makes n the implementation of network name for every
// Reactor (as database/sql drivers and Twisted's endpoint plugins register
// themselves). Transport packages call it from an init function, and only
// there: a program's set of networks is fixed once it starts, so importing a
// transport package (for its side effect, if need be) is what links it in.
// The contracts package and transport packages cannot import one another,
// which is why the reactor finds them by name.
//
// It panics if n is nil or name is already registered — a programming error
// found when the program starts, as with sql.Register.
func RegisterNetwork(name string, n Network) {
	if n == nil {
		panic("gyre/stream: RegisterNetwork of a nil Network for " + name)
	}
	networks.Lock()
	defer networks.Unlock()
	if _, dup := networks.m[name]; dup {
		panic("gyre/stream: RegisterNetwork called twice for " + name)
	}
	if networks.m == nil {
		networks.m = make(map[string]Network)
	}
	networks.m[name] = n
}

// LookupNetwork returns the Network registered as name, or an error matching
// transports.ErrUnsupportedNetwork that names the package to import
// (github.com/gyre-io/gyre/transports/<name>). Goroutine-safe.
func LookupNetwork(name string) (Network, error) {
	networks.RLock()
	n := networks.m[name]
	networks.RUnlock()
	if n == nil {
		return nil, fmt.Errorf("%w: %q is not linked into this program (import _ \"github.com/gyre-io/gyre/transports/%s\")",
			transports.ErrUnsupportedNetwork, name, name)
	}
	return n, nil
}

// Options converts a Reactor method's opts to the network's options type T:
// nil and a nil *T give T's zero value (the defaults), a T or *T is used as
// it is, and any other type fails with an error matching
// transports.ErrBadOptions that names what was expected. what names the call
// for that message (e.g. "ListenTCP").
func Options[T any](what string, opts any) (T, error) {
	var zero T
	switch o := opts.(type) {
	case nil:
		return zero, nil
	case T:
		return o, nil
	case *T:
		if o == nil {
			return zero, nil
		}
		return *o, nil
	}
	return zero, fmt.Errorf("%w: %s takes nil or a %T, not a %T", transports.ErrBadOptions, what, zero, opts)
}

// ErrNoLoop is returned by the methods of a zero NetReactor (one not made by
// Reactor) that can return an error.
var ErrNoLoop = errors.New("gyre/stream: NetReactor has no loop")

// NetReactor is transports.Reactor over a real loop: Now, CallLater and Call
// are the loop's, and ListenTCP/ConnectTCP/ListenUNIX/ConnectUNIX go to the
// networks registered as "tcp" and "unix" (RegisterNetwork), ListenUDP and
// ListenUNIXDatagram/ConnectUNIXDatagram to the datagram networks "udp" and "unixgram"
// (RegisterDatagramNetwork). A network not
// linked into the program fails with an error matching
// transports.ErrUnsupportedNetwork. Listen and Connect are goroutine-safe
// (as the networks' are); Now and CallLater are loop only, as on the loop.
//
// The zero value has no loop (Call, Listen and Connect return ErrNoLoop);
// make one with Reactor. A NetReactor is one
// pointer: converting it to transports.Reactor does not allocate.
type NetReactor struct{ loop *reactor.Loop }

var _ transports.Reactor = NetReactor{}

// Reactor is the transports.Reactor of loop.
func Reactor(loop *reactor.Loop) NetReactor { return NetReactor{loop: loop} }

// Loop is the loop r works on.
func (r NetReactor) Loop() *reactor.Loop { return r.loop }

// Now is the loop's time.
func (r NetReactor) Now() time.Time { return r.loop.Now() }

// CallLater schedules f on the loop (reactor.Loop.CallLater).
func (r NetReactor) CallLater(d time.Duration, f func()) clock.Call { return r.loop.CallLater(d, f) }

// Call runs f on the loop's next turn (reactor.Loop.Call); goroutine-safe.
func (r NetReactor) Call(f func()) error {
	if r.loop == nil {
		return ErrNoLoop
	}
	return r.loop.Call(f)
}

// Listen listens on addr over the network registered as network.
func (r NetReactor) Listen(network, addr string, f transports.Factory, opts any) (transports.Port, error) {
	if r.loop == nil {
		return nil, ErrNoLoop
	}
	n, err := LookupNetwork(network)
	if err != nil {
		return nil, err
	}
	return n.Listen(r.loop, addr, f, opts)
}

// Connect connects to addr over the network registered as network.
func (r NetReactor) Connect(network, addr string, f transports.ClientFactory, opts any) (transports.Connector, error) {
	if r.loop == nil {
		return nil, ErrNoLoop
	}
	n, err := LookupNetwork(network)
	if err != nil {
		return nil, err
	}
	return n.Connect(r.loop, addr, f, opts)
}

// ListenUDP implements transports.ReactorUDP (datagram network "udp").
func (r NetReactor) ListenUDP(addr string, p transports.DatagramProtocol, opts any) (transports.DatagramTransport, error) {
	return listenDatagram(r, "udp", addr, p, opts)
}

// ListenUNIXDatagram implements transports.ReactorUNIXDatagram (datagram
// network "unixgram").
func (r NetReactor) ListenUNIXDatagram(path string, p transports.UnixDatagramProtocol, opts any) (transports.UnixDatagramTransport, error) {
	return listenDatagram(r, "unixgram", path, p, opts)
}

// ConnectUNIXDatagram implements transports.ReactorUNIXDatagram (datagram
// network "unixgram").
func (r NetReactor) ConnectUNIXDatagram(path string, p transports.UnixDatagramProtocol, opts any) (transports.UnixDatagramTransport, error) {
	if r.loop == nil {
		return nil, ErrNoLoop
	}
	n, err := LookupDatagramNetwork[string]("unixgram")
	if err != nil {
		return nil, err
	}
	c, ok := n.(DatagramConnector[string])
	if !ok {
		return nil, fmt.Errorf("%w: datagram network \"unixgram\" cannot connect", transports.ErrUnsupportedNetwork)
	}
	return c.Connect(r.loop, path, p, opts)
}

func listenDatagram[A transports.DatagramAddr](r NetReactor, network, addr string, p transports.DatagramProtocolOf[A], opts any) (transports.DatagramTransportOf[A], error) {
	if r.loop == nil {
		return nil, ErrNoLoop
	}
	n, err := LookupDatagramNetwork[A](network)
	if err != nil {
		return nil, err
	}
	return n.Listen(r.loop, addr, p, opts)
}

// ListenTCP implements transports.ReactorTCP (network "tcp").
func (r NetReactor) ListenTCP(addr string, f transports.Factory, opts any) (transports.Port, error) {
	return r.Listen("tcp", addr, f, opts)
}

// ConnectTCP implements transports.ReactorTCP (network "tcp").
func (r NetReactor) ConnectTCP(addr string, f transports.ClientFactory, opts any) (transports.Connector, error) {
	return r.Connect("tcp", addr, f, opts)
}

// ListenUNIX implements transports.ReactorUNIX (network "unix").
func (r NetReactor) ListenUNIX(path string, f transports.Factory, opts any) (transports.Port, error) {
	return r.Listen("unix", path, f, opts)
}

// ConnectUNIX implements transports.ReactorUNIX (network "unix").
func (r NetReactor) ConnectUNIX(path string, f transports.ClientFactory, opts any) (transports.Connector, error) {
	return r.Connect("unix", path, f, opts)
}
