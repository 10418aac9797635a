package tcp

import (
	"github.com/gyre-io/gyre/reactor"
	"github.com/gyre-io/gyre/transports"
	"github.com/gyre-io/gyre/transports/stream"
)

// Importing this package registers it as the "tcp" network of every
// stream.Reactor (transports.Reactor's ListenTCP and ConnectTCP).
func init() { stream.RegisterNetwork("tcp", network{}) }

// network is the "tcp" stream.Network: Listen and Connect with their options
// taken from opts (nil, ListenOptions or *ListenOptions; nil,
// ConnectOptions or *ConnectOptions).
type network struct{}

func (network) Listen(loop *reactor.Loop, addr string, f transports.Factory, opts any) (transports.Port, error) {
	o, err := stream.Options[ListenOptions]("ListenTCP", opts)
	if err != nil {
		return nil, err
	}
	p, err := Listen(loop, addr, f, o)
	if err != nil {
		return nil, err // not a typed nil *Port
	}
	return p, nil
}

func (network) Connect(loop *reactor.Loop, addr string, f transports.ClientFactory, opts any) (transports.Connector, error) {
	o, err := stream.Options[ConnectOptions]("ConnectTCP", opts)
	if err != nil {
		return nil, err
	}
	c, err := Connect(loop, addr, f, o)
	if err != nil {
		return nil, err
	}
	return c, nil
}
