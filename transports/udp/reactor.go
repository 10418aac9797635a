package udp

import (
	"net/netip"

	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// Importing this package registers it as the "udp" datagram network of
// every stream.Reactor (transports.ReactorUDP's ListenUDP).
func init() { stream.RegisterDatagramNetwork[netip.AddrPort]("udp", network{}) }

// network is the "udp" stream.DatagramNetwork: Listen with its options
// taken from opts (nil, ListenOptions or *ListenOptions).
type network struct{}

func (network) Listen(loop *reactor.Loop, addr string, p transports.DatagramProtocol, opts any) (transports.DatagramTransport, error) {
	o, err := stream.Options[ListenOptions]("ListenUDP", opts)
	if err != nil {
		return nil, err
	}
	port, err := Listen(loop, addr, p, o)
	if err != nil {
		return nil, err // not a typed nil *Port
	}
	return port, nil
}
